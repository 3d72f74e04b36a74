"""HTTP routes of the notifier: subscriptions, the delivery log, dead letters and replay.

Thin: each route asks the injected repositories (deps.Resources) under the caller's tenant and
shapes the answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response
from pipeline_runtime.api_access import api_key
from pipeline_runtime.auth import Principal
from pipeline_runtime.httpkit import problem, problem_responses
from pipeline_runtime.urls import MAX_URL_LENGTH, web_url_problem
from pydantic import BaseModel, Field, field_validator

from .deps import ResourcesDep
from .repository import Attempt, DeadLetter
from .subscriptions import SubscriptionLimitReached

router = APIRouter()
WEBHOOKS = api_key("webhooks")
READ = api_key("read")
AUTH_RESPONSES = problem_responses(401, 403)


class NewSubscription(BaseModel):
    url: str = Field(
        max_length=MAX_URL_LENGTH,
        description="Absolute http(s) URL that receives request.completed webhooks (no credentials).",
    )
    description: str | None = Field(None, max_length=500)

    @field_validator("url")
    @classmethod
    def must_be_web_url(cls, value: str) -> str:
        wrong = web_url_problem(value)
        if wrong:
            raise ValueError(wrong)
        return value


class SubscriptionOut(BaseModel):
    subscription_id: UUID
    url: str
    description: str | None
    created_at: datetime


class CreatedSubscription(SubscriptionOut):
    secret: str = Field(description="The `whsec_` signing secret. Shown only in this answer.")


@router.post(
    "/subscriptions",
    status_code=201,
    response_model=CreatedSubscription,
    responses={**AUTH_RESPONSES, **problem_responses(409, 422, 503)},
)
async def create_subscription(body: NewSubscription, deps: ResourcesDep, caller: Principal = WEBHOOKS) -> Any:
    """Subscribe a URL to every request.completed event of the tenant."""
    if not deps.subscriptions.can_store_secrets:
        return problem(
            503,
            "no-secrets-key",
            "Subscriptions unavailable",
            "NOTIFIER_SECRETS_KEY is not configured, so secrets cannot be stored encrypted",
        )
    try:
        created, secret = await deps.subscriptions.create(caller.tenant_id, body.url, body.description)
    except SubscriptionLimitReached as exc:
        return problem(409, "too-many-subscriptions", "Too many subscriptions", str(exc))
    return CreatedSubscription(
        **SubscriptionOut.model_validate(created, from_attributes=True).model_dump(), secret=secret
    )


class SigningSecret(BaseModel):
    secret: str = Field(
        description="The tenant's new `whsec_` secret for per-upload webhooks. Shown only in this answer."
    )
    created_at: datetime
    previous_expires_at: datetime | None = Field(
        description="Until when the previous secret still signs next to this one (null: there was none)."
    )


@router.post(
    "/signing-secret",
    status_code=201,
    response_model=SigningSecret,
    responses={**AUTH_RESPONSES, **problem_responses(503)},
)
async def rotate_signing_secret(deps: ResourcesDep, caller: Principal = WEBHOOKS) -> Any:
    """Make a new signing secret for the tenant's per-upload webhooks (`webhook_url`) and show it once.

    Until `previous_expires_at` every webhook carries a signature with each secret, so receivers
    holding either verify; rotating again meanwhile ends the earlier overlap.
    """
    if not deps.tenant_secrets.can_store_secrets:
        return problem(
            503,
            "no-secrets-key",
            "Signing secrets unavailable",
            "NOTIFIER_SECRETS_KEY is not configured, so secrets cannot be stored encrypted",
        )
    rotated = await deps.tenant_secrets.rotate(caller.tenant_id)
    return SigningSecret(
        secret=rotated.secret, created_at=rotated.created_at, previous_expires_at=rotated.previous_expires_at
    )


@router.get("/subscriptions", response_model=list[SubscriptionOut], responses=AUTH_RESPONSES)
async def list_subscriptions(deps: ResourcesDep, caller: Principal = WEBHOOKS) -> Any:
    """Every subscription of the tenant (secrets are never shown again)."""
    found = await deps.subscriptions.list(caller.tenant_id)
    return [SubscriptionOut.model_validate(s, from_attributes=True) for s in found]


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    response_class=Response,
    responses={**AUTH_RESPONSES, **problem_responses(404, 422)},
)
async def delete_subscription(
    subscription_id: UUID, deps: ResourcesDep, caller: Principal = WEBHOOKS
) -> Response:
    """Remove a subscription; its pending deliveries are cancelled."""
    if not await deps.subscriptions.delete(caller.tenant_id, subscription_id):
        return problem(404, "not-found", "Unknown subscription", f"no subscription {subscription_id}")
    return Response(status_code=204)


@router.get(
    "/requests/{request_id}/deliveries",
    response_model=list[Attempt],
    responses={**AUTH_RESPONSES, **problem_responses(404, 422)},
)
async def deliveries(request_id: UUID, deps: ResourcesDep, caller: Principal = READ) -> Any:
    """Every webhook attempt for a request, with its time, status code, latency and answer excerpt."""
    if not await deps.deliveries.request_exists(caller.tenant_id, request_id):
        return problem(404, "not-found", "Unknown request", f"no request with id {request_id}")
    rows = await deps.deliveries.deliveries_for(caller.tenant_id, request_id)
    return rows


@router.get("/dead-letters", response_model=list[DeadLetter], responses=AUTH_RESPONSES)
async def dead_letters(deps: ResourcesDep, caller: Principal = WEBHOOKS) -> Any:
    """Deliveries that exhausted their attempts or were refused for good (the newest 100)."""
    rows = await deps.deliveries.dead_letters(caller.tenant_id)
    return rows


@router.post(
    "/deliveries/{delivery_id}/replay",
    status_code=202,
    responses={**AUTH_RESPONSES, **problem_responses(404, 422)},
)
async def replay(delivery_id: UUID, deps: ResourcesDep, caller: Principal = WEBHOOKS) -> Any:
    """Send a dead-lettered delivery again, with the same webhook-id and a fresh schedule."""
    if not await deps.deliveries.replay(caller.tenant_id, delivery_id):
        return problem(404, "not-found", "No such dead letter", f"no dead delivery {delivery_id}")
    return {"delivery_id": str(delivery_id), "status": "pending"}
