"""The CLI's pieces on their own: the local CSV check, rate and ETA, file names, the progress views."""

from __future__ import annotations

import io

import pytest
from imgpipe_cli.downloads import file_name_for
from imgpipe_cli.outcome import exit_code_for
from imgpipe_cli.precheck import RowProblem, check_product_csv
from imgpipe_cli.render import describe_eta
from imgpipe_cli.summary import Summary
from imgpipe_cli.watching import (
    LiveProgressBar,
    ProgressLines,
    Snapshot,
    Throughput,
    rate_and_eta,
    snapshot_of,
)
from rich.console import Console

HEADER = "S. No.,Product Name,Input Image Urls\n"


@pytest.mark.parametrize(
    "text",
    [
        HEADER + '1,Shirt,"http://127.0.0.3/a.png, http://127.0.0.3/b.png"\n',
        "\ufeff" + HEADER + "1,Shirt,http://127.0.0.3/a.png\n",
        "sr no,PRODUCT NAME,input urls\r\n1,Shirt,http://127.0.0.3/a.png\r\n",
        "\n\n" + HEADER + "\n1,Shirt,http://127.0.0.3/a.png\n\n",
        HEADER + "1,Shirt,http://127.0.0.3/a.png,http://127.0.0.3/b.png\n",
        "Input Image Urls,S. No.,Product Name\nhttp://127.0.0.3/a.png,1,Shirt\n",
    ],
    ids=["quoted-list", "bom", "aliases-crlf", "blank-lines", "unquoted-spill", "reordered"],
)
def test_files_the_server_accepts_pass_the_local_check(text):
    assert check_product_csv(text.encode()) == []


def test_rows_without_a_url_are_named_by_their_physical_line():
    text = HEADER + '1,A,http://127.0.0.3/a.png\n2,"B\nsecond line",\n3,C," , "\n'

    assert check_product_csv(text.encode()) == [
        RowProblem(3, "Input Image Urls", "no image URL given"),
        RowProblem(5, "Input Image Urls", "no image URL given"),
    ]


def test_a_url_only_after_the_url_column_does_not_count_when_the_column_is_not_last():
    text = "S. No.,Input Image Urls,Product Name\n1,,Shirt,http://127.0.0.3/a.png\n"

    assert check_product_csv(text.encode()) == [RowProblem(2, "Input Image Urls", "no image URL given")]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", [RowProblem(1, "", "the file is empty; expected a header row: S. No., Product Name, Input Image Urls")]),
        (HEADER.encode(), [RowProblem(1, "", "the file has a header but no product rows")]),
        (HEADER.encode() + b"1,Caf\xe9,http://127.0.0.3/a.png\n", [RowProblem(2, "", "the file is not valid UTF-8; save it as UTF-8")]),
    ],
    ids=["empty", "header-only", "latin-1"],
)  # fmt: skip
def test_files_that_cannot_be_uploaded_are_refused_locally(data, expected):
    assert check_product_csv(data) == expected


def test_the_local_check_stops_listing_after_fifty_problems():
    text = HEADER + "".join(f"{n},P{n},\n" for n in range(1, 200))

    assert len(check_product_csv(text.encode())) == 50


@pytest.mark.parametrize(
    ("then", "now", "seconds", "total", "expected"),
    [
        (0, 10, 5.0, 30, (2.0, 10.0)),
        (4, 4, 5.0, 30, (None, None)),
        (0, 10, 0.0, 30, (None, None)),
        (0, 30, 3.0, 30, (10.0, 0.0)),
    ],
)
def test_rate_is_images_per_second_since_watching_began_and_eta_the_rest_at_that_rate(
    then, now, seconds, total, expected
):
    assert rate_and_eta(then, now, seconds, total) == expected


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("http://127.0.0.1:8001/media/abc.jpg", "7-2.jpg"),
        ("http://127.0.0.1:8001/media/abc.PNG", "7-2.png"),
        ("http://127.0.0.1:8001/media/abc", "7-2.jpg"),
        ("http://127.0.0.1:8001/media/../../etc/passwd.sh?x=1", "7-2.jpg"),
    ],
)
def test_image_files_are_named_by_serial_and_position_with_a_known_suffix(url, name):
    assert file_name_for({"output_url": url, "serial_number": 7, "position": 2}) == name


def test_summary_ratio_counts_only_images_with_both_sizes():
    summary = Summary()
    summary.add({"status": "done", "input_bytes": 1000, "output_bytes": 400})
    summary.add({"status": "done", "input_bytes": None, "output_bytes": None})
    summary.add({"status": "failed", "error": None})
    summary.add({"status": "pending"})

    assert summary.as_dict() == {
        "images": 4,
        "done": 2,
        "failed": 1,
        "pending": 1,
        "input_bytes": 1000,
        "output_bytes": 400,
        "ratio": 0.4,
        "failures_by_reason": {"unknown": 1},
    }


@pytest.mark.parametrize(
    ("status", "code"),
    [("completed", 0), ("completed_with_errors", 2), ("failed", 1), ("processing", 0), ("pending", 0)],
)
def test_exit_codes_follow_the_request_status(status, code):
    assert exit_code_for(status) == code


SNAPSHOT = Snapshot("processing", total=40, done=12, failed=3, rate=2.5, eta=10.0, queued=20, cancelled=1)


def test_on_a_terminal_the_live_bar_shows_done_failed_rate_and_eta():
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system=None)

    with LiveProgressBar(console) as bar:
        bar.show(SNAPSHOT)

    drawn = screen.getvalue()
    expected_parts = (
        "15/40",
        "12 done",
        "3 failed",
        "20 queued",
        "4 in progress",
        "2.5 img/s",
        "ETA 0:00:10",
    )
    for expected in ("processing", *expected_parts):
        assert expected in drawn


def test_elsewhere_progress_is_one_plain_line_per_change():
    screen = io.StringIO()
    lines = ProgressLines(Console(file=screen, width=60))

    lines.show(SNAPSHOT)
    lines.show(SNAPSHOT)

    assert screen.getvalue() == (
        "progress: processing 15/40 (38%), 12 done, 3 failed, 20 queued, 4 in progress, 2.5 img/s,"
        " ETA 0:00:10\n"
    )


class StoppedClock:
    """A clock for Throughput that the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_servers_fair_share_eta_wins_over_the_local_estimate():
    clock = StoppedClock()
    throughput = Throughput(clock)
    status = {"status": "processing", "total_images": 100, "processed_images": 10, "failed_images": 0}
    snapshot_of({**status, "queued_images": 60}, throughput)
    clock.now += 10.0
    status = {**status, "processed_images": 20, "queued_images": 50}

    local = snapshot_of(status, throughput)
    served = snapshot_of({**status, "eta_seconds": 42.5}, throughput)

    assert local.eta == 80.0  # 80 left at the 1 image/s seen by this watch
    assert served.eta == 42.5
    assert (served.queued, served.in_progress) == (50, 30)


def test_the_status_table_shows_the_servers_eta_or_a_dash():
    assert describe_eta(95.4) == "0:01:35"
    assert describe_eta(None) == "—"
