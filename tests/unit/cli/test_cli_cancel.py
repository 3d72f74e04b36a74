"""imgpipe cancel: the DELETE it sends and what it shows; status shows queued and cancelled images."""

from __future__ import annotations

import json

from tests.unit.cli.fake_pipeline import INGEST_URL, image


def test_cancel_sends_delete_to_ingest_and_shows_what_will_never_run(imgpipe, fake):
    request = fake.add_request(["processing"], [image(1, 0)] * 3)

    result = imgpipe("cancel", request.request_id, "--json", env={"IMGPIPE_API_KEY": "imgp_k"})

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cancelled_images"] == 3
    [sent] = [r for r in fake.received if r.method == "DELETE"]
    assert str(sent.url) == f"{INGEST_URL}/requests/{request.request_id}"
    assert sent.headers["authorization"] == "Bearer imgp_k"


def test_cancelling_a_finished_request_exits_one_with_the_reason(imgpipe, fake):
    request = fake.add_request(["completed"], [image(1, 0)])
    request.polls = 1  # its completion was seen

    result = imgpipe("cancel", request.request_id)

    assert result.exit_code == 1
    assert "already finished" in result.output


def test_an_unknown_request_exits_one(imgpipe):
    assert imgpipe("cancel", "0b0e7e0e-0000-4000-8000-000000000000").exit_code == 1


def test_status_shows_queued_and_cancelled_images(imgpipe, fake):
    request = fake.add_request(["cancelled"], [image(1, 0)])

    result = imgpipe("status", request.request_id)

    assert result.exit_code == 0, result.output
    assert "Queued" in result.output
    assert "Cancelled" in result.output
    assert "cancelled" in result.output
