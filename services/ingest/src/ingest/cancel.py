"""Cancel a request (scope `upload`) and set tenant weights (scope `admin`, operators only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import structlog
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pipeline_runtime.api_access import api_key
from pipeline_runtime.auth import DEFAULT_TENANT, Principal
from pipeline_runtime.httpkit import problem, problem_responses
from pydantic import BaseModel, Field

from .access import TENANT_ID_PATTERN
from .control_store import ControlStore
from .weights import MAX_WEIGHT

log = structlog.get_logger(__name__)
router = APIRouter()
UPLOAD = api_key("upload")
ADMIN = api_key("admin")
TenantId = Annotated[str, Path(pattern=TENANT_ID_PATTERN, description="The tenant.")]


class Cancelled(BaseModel):
    request_id: UUID
    status: Literal["cancelling", "cancelled"] = Field(
        description="`cancelled`: finished now; `cancelling`: images already started may still "
        "finish, then the request ends `cancelled` (one request.completed event, one webhook)."
    )
    cancelled_images: int = Field(description="Images that will never run.")
    in_flight_images: int = Field(description="Images already started, allowed to finish.")


class TenantWeight(BaseModel):
    tenant_id: str
    weight: int = Field(ge=1, le=MAX_WEIGHT, description="Share of the compressors; 1 unless set.")


class NewWeight(BaseModel):
    weight: int = Field(ge=1, le=MAX_WEIGHT, description="Share relative to other tenants (default 1).")


def control(request: Request) -> ControlStore:
    return request.app.state.resources.control


@router.delete(
    "/requests/{request_id}",
    status_code=202,
    response_model=Cancelled,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def cancel_request(request_id: UUID, request: Request, caller: Annotated[Principal, UPLOAD]) -> Any:
    """Cancel a request: images not started never run; 409 once it has finished."""
    outcome = await control(request).cancel(request_id, caller.tenant_id)
    if outcome.state == "not_found":
        return problem(404, "not-found", "Not found", f"no request {request_id} of your tenant")
    if outcome.state == "finished":
        return problem(409, "finished", "Request finished", "the request has already finished")
    log.info(
        "request.cancel",
        request_id=str(request_id),
        tenant_id=caller.tenant_id,
        cancelled=outcome.cancelled_images,
        in_flight=outcome.in_flight,
    )
    body = Cancelled(
        request_id=request_id,
        status=outcome.state,
        cancelled_images=outcome.cancelled_images,
        in_flight_images=outcome.in_flight,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=202)


def operators_only(caller: Principal) -> JSONResponse | None:
    """Weights divide the service between tenants: only the default tenant's admins set them."""
    if caller.tenant_id == DEFAULT_TENANT:
        return None
    return problem(403, "forbidden", "Forbidden", "only admin keys of the default tenant manage weights")


@router.get(
    "/tenants/{tenant_id}/weight",
    response_model=TenantWeight,
    responses=problem_responses(401, 403, 422, 503),
)
async def get_weight(tenant_id: TenantId, request: Request, caller: Annotated[Principal, ADMIN]) -> Any:
    """A tenant's scheduling weight (1 unless set)."""
    if refused := operators_only(caller):
        return refused
    return TenantWeight(tenant_id=tenant_id, weight=await control(request).weight(tenant_id))


@router.put(
    "/tenants/{tenant_id}/weight",
    response_model=TenantWeight,
    responses=problem_responses(400, 401, 403, 422, 503),
)
async def put_weight(
    tenant_id: TenantId, body: NewWeight, request: Request, caller: Annotated[Principal, ADMIN]
) -> Any:
    """Set a tenant's share of the compressors relative to the others (weights 3 and 1: 75 % / 25 %)."""
    if refused := operators_only(caller):
        return refused
    await control(request).set_weight(tenant_id, body.weight)
    log.info("tenant.weight_set", tenant_id=tenant_id, weight=body.weight)
    return TenantWeight(tenant_id=tenant_id, weight=body.weight)
