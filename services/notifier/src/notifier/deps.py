"""What the routes need from the outside world, handed to create_app (tests pass fakes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request
from pipeline_runtime.auth import Principal

from .repository import DeliveryRepository
from .subscriptions import SubscriptionRepository
from .tenant_secrets import TenantSecrets


class KeyStore(Protocol):
    async def find(self, key: str) -> Principal | None: ...


@dataclass(frozen=True)
class Resources:
    deliveries: DeliveryRepository
    subscriptions: SubscriptionRepository
    tenant_secrets: TenantSecrets
    readiness: Callable[[], Awaitable[dict[str, bool]]]
    key_store: KeyStore | None = None  # None: the app keeps NoKeys (every key is refused)


def get_resources(request: Request) -> Resources:
    return request.app.state.resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]
