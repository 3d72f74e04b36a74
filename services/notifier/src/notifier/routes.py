"""HTTP routes of the notifier: subscriptions, the delivery log, dead letters and replay."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pipeline_runtime.api_access import api_key
from pipeline_runtime.auth import Principal
from pipeline_runtime.http import AUTH_RESPONSES, problem, problem_responses
from pydantic import BaseModel, Field, field_validator

router = APIRouter()
WEBHOOKS = api_key("webhooks")
READ = api_key("read")


class NewSubscription(BaseModel):
    url: str = Field(description="Absolute http(s) URL that receives request.completed webhooks.")
    description: str | None = Field(None, max_length=500)

    @field_validator("url")
    @classmethod
    def must_be_web_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(value) > 2048:
            raise ValueError("must be an absolute http or https URL")
        if parts.username or parts.password:
            raise ValueError("must not contain credentials")
        return value


class SubscriptionOut(BaseModel):
    subscription_id: UUID
    url: str
    description: str | None
    created_at: datetime


class CreatedSubscription(SubscriptionOut):
    secret: str = Field(description="The `whsec_` signing secret. Shown only in this answer.")


class Attempt(BaseModel):
    delivery_id: UUID
    webhook_id: UUID
    target_url: str
    delivery_status: str
    attempt: int | None
    attempted_at: datetime | None
    status_code: int | None
    error: str | None
    latency_ms: float | None


class DeadLetter(BaseModel):
    delivery_id: UUID
    webhook_id: UUID
    request_id: UUID
    target_url: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime


@router.post(
    "/subscriptions",
    status_code=201,
    response_model=CreatedSubscription,
    responses={**AUTH_RESPONSES, **problem_responses(422, 503)},
)
async def create_subscription(body: NewSubscription, request: Request, caller: Principal = WEBHOOKS) -> Any:
    """Subscribe a URL to every request.completed event of the tenant."""
    subscriptions = request.app.state.subscriptions
    if not subscriptions.can_store_secrets:
        return problem(
            503,
            "no-secrets-key",
            "Subscriptions unavailable",
            "NOTIFIER_SECRETS_KEY is not configured, so secrets cannot be stored encrypted",
        )
    created, secret = await subscriptions.create(caller.tenant_id, body.url, body.description)
    return CreatedSubscription(
        **SubscriptionOut.model_validate(created, from_attributes=True).model_dump(), secret=secret
    )


@router.get("/subscriptions", response_model=list[SubscriptionOut], responses=AUTH_RESPONSES)
async def list_subscriptions(request: Request, caller: Principal = WEBHOOKS) -> Any:
    """Every subscription of the tenant (secrets are never shown again)."""
    return [
        SubscriptionOut.model_validate(s, from_attributes=True)
        for s in await request.app.state.subscriptions.list(caller.tenant_id)
    ]


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    response_class=Response,
    responses={**AUTH_RESPONSES, **problem_responses(404, 422)},
)
async def delete_subscription(
    subscription_id: UUID, request: Request, caller: Principal = WEBHOOKS
) -> Response:
    """Remove a subscription; its pending deliveries are cancelled."""
    if not await request.app.state.subscriptions.delete(caller.tenant_id, subscription_id):
        return problem(404, "not-found", "Unknown subscription", f"no subscription {subscription_id}")
    return Response(status_code=204)


@router.get(
    "/requests/{request_id}/deliveries",
    response_model=list[Attempt],
    responses={**AUTH_RESPONSES, **problem_responses(404, 422)},
)
async def deliveries(request_id: UUID, request: Request, caller: Principal = READ) -> Any:
    """Every webhook attempt for a request, with its time, status code and latency."""
    repository = request.app.state.repository
    if not await repository.request_exists(request_id, caller.tenant_id):
        return problem(404, "not-found", "Unknown request", f"no request with id {request_id}")
    rows = await repository.deliveries_for(request_id)
    return [
        Attempt(
            delivery_id=r["delivery_id"],
            webhook_id=r["event_id"],
            target_url=r["target_url"],
            delivery_status=r["status"],
            attempt=r["attempt"],
            attempted_at=r["attempted_at"],
            status_code=r["status_code"],
            error=r["error"],
            latency_ms=r["latency_ms"],
        )
        for r in rows
    ]


@router.get("/dead-letters", response_model=list[DeadLetter], responses=AUTH_RESPONSES)
async def dead_letters(request: Request, caller: Principal = WEBHOOKS) -> Any:
    """Deliveries that exhausted their attempts or were refused for good."""
    rows = await request.app.state.repository.dead_letters(caller.tenant_id)
    return [
        DeadLetter(
            webhook_id=r["event_id"], **{k: r[k] for k in DeadLetter.model_fields if k != "webhook_id"}
        )
        for r in rows
    ]


@router.post(
    "/deliveries/{delivery_id}/replay",
    status_code=202,
    responses={**AUTH_RESPONSES, **problem_responses(404, 422)},
)
async def replay(delivery_id: UUID, request: Request, caller: Principal = WEBHOOKS) -> Any:
    """Send a dead-lettered delivery again, with the same webhook-id and a fresh schedule."""
    if not await request.app.state.repository.replay(caller.tenant_id, delivery_id):
        return problem(404, "not-found", "No such dead letter", f"no dead delivery {delivery_id}")
    return {"delivery_id": str(delivery_id), "status": "pending"}


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(503))
async def readyz(request: Request) -> Any:
    """PostgreSQL is reachable."""
    try:
        await request.app.state.pool.fetchval("SELECT 1")
    except Exception:  # noqa: BLE001
        return problem(503, "not-ready", "Not ready", "the database is unreachable")
    return {"status": "ok", "database": "ok"}
