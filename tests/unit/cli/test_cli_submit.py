"""imgpipe submit: local pre-check, upload, waiting with progress, summary and exit codes."""

from __future__ import annotations

import pytest
from imgpipe_cli import api

from tests.unit.cli.fake_pipeline import failed_image, image, json_of, problem

GOOD_CSV = (
    "S. No.,Product Name,Input Image Urls\n"
    '1,Shirt,"http://127.0.0.3/a.png,http://127.0.0.3/b.png"\n'
    "2,Shoes,http://127.0.0.3/c.png\n"
)


@pytest.fixture
def products_csv(tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(GOOD_CSV)
    return path


def four_done_images():
    return [image(1, 1), image(1, 2), image(2, 1), image(2, 2)]


def test_submit_without_wait_uploads_the_file_and_prints_the_accepted_request(imgpipe, fake, products_csv):
    result = imgpipe(
        "submit", products_csv, "--quality", "70", "--webhook", "http://127.0.0.4/hook", "--json"
    )

    assert result.exit_code == 0, result.output
    accepted = json_of(result)
    assert accepted["request_id"] in fake.requests
    assert accepted["status"] == "pending"
    [upload] = fake.uploads()
    body = upload.content.decode()
    assert GOOD_CSV in body
    assert 'name="quality"\r\n\r\n70' in body
    assert 'name="webhook_url"\r\n\r\nhttp://127.0.0.4/hook' in body
    assert upload.headers["Idempotency-Key"]


def test_submit_wait_follows_progress_to_completed_and_exits_0_with_a_summary(imgpipe, fake, products_csv):
    fake.statuses_for_next_upload = ["pending", "processing", "completed"]
    fake.images_for_next_upload = four_done_images()

    result = imgpipe("submit", products_csv, "--wait", "--interval", "0.05", "--json")

    assert result.exit_code == 0, result.output
    document = json_of(result)
    assert document["status"]["status"] == "completed"
    assert document["summary"] == {
        "images": 4,
        "done": 4,
        "failed": 0,
        "pending": 0,
        "input_bytes": 4000,
        "output_bytes": 1000,
        "ratio": 0.25,
        "failures_by_reason": {},
    }
    assert "progress: processing 2/4 (50%), 2 done, 0 failed" in result.stderr
    assert "progress: completed 4/4 (100%), 4 done, 0 failed" in result.stderr
    assert fake.requests[document["accepted"]["request_id"]].polls == 3


def test_submit_wait_with_failures_exits_2_and_counts_failures_by_reason(imgpipe, fake, products_csv):
    fake.statuses_for_next_upload = ["processing", "completed_with_errors"]
    fake.images_for_next_upload = [
        image(1, 1, input_bytes=2000, output_bytes=500),
        failed_image(1, 2, "download_failed", "HTTP 404 from the image host"),
        failed_image(2, 1, "download_failed", "HTTP 500 from the image host"),
        failed_image(2, 2, "undecodable", "not an image [HTML]"),
    ]

    as_json = imgpipe("submit", products_csv, "--wait", "--interval", "0.05", "--json")
    as_tables = imgpipe("submit", products_csv, "--wait", "--interval", "0.05")

    assert as_json.exit_code == 2, as_json.output
    summary = json_of(as_json)["summary"]
    assert summary["failures_by_reason"] == {"download_failed": 2, "undecodable": 1}
    assert (summary["done"], summary["failed"], summary["ratio"]) == (1, 3, 0.25)
    assert as_tables.exit_code == 2, as_tables.output
    assert "Failures by reason" in as_tables.stdout
    assert "not an image [HTML]" in as_tables.stdout
    assert "completed_with_errors" in as_tables.stdout


def test_submit_wait_on_a_failed_request_exits_1(imgpipe, fake, products_csv):
    fake.statuses_for_next_upload = ["failed"]
    fake.images_for_next_upload = [failed_image(1, 1, "download_failed", "refused")]

    result = imgpipe("submit", products_csv, "--wait", "--interval", "0.05", "--json")

    assert result.exit_code == 1, result.output
    assert json_of(result)["status"]["status"] == "failed"


def test_submit_wait_gives_up_after_the_timeout_and_exits_1(imgpipe, fake, products_csv):
    fake.statuses_for_next_upload = ["processing"]
    fake.images_for_next_upload = four_done_images()

    result = imgpipe("submit", products_csv, "--wait", "--timeout", "1", "--interval", "0.2", "--json")

    assert result.exit_code == 1, result.output
    document = json_of(result)
    assert document["error"]["title"] == "Timed out"
    assert document["status"]["status"] == "processing"
    assert "imgpipe status" in document["error"]["detail"]


def test_submit_wait_rides_out_a_few_unavailable_status_polls(imgpipe, fake, products_csv):
    fake.statuses_for_next_upload = ["processing", "completed"]
    fake.images_for_next_upload = four_done_images()
    fake.failing_status_polls = 2

    result = imgpipe("submit", products_csv, "--wait", "--interval", "0.05", "--json")

    assert result.exit_code == 0, result.output
    assert json_of(result)["status"]["status"] == "completed"
    assert result.stderr.count("status not available") == 2


def test_the_local_check_stops_rows_without_urls_before_anything_is_uploaded(imgpipe, fake, tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(
        "S. No.,Product Name,Input Image Urls\n1,Shirt,http://127.0.0.3/a.png\n2,Shoes,\n3,Hat, , \n"
    )

    shown = imgpipe("submit", path)
    as_json = imgpipe("submit", path, "--json")

    assert shown.exit_code == 1
    assert "Validation errors" in shown.stderr
    assert "│   3 │ Input Image Urls │ no image URL given" in shown.stderr
    assert "│   4 │ Input Image Urls │ no image URL given" in shown.stderr
    assert as_json.exit_code == 1
    assert json_of(as_json)["error"]["errors"] == [
        {"row": 3, "column": "Input Image Urls", "message": "no image URL given"},
        {"row": 4, "column": "Input Image Urls", "message": "no image URL given"},
    ]
    assert fake.uploads() == []


def test_the_local_check_names_missing_header_columns(imgpipe, fake, tmp_path):
    path = tmp_path / "products.csv"
    path.write_text("S. No.,Name,Urls\n1,Shirt,http://127.0.0.3/a.png\n")

    result = imgpipe("submit", path, "--json")

    assert result.exit_code == 1
    columns = [error["column"] for error in json_of(result)["error"]["errors"]]
    assert columns == ["Product Name", "Input Image Urls"]
    assert fake.uploads() == []


def test_skip_check_leaves_validation_to_the_server(imgpipe, fake, tmp_path):
    path = tmp_path / "products.csv"
    path.write_text("S. No.,Name,Urls\n1,Shirt,http://127.0.0.3/a.png\n")

    result = imgpipe("submit", path, "--skip-check", "--json")

    assert result.exit_code == 0, result.output
    assert len(fake.uploads()) == 1


SERVER_ERRORS = [
    {"row": 3, "column": "S. No.", "message": "duplicate serial number 1 (first used on row 2)"},
    {"row": 4, "column": "Input Image Urls", "message": "URL must use http or https: 'ftp://[::1]/x'"},
    {"row": None, "column": "quality", "message": "quality must be an integer from 1 to 95"},
]


def test_server_validation_errors_are_shown_as_a_row_column_message_table(imgpipe, fake, products_csv):
    fake.upload_answers = [
        problem(422, "Invalid CSV", "3 problem(s) found in the file", errors=SERVER_ERRORS)
    ]

    result = imgpipe("submit", products_csv)

    assert result.exit_code == 1
    assert "Error: Invalid CSV (3 problem(s) found in the file)" in result.stderr
    assert "┃ Row ┃ Column" in result.stderr
    assert "│   3 │ S. No.           │ duplicate serial number 1 (first used on row 2)" in result.stderr
    assert "'ftp://[::1]/x'" in result.stderr
    assert "│   — │ quality          │ quality must be an integer from 1 to 95" in result.stderr


def test_server_validation_errors_in_json_keep_every_row_column_and_message(imgpipe, fake, products_csv):
    fake.upload_answers = [
        problem(422, "Invalid CSV", "3 problem(s) found in the file", errors=SERVER_ERRORS)
    ]

    result = imgpipe("submit", products_csv, "--json")

    assert result.exit_code == 1
    error = json_of(result)["error"]
    assert error["status"] == 422
    assert error["errors"] == SERVER_ERRORS


def test_an_unavailable_ingest_is_retried_with_the_same_idempotency_key(
    imgpipe, fake, products_csv, monkeypatch
):
    monkeypatch.setattr(api, "UPLOAD_BACKOFF_SECONDS", 0)
    fake.upload_answers = [problem(503, "Service Unavailable", "database down")]

    result = imgpipe("submit", products_csv, "--json")

    assert result.exit_code == 0, result.output
    first, second = fake.uploads()
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]


def test_a_given_idempotency_key_is_sent_as_is(imgpipe, fake, products_csv):
    result = imgpipe("submit", products_csv, "--idempotency-key", "batch-42", "--json")

    assert result.exit_code == 0, result.output
    assert fake.uploads()[0].headers["Idempotency-Key"] == "batch-42"


def test_a_conflict_is_not_retried_and_exits_1(imgpipe, fake, products_csv, monkeypatch):
    monkeypatch.setattr(api, "UPLOAD_BACKOFF_SECONDS", 0)
    fake.upload_answers = [problem(409, "Idempotency key reused", "used with a different file")]

    result = imgpipe("submit", products_csv, "--idempotency-key", "k", "--json")

    assert result.exit_code == 1
    assert json_of(result)["error"]["title"] == "Idempotency key reused"
    assert len(fake.uploads()) == 1


def test_a_mistyped_option_exits_1_not_2(imgpipe, products_csv):
    result = imgpipe("submit", products_csv, "--qualty", "50")

    assert result.exit_code == 1
    assert "No such option" in result.output


def test_an_out_of_range_quality_is_refused_before_upload(imgpipe, fake, products_csv):
    result = imgpipe("submit", products_csv, "--quality", "0")

    assert result.exit_code == 1
    assert fake.uploads() == []


def test_submit_sends_the_output_format_and_quality_auto(imgpipe, fake, products_csv):
    result = imgpipe(
        "submit", products_csv, "--format", "webp", "--quality", "auto", "--no-optimize", "--json"
    )

    assert result.exit_code == 0, result.output
    [upload] = fake.uploads()
    body = upload.content.decode()
    assert 'name="format"\r\n\r\nwebp' in body
    assert 'name="quality"\r\n\r\nauto' in body
    assert 'name="optimize"\r\n\r\nfalse' in body
    assert 'name="progressive"' not in body  # not given: the server's default


@pytest.mark.parametrize("args", [["--quality", "best"], ["--quality", "96"], ["--format", "gif"]])
def test_an_unknown_format_or_quality_is_refused_before_upload(imgpipe, fake, products_csv, args):
    result = imgpipe("submit", products_csv, *args)

    assert result.exit_code != 0
    assert fake.uploads() == []
