"""The dispatcher with fakes: which secret signs what, what each answer records, how many fly at once."""

from __future__ import annotations

import asyncio

import pytest
from notifier.sender import Answer
from notifier.worker import Dispatcher

from tests.unit.notifier.fakes import FakeDeliveryRepository, FakeSender, FakeSubscriptions, FakeTenantSecrets

SCHEDULE = [1.0, 10.0]
FALLBACK_SECRET = "whsec_fallback"  # noqa: S105 - a test signing secret


def dispatcher(repo, subs, sender, *, concurrency: int = 8, tenants=None) -> Dispatcher:
    return Dispatcher(
        repo,
        subs,
        sender,
        tenants if tenants is not None else FakeTenantSecrets(),
        FALLBACK_SECRET,
        SCHEDULE,
        concurrency=concurrency,
        lease_seconds=30,
        idle_seconds=0.01,
    )


async def dispatch_all(d: Dispatcher) -> int:
    claimed = await d.dispatch_due()
    await d.drain()
    return claimed


async def test_a_per_request_webhook_is_signed_with_its_tenants_secret_and_its_event_id():
    repo, subs, sender, tenants = (
        FakeDeliveryRepository(),
        FakeSubscriptions(),
        FakeSender(),
        FakeTenantSecrets(),
    )
    tenants.secrets = {"t1": ["whsec_t1"], "t2": ["whsec_t2"]}
    ours, theirs = repo.add("t1", url="http://127.0.0.1:9/a"), repo.add("t2", url="http://127.0.0.1:9/b")
    assert await dispatch_all(dispatcher(repo, subs, sender, tenants=tenants)) == 2
    signed = {s.url: (s.secrets, s.message_id) for s in sender.sent}
    assert signed[ours.target_url] == (["whsec_t1"], str(ours.event_id))
    assert signed[theirs.target_url] == (["whsec_t2"], str(theirs.event_id))
    assert repo.rows[ours.delivery_id].status == "delivered"


async def test_during_a_rotation_overlap_a_per_request_webhook_is_signed_with_both_secrets():
    repo, subs, sender, tenants = (
        FakeDeliveryRepository(),
        FakeSubscriptions(),
        FakeSender(),
        FakeTenantSecrets(),
    )
    tenants.secrets = {"t1": ["whsec_new", "whsec_old"]}
    repo.add("t1")
    await dispatch_all(dispatcher(repo, subs, sender, tenants=tenants))
    assert [s.secrets for s in sender.sent] == [["whsec_new", "whsec_old"]]


async def test_without_storable_secrets_a_per_request_webhook_gets_the_unshared_fallback():
    repo, subs, sender = FakeDeliveryRepository(), FakeSubscriptions(), FakeSender()
    repo.add("t1")
    await dispatch_all(dispatcher(repo, subs, sender, tenants=FakeTenantSecrets(can_store_secrets=False)))
    assert [s.secrets for s in sender.sent] == [[FALLBACK_SECRET]]


async def test_a_subscription_delivery_is_signed_with_that_subscriptions_secret():
    repo, subs, sender = FakeDeliveryRepository(), FakeSubscriptions(), FakeSender()
    created, secret = await subs.create("t1", "http://127.0.0.1:9/s", None)
    repo.add("t1", url=created.url, subscription_id=created.subscription_id)
    await dispatch_all(dispatcher(repo, subs, sender))
    assert [s.secrets for s in sender.sent] == [[secret]]


async def test_a_delivery_whose_subscription_is_gone_is_not_sent():
    repo, subs, sender = FakeDeliveryRepository(), FakeSubscriptions(), FakeSender()
    created, _ = await subs.create("t1", "http://127.0.0.1:9/s", None)
    repo.add("t1", url=created.url, subscription_id=created.subscription_id)
    await subs.delete("t1", created.subscription_id)
    await dispatch_all(dispatcher(repo, subs, sender))
    assert sender.sent == []


@pytest.mark.parametrize(
    ("answer", "status", "verdict"),
    [
        (Answer(200, None, 3.0, excerpt="thanks"), "delivered", "delivered"),
        (Answer(503, None, 3.0, excerpt="busy"), "pending", "retry"),
        (Answer(None, "timeout", 3.0), "pending", "retry"),
        (Answer(404, None, 3.0), "dead", "dead"),
        (Answer(None, "address_refused: 10.0.0.1", 1.0, permanent=True), "dead", "dead"),
    ],
)
async def test_each_answer_is_recorded_with_its_verdict_and_excerpt(answer, status, verdict):
    repo, subs = FakeDeliveryRepository(), FakeSubscriptions()
    delivery = repo.add("t1")
    await dispatch_all(dispatcher(repo, subs, FakeSender(answers={delivery.target_url: answer})))
    row = repo.rows[delivery.delivery_id]
    [recorded] = row.attempts
    assert (row.status, recorded.verdict) == (status, verdict)
    assert (recorded.status_code, recorded.error, recorded.excerpt) == (
        answer.status_code,
        answer.error,
        answer.excerpt,
    )
    assert (recorded.delay is not None) == (verdict == "retry")


async def test_the_last_scheduled_attempt_dead_letters():
    repo, subs = FakeDeliveryRepository(), FakeSubscriptions()
    delivery = repo.add("t1", attempts=len(SCHEDULE))
    await dispatch_all(
        dispatcher(repo, subs, FakeSender(answers={delivery.target_url: Answer(500, None, 1.0)}))
    )
    assert repo.rows[delivery.delivery_id].status == "dead"


async def test_no_more_than_the_concurrency_limit_is_in_flight():
    repo, subs = FakeDeliveryRepository(), FakeSubscriptions()
    for _ in range(5):
        repo.add("t1")
    gate = asyncio.Event()
    sender = FakeSender(gate=gate)
    d = dispatcher(repo, subs, sender, concurrency=2)
    assert await d.dispatch_due() == 2
    assert await d.dispatch_due() == 0  # both slots busy: nothing more is claimed
    await asyncio.sleep(0)
    assert len(sender.sent) == 2
    gate.set()
    await d.drain()
    assert await dispatch_all(d) == 2
    assert await dispatch_all(d) == 1
    assert sum(r.status == "delivered" for r in repo.rows.values()) == 5


async def test_a_failing_claim_propagates_so_the_supervisor_restarts_the_loop():
    repo = FakeDeliveryRepository(fail_with=OSError("connection refused"))
    with pytest.raises(OSError, match="connection refused"):
        await dispatcher(repo, FakeSubscriptions(), FakeSender()).dispatch_due()
