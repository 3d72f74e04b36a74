"""Admin routes: create, list and revoke API keys (scope `admin`).

Admin keys of the default tenant (the bootstrap key's) manage the keys of every tenant; an admin
key of another tenant manages only its own tenant's keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pipeline_runtime.api_access import api_key
from pipeline_runtime.auth import DEFAULT_TENANT, ApiKeyInfo, Principal
from pipeline_runtime.httpkit import problem, problem_responses
from pydantic import BaseModel, Field

from .access import TENANT_ID_PATTERN, KeyStore

router = APIRouter()
ADMIN = api_key("admin")
Scope = Literal["upload", "read", "webhooks", "admin"]
ADMIN_ERRORS = (401, 403, 422, 503)


class NewKey(BaseModel):
    tenant_id: str = Field(pattern=TENANT_ID_PATTERN, description="The tenant the key acts for.")
    scopes: list[Scope] = Field(min_length=1, description="What the key may do; `admin` implies all.")
    name: str | None = Field(None, max_length=200, description="A label to recognise the key by.")


class KeyOut(BaseModel):
    key_id: UUID
    tenant_id: str
    prefix: str = Field(description="The key's first characters, to recognise it; not a secret.")
    scopes: list[str]
    name: str | None
    created_at: datetime
    last_used_at: datetime | None = Field(description="Refreshed at most once a minute.")
    revoked_at: datetime | None


class CreatedKey(KeyOut):
    key: str = Field(description="The API key itself. Shown only in this answer: only its hash is stored.")


def key_out(info: ApiKeyInfo) -> KeyOut:
    return KeyOut.model_validate(info, from_attributes=True)


def store(request: Request) -> KeyStore:
    return request.app.state.key_store


def managed_tenant(caller: Principal) -> str | None:
    """The tenant whose keys the caller manages; None (every tenant) for the default tenant's admins."""
    return None if caller.tenant_id == DEFAULT_TENANT else caller.tenant_id


def manages(caller: Principal, tenant_id: str) -> bool:
    return managed_tenant(caller) in (None, tenant_id)


def other_tenant(caller: Principal) -> Response:
    detail = f"an admin key of tenant {caller.tenant_id!r} manages only that tenant's keys"
    return problem(403, "forbidden", "Forbidden", detail)


@router.post(
    "/keys", status_code=201, response_model=CreatedKey, responses=problem_responses(400, *ADMIN_ERRORS)
)
async def create_key(body: NewKey, request: Request, caller: Annotated[Principal, ADMIN]) -> Any:
    """Create an API key for a tenant; this answer is the only time the key is shown."""
    if not manages(caller, body.tenant_id):
        return other_tenant(caller)
    info, key = await store(request).create(body.tenant_id, list(body.scopes), body.name)
    created = CreatedKey(**key_out(info).model_dump(), key=key)
    headers = {"Cache-Control": "no-store"}
    return Response(created.model_dump_json(), 201, headers, media_type="application/json")


@router.get("/keys", response_model=list[KeyOut], responses=problem_responses(*ADMIN_ERRORS))
async def list_keys(
    request: Request,
    caller: Annotated[Principal, ADMIN],
    tenant_id: Annotated[str | None, Query(max_length=64, description="Only this tenant's keys.")] = None,
) -> Any:
    """The keys the caller manages (one tenant's, or every tenant's), oldest first; never the keys themselves."""
    if tenant_id is not None and not manages(caller, tenant_id):
        return other_tenant(caller)
    return [key_out(info) for info in await store(request).list(tenant_id or managed_tenant(caller))]


@router.delete(
    "/keys/{key_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def revoke_key(key_id: UUID, request: Request, caller: Annotated[Principal, ADMIN]) -> Response:
    """Revoke a key: refused from then on. 404 if unknown, already revoked or another tenant's."""
    if not await store(request).revoke(key_id, managed_tenant(caller)):
        return problem(404, "not-found", "Unknown key", f"no active key {key_id}")
    return Response(status_code=204)
