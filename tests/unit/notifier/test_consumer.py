"""The consumer of request.completed with fakes: what gets scheduled, and when offsets are committed."""

from __future__ import annotations

import uuid

import pytest
from notifier.worker import consume_round
from pipeline_schemas import RequestCompleted, utc_now

from tests.unit.notifier.fakes import FakeConsumer, FakeDeliveryRepository, FakeMessage, FakeSubscriptions


def completed(tenant: str = "t1", webhook_url: str | None = "http://127.0.0.1:9/own") -> RequestCompleted:
    return RequestCompleted(
        request_id=uuid.uuid4(),
        tenant_id=tenant,
        status="completed",
        total_images=1,
        processed_images=1,
        failed_images=0,
        completed_at=utc_now(),
        output_csv_url="http://127.0.0.1:9/o.csv",
        webhook_url=webhook_url,
    )


def message(event: RequestCompleted, offset: int, partition: int = 0) -> FakeMessage:
    return FakeMessage(event.model_dump_json().encode(), offset, partition)


async def test_an_event_schedules_its_own_webhook_and_its_tenants_subscriptions_then_commits():
    repo, subs = FakeDeliveryRepository(), FakeSubscriptions()
    await subs.create("t1", "http://127.0.0.1:9/sub", None)
    await subs.create("t2", "http://127.0.0.1:9/other-tenant", None)
    event = completed()
    consumer = FakeConsumer([[message(event, 7)]])
    assert await consume_round(consumer, repo, subs) == 1
    urls = sorted(r.delivery.target_url for r in repo.rows.values())
    assert urls == ["http://127.0.0.1:9/own", "http://127.0.0.1:9/sub"]
    assert {r.tenant_id for r in repo.rows.values()} == {"t1"}
    assert {r.delivery.event_id for r in repo.rows.values()} == {event.event_id}
    assert consumer.committed == [[("request.completed", 0, 8)]]


async def test_a_replayed_event_schedules_nothing_new():
    repo, subs = FakeDeliveryRepository(), FakeSubscriptions()
    event = completed()
    consumer = FakeConsumer([[message(event, 1)], [message(event, 2)]])
    await consume_round(consumer, repo, subs)
    await consume_round(consumer, repo, subs)
    assert len(repo.rows) == 1


async def test_an_undecodable_message_is_skipped_and_still_committed():
    repo, subs = FakeDeliveryRepository(), FakeSubscriptions()
    good = completed()
    consumer = FakeConsumer([[FakeMessage(b"not json", 3), message(good, 4)]])
    await consume_round(consumer, repo, subs)
    assert [r.delivery.request_id for r in repo.rows.values()] == [good.request_id]
    assert consumer.committed == [[("request.completed", 0, 5)]]


async def test_offsets_are_not_committed_when_the_deliveries_could_not_be_stored():
    repo, subs = FakeDeliveryRepository(fail_with=OSError("database down")), FakeSubscriptions()
    consumer = FakeConsumer([[message(completed(), 9)]])
    with pytest.raises(OSError, match="database down"):
        await consume_round(consumer, repo, subs)
    assert consumer.committed == []


async def test_an_event_with_no_webhook_and_no_subscription_schedules_nothing_but_is_committed():
    repo, subs = FakeDeliveryRepository(), FakeSubscriptions()
    consumer = FakeConsumer([[message(completed(webhook_url=None), 0, partition=2)]])
    await consume_round(consumer, repo, subs)
    assert repo.rows == {}
    assert consumer.committed == [[("request.completed", 2, 1)]]
