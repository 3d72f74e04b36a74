"""PostgreSQL adapter: a request and its images, written in one transaction.

The images wait there, queued, until the scheduler (admission.py) admits them into the outbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import asyncpg

from .admission_store import ADMISSIONS_CHANNEL
from .uploads import UploadPlan


@dataclass(frozen=True)
class AcceptedRequest:
    request_id: UUID
    file_sha256: str
    total_products: int
    total_images: int


class IdempotencyConflict(Exception):
    """The idempotency key was used before with a different file."""


class UploadRepository(Protocol):
    async def find_by_idempotency_key(self, tenant_id: str, key: str) -> AcceptedRequest | None: ...
    async def record(self, plan: UploadPlan) -> AcceptedRequest: ...
    async def pending_images(self, tenant_id: str) -> int: ...


class AsyncpgUploadRepository:
    """Writes with COPY (text format, encoded off the event loop) so that 300,000 images commit in seconds."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def find_by_idempotency_key(self, tenant_id: str, key: str) -> AcceptedRequest | None:
        row = await self._pool.fetchrow(
            "SELECT request_id, file_sha256, total_products, total_images FROM requests"
            " WHERE tenant_id = $1 AND idempotency_key = $2",
            tenant_id,
            key,
        )
        return AcceptedRequest(**row) if row else None

    async def pending_images(self, tenant_id: str) -> int:
        """Images of the tenant not finished yet (index requests_unfinished_by_tenant)."""
        return await self._pool.fetchval(
            "SELECT coalesce(sum(total_images - processed_images - failed_images - cancelled_images), 0)"
            " FROM requests"
            " WHERE tenant_id = $1 AND completed_at IS NULL",
            tenant_id,
        )

    async def record(self, plan: UploadPlan) -> AcceptedRequest:
        """Insert everything or nothing; a concurrent twin with the same key wins the race."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await self._insert_request(conn, plan)
                await self._copy_images(conn, plan)
                # Wakes the scheduler of whichever ingest instance leads; sent at commit only.
                await conn.execute("SELECT pg_notify($1, '')", ADMISSIONS_CHANNEL)
        except asyncpg.UniqueViolationError:
            key = plan.options.idempotency_key
            first = key and await self.find_by_idempotency_key(plan.options.tenant_id, key)
            if not first:
                raise
            return first
        return AcceptedRequest(plan.request_id, plan.file_sha256, plan.total_products, plan.total_images)

    @staticmethod
    async def _insert_request(conn: asyncpg.Connection, plan: UploadPlan) -> None:
        opts = plan.options
        await conn.execute(
            "INSERT INTO requests (request_id, tenant_id, quality, webhook_url, idempotency_key,"
            " file_sha256, total_products, total_images, output_format, quality_auto, jpeg_optimize,"
            " jpeg_progressive, priority) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            plan.request_id,
            opts.tenant_id,
            None if opts.quality == "auto" else opts.quality,
            opts.webhook_url,
            opts.idempotency_key,
            plan.file_sha256,
            plan.total_products,
            plan.total_images,
            opts.format,
            opts.quality == "auto",
            opts.optimize,
            opts.progressive,
            opts.priority,
        )

    @staticmethod
    async def _copy_images(conn: asyncpg.Connection, plan: UploadPlan) -> None:
        await conn.copy_to_table(
            "products",
            source=products_text(plan),
            columns=["request_id", "row_number", "serial_number", "product_name"],
            format="text",
        )
        await conn.copy_to_table(
            "images",
            source=images_text(plan),
            columns=["image_id", "request_id", "row_number", "serial_number", "position", "input_url"],
            format="text",
        )


async def products_text(plan: UploadPlan) -> AsyncIterator[bytes]:
    """The products' COPY text, each chunk encoded in a thread while the server reads the previous one."""
    for chunk in range(plan.copy_chunks()):
        yield await asyncio.to_thread(plan.products_copy, chunk)


async def images_text(plan: UploadPlan) -> AsyncIterator[bytes]:
    first_image = 0
    for chunk in range(plan.copy_chunks()):
        data, first_image = await asyncio.to_thread(plan.images_copy, chunk, first_image)
        yield data
