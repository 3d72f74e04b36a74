"""Standard Webhooks signing (checked by an independent verifier) and the delivery verdicts."""

import base64
import time

import pytest
from notifier.delivery import Verdict, judge
from notifier.handlers import webhook_body
from notifier.signing import new_secret, signature_headers
from pipeline_schemas import RequestCompleted, utc_now

from tests.support.webhooks import verify_standard_webhook

SCHEDULE = [1.0, 10.0, 100.0]


def signed(body: bytes, *, secret: str, timestamp: int | None = None) -> dict[str, str]:
    return signature_headers([secret], "msg_123", timestamp or int(time.time()), body)


def test_a_signed_webhook_verifies_with_an_independent_implementation():
    secret = new_secret()
    assert verify_standard_webhook(secret, signed(b'{"a":1}', secret=secret), b'{"a":1}')


def test_a_tampered_body_fails_verification():
    secret = new_secret()
    assert not verify_standard_webhook(secret, signed(b'{"a":1}', secret=secret), b'{"a":2}')


def test_an_old_timestamp_fails_verification():
    secret = new_secret()
    old = int(time.time()) - 3600
    assert not verify_standard_webhook(secret, signed(b"{}", secret=secret, timestamp=old), b"{}")


def test_another_secret_fails_verification():
    assert not verify_standard_webhook(new_secret(), signed(b"{}", secret=new_secret()), b"{}")


def test_during_an_overlap_receivers_holding_only_the_old_or_only_the_new_secret_both_verify():
    old, new, stranger = new_secret(), new_secret(), new_secret()
    body = b'{"a":1}'
    headers = signature_headers([new, old], "msg_123", int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify_standard_webhook(old, headers, body)
    assert verify_standard_webhook(new, headers, body)
    assert not verify_standard_webhook(stranger, headers, body)


def test_a_webhook_without_any_secret_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        signature_headers([], "msg_123", int(time.time()), b"{}")


def test_secrets_have_the_whsec_form_with_a_32_byte_key():
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


def test_signature_header_is_versioned_v1():
    assert signed(b"{}", secret=new_secret())["webhook-signature"].startswith("v1,")


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_any_2xx_is_delivered(status):
    assert judge(status, 1, SCHEDULE).verdict is Verdict.DELIVERED


@pytest.mark.parametrize("status", [None, 408, 429, 500, 503])
def test_network_errors_timeouts_5xx_and_429_are_retried_on_the_schedule(status):
    outcome = judge(status, 2, SCHEDULE)
    assert outcome.verdict is Verdict.RETRY
    assert 8.0 <= outcome.delay <= 12.0  # the second planned delay, with ±20 % jitter


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_other_client_errors_are_dead_at_once(status):
    assert judge(status, 1, SCHEDULE).verdict is Verdict.DEAD


def test_the_last_attempt_dead_letters():
    assert judge(503, len(SCHEDULE) + 1, SCHEDULE).verdict is Verdict.DEAD


def test_retry_after_is_honoured_as_a_floor():
    assert judge(429, 1, SCHEDULE, retry_after=30.0).delay == 30.0


def test_the_default_schedule_is_about_eight_attempts_over_about_a_day():
    from notifier.config import Settings

    schedule = Settings().retry_schedule
    assert len(schedule) + 1 == 8
    assert 20 * 3600 <= sum(schedule) <= 30 * 3600


def test_webhook_body_carries_what_subscribers_need():
    import json
    from uuid import uuid4

    event = RequestCompleted(
        request_id=uuid4(),
        status="completed_with_errors",
        total_images=3,
        processed_images=2,
        failed_images=1,
        completed_at=utc_now(),
        output_csv_url="http://t/o.csv",
    )
    body = json.loads(webhook_body(event))
    assert body["type"] == "request.completed"
    assert body["request_id"] == str(event.request_id)
    assert (body["status"], body["processed_images"], body["failed_images"]) == (
        "completed_with_errors",
        2,
        1,
    )
    assert body["output_csv_url"] == "http://t/o.csv"
    assert body["output_formats"] is None  # not counted by this emitter


def test_webhook_body_says_which_formats_the_images_were_stored_in():
    import json
    from uuid import uuid4

    event = RequestCompleted(
        request_id=uuid4(),
        status="completed",
        total_images=3,
        processed_images=3,
        failed_images=0,
        completed_at=utc_now(),
        output_csv_url="http://t/o.csv",
        output_formats={"webp": 2, "jpeg": 1},
    )
    assert json.loads(webhook_body(event))["output_formats"] == {"webp": 2, "jpeg": 1}


def test_a_refused_address_is_dead_at_once_however_many_attempts_remain():
    assert judge(None, 1, SCHEDULE, permanent=True).verdict is Verdict.DEAD
