"""Hand-written fakes of the notifier's Protocols (repository, subscriptions, sender, consumer, keys).

Each keeps its state in plain dicts and lists and records what it was asked, so unit tests can
check both the outcome and the tenant every call carried. The real adapters are proven against
PostgreSQL and real HTTP servers in tests/integration/notifier and tests/unit/notifier/test_sender_*.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from uuid import UUID

from notifier.repository import Attempt, AttemptResult, DeadLetter, Delivery, Target
from notifier.sender import Answer
from notifier.subscriptions import Subscription, SubscriptionLimitReached
from notifier.tenant_secrets import Rotated
from pipeline_runtime.auth import Principal
from pipeline_schemas import RequestCompleted

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class StoredDelivery:
    delivery: Delivery
    tenant_id: str
    status: str = "pending"
    leased: bool = False
    attempts: list[AttemptResult] = field(default_factory=list)


@dataclass
class FakeDeliveryRepository:
    rows: dict[UUID, StoredDelivery] = field(default_factory=dict)
    requests: set[tuple[str, UUID]] = field(default_factory=set)  # (tenant, request id)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, tenant) of tenant-scoped calls
    fail_with: Exception | None = None

    def add(
        self,
        tenant: str,
        *,
        url: str = "http://127.0.0.1:9/h",
        status: str = "pending",
        subscription_id: UUID | None = None,
        attempts: int = 0,
    ) -> Delivery:
        request_id = uuid.uuid4()
        self.requests.add((tenant, request_id))
        delivery = Delivery(
            uuid.uuid4(), uuid.uuid4(), request_id, url, b"{}", attempts, subscription_id, tenant
        )
        self.rows[delivery.delivery_id] = StoredDelivery(delivery, tenant, status)
        return delivery

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    async def enqueue(self, event: RequestCompleted, payload: bytes, targets: list[Target]) -> None:
        self._check()
        known = {(r.delivery.event_id, r.delivery.target_url) for r in self.rows.values()}
        for subscription_id, url in targets:
            if (event.event_id, url) in known:
                continue
            delivery = Delivery(
                uuid.uuid4(),
                event.event_id,
                event.request_id,
                url,
                payload,
                0,
                subscription_id,
                event.tenant_id,
            )
            self.rows[delivery.delivery_id] = StoredDelivery(delivery, event.tenant_id)

    async def claim_due(self, limit: int, lease_seconds: float) -> list[Delivery]:
        self._check()
        due = [r for r in self.rows.values() if r.status == "pending" and not r.leased][:limit]
        for row in due:
            row.leased = True
        return [r.delivery for r in due]

    async def record_attempt(self, delivery: Delivery, result: AttemptResult) -> None:
        row = self.rows[delivery.delivery_id]
        row.attempts.append(result)
        row.status = "pending" if result.verdict == "retry" else result.verdict
        row.leased = False
        row.delivery = replace(row.delivery, attempts=delivery.attempts + 1)

    async def request_exists(self, tenant_id: str, request_id: UUID) -> bool:
        self.calls.append(("request_exists", tenant_id))
        self._check()
        return (tenant_id, request_id) in self.requests

    async def deliveries_for(self, tenant_id: str, request_id: UUID) -> list[Attempt]:
        self.calls.append(("deliveries_for", tenant_id))
        return [
            Attempt(
                r.delivery.delivery_id,
                r.delivery.event_id,
                r.delivery.target_url,
                r.status,
                n + 1,
                NOW,
                a.status_code,
                a.error,
                a.latency_ms,
                a.excerpt,
            )
            for r in self.rows.values()
            if r.tenant_id == tenant_id and r.delivery.request_id == request_id
            for n, a in enumerate(r.attempts)
        ]

    async def dead_letters(self, tenant_id: str, limit: int = 100) -> list[DeadLetter]:
        self.calls.append(("dead_letters", tenant_id))
        return [
            DeadLetter(
                r.delivery.delivery_id,
                r.delivery.event_id,
                r.delivery.request_id,
                r.delivery.target_url,
                r.delivery.attempts,
                None,
                "gone",
                NOW,
            )
            for r in self.rows.values()
            if r.tenant_id == tenant_id and r.status == "dead"
        ][:limit]

    async def replay(self, tenant_id: str, delivery_id: UUID) -> bool:
        self.calls.append(("replay", tenant_id))
        row = self.rows.get(delivery_id)
        if row is None or row.tenant_id != tenant_id or row.status != "dead":
            return False
        row.status = "pending"
        row.delivery = replace(row.delivery, attempts=0)
        return True


@dataclass
class FakeSubscriptions:
    rows: dict[UUID, Subscription] = field(default_factory=dict)
    secrets: dict[UUID, str] = field(default_factory=dict)
    can_store_secrets: bool = True
    limit: int = 25
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def create(self, tenant_id: str, url: str, description: str | None) -> tuple[Subscription, str]:
        self.calls.append(("create", tenant_id))
        if len(await self.list(tenant_id)) >= self.limit:
            raise SubscriptionLimitReached(f"a tenant may have at most {self.limit} subscriptions")
        created = Subscription(uuid.uuid4(), tenant_id, url, description, NOW)
        self.rows[created.subscription_id] = created
        self.secrets[created.subscription_id] = secret = f"whsec_fake{len(self.rows)}"
        return created, secret

    async def list(self, tenant_id: str) -> list[Subscription]:
        return [s for s in self.rows.values() if s.tenant_id == tenant_id]

    async def delete(self, tenant_id: str, subscription_id: UUID) -> bool:
        self.calls.append(("delete", tenant_id))
        found = self.rows.get(subscription_id)
        if found is None or found.tenant_id != tenant_id:
            return False
        del self.rows[subscription_id]
        self.secrets.pop(subscription_id, None)
        return True

    async def targets_of(self, tenant_id: str) -> list[tuple[UUID, str]]:
        return [(s.subscription_id, s.url) for s in await self.list(tenant_id)]

    async def secrets_of(self, subscription_ids: set[UUID]) -> dict[UUID, str]:
        return {i: self.secrets[i] for i in subscription_ids if i in self.secrets}


@dataclass
class FakeTenantSecrets:
    """Each tenant's signing secrets, newest first; made on first need like the real one."""

    secrets: dict[str, list[str]] = field(default_factory=dict)
    can_store_secrets: bool = True
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def signing_secrets(self, tenant_ids: set[str]) -> dict[str, list[str]]:
        if not self.can_store_secrets:
            return {}
        for tenant_id in tenant_ids:
            self.secrets.setdefault(tenant_id, [f"whsec_first-{tenant_id}"])
        return {t: list(self.secrets[t]) for t in tenant_ids}

    async def rotate(self, tenant_id: str) -> Rotated:
        self.calls.append(("rotate", tenant_id))
        new = f"whsec_rotated{len(self.calls)}-{tenant_id}"
        previous = self.secrets.get(tenant_id, [])[:1]
        self.secrets[tenant_id] = [new, *previous]
        return Rotated(new, NOW, NOW if previous else None)


@dataclass
class Sent:
    url: str
    secrets: Sequence[str]
    message_id: str
    body: bytes


@dataclass
class FakeSender:
    """Answers per URL (200 by default); `gate`, when set, holds every send until it opens."""

    answers: dict[str, Answer] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    gate: asyncio.Event | None = None

    async def send(self, url: str, secrets: Sequence[str], message_id: str, body: bytes) -> Answer:
        self.sent.append(Sent(url, list(secrets), message_id, body))
        if self.gate is not None:
            await self.gate.wait()
        return self.answers.get(url, Answer(200, None, 1.0, excerpt="ok"))


@dataclass
class FakeMessage:
    raw: bytes
    at: int
    partition_no: int = 0
    topic_name: str = "request.completed"

    def value(self) -> bytes:
        return self.raw

    def offset(self) -> int:
        return self.at

    def partition(self) -> int:
        return self.partition_no

    def topic(self) -> str:
        return self.topic_name


@dataclass
class FakeConsumer:
    batches: list[list[FakeMessage]] = field(default_factory=list)
    committed: list[list[tuple[str, int, int]]] = field(default_factory=list)

    async def consume(self, max_messages: int, timeout: float) -> list[FakeMessage]:
        return self.batches.pop(0)[:max_messages] if self.batches else []

    async def commit(self, offsets: list) -> None:
        self.committed.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])


@dataclass
class FakeKeyStore:
    """Keys `<tenant>:<scope>,<scope>` belong to that tenant with those scopes."""

    async def find(self, key: str) -> Principal | None:
        tenant, _, scopes = key.partition(":")
        return Principal(uuid.uuid4(), tenant, frozenset(scopes.split(","))) if scopes else None
