"""imgpipe status, images and download against the fake pipeline: outputs, files and exit codes."""

from __future__ import annotations

import httpx
import pytest
from imgpipe_cli.app import app
from typer.testing import CliRunner

from tests.unit.cli.fake_pipeline import API_URL, FOREIGN_MEDIA_URL, failed_image, image, json_of

JPEG_BYTES = b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9"


@pytest.mark.parametrize(
    ("status", "exit_code"),
    [("completed", 0), ("completed_with_errors", 2), ("failed", 1), ("processing", 0), ("pending", 0)],
)
def test_status_exit_code_follows_the_request_status(imgpipe, fake, status, exit_code):
    request = fake.add_request([status], [image(1, 1), failed_image(1, 2, "download_failed", "404")])

    result = imgpipe("status", request.request_id, "--json")

    assert result.exit_code == exit_code, result.output
    assert json_of(result) == request.status_body(status)


def test_status_shows_a_table_for_people(imgpipe, fake):
    request = fake.add_request(["completed_with_errors"], [image(1, 1), failed_image(1, 2, "x", "y")])

    result = imgpipe("status", request.request_id)

    assert result.exit_code == 2
    assert "completed_with_errors" in result.stdout
    assert "100.0%" in result.stdout


def test_status_of_an_unknown_request_exits_1_with_the_problem(imgpipe):
    shown = imgpipe("status", "00000000-0000-4000-8000-000000000000")
    as_json = imgpipe("status", "00000000-0000-4000-8000-000000000000", "--json")

    assert shown.exit_code == 1
    assert "Error: Unknown request" in shown.stderr
    assert as_json.exit_code == 1
    assert json_of(as_json)["error"]["status"] == 404


def test_an_unreachable_tracker_exits_1_naming_the_url():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = CliRunner().invoke(
        app,
        ["status", "some-id", "--api-url", "http://127.0.0.1:9", "--json"],
        obj={"transport": httpx.MockTransport(refuse)},
    )

    assert result.exit_code == 1
    error = json_of(result)["error"]
    assert error["title"] == "Service unreachable"
    assert "http://127.0.0.1:9/status/some-id" in error["detail"]


def test_a_request_id_cannot_reach_another_path(imgpipe, fake):
    imgpipe("status", "../requests/x/output.csv", "--json")

    assert [request.url.raw_path for request in fake.received] == [b"/status/..%2Frequests%2Fx%2Foutput.csv"]


def test_images_follows_every_page_in_order(imgpipe, fake):
    many = [image(serial, 1) for serial in range(1, 1204)]
    request = fake.add_request(["completed"], many)

    result = imgpipe("images", request.request_id, "--json")

    assert result.exit_code == 0, result.output
    assert [item["serial_number"] for item in json_of(result)["items"]] == list(range(1, 1204))
    assert len([r for r in fake.received if r.url.path.endswith("/images")]) == 3


def test_images_failed_lists_only_failures_with_their_reasons(imgpipe, fake):
    request = fake.add_request(
        ["completed_with_errors"],
        [image(1, 1), failed_image(1, 2, "download_failed", "HTTP 404 from the image host"), image(2, 1)],
    )

    as_json = imgpipe("images", request.request_id, "--failed", "--json")
    shown = imgpipe("images", request.request_id, "--failed")

    assert [item["position"] for item in json_of(as_json)["items"]] == [2]
    assert shown.exit_code == 0
    assert "1 failed image(s)" in shown.stdout
    assert "HTTP 404 from the image host" in shown.stdout


def finished_request_with_media(fake, statuses=("completed",)):
    images = [image(1, 1), image(1, 2), image(2, 1), failed_image(3, 1, "undecodable", "not an image")]
    request = fake.add_request(list(statuses), images)
    for item in images:
        if item["output_url"]:
            fake.media[item["output_url"]] = JPEG_BYTES + item["output_url"].encode()
    return request


def test_download_writes_the_output_csv_and_every_output_image(imgpipe, fake, tmp_path):
    request = finished_request_with_media(fake)
    csv_path, images_dir = tmp_path / "out.csv", tmp_path / "images"

    result = imgpipe("download", request.request_id, "-o", csv_path, "--images", images_dir, "--json")

    assert result.exit_code == 0, result.output
    assert csv_path.read_text().splitlines()[0] == "S. No.,Product Name,Input Image Urls,Output Image Urls"
    assert f"1,Product 1,http://127.0.0.3/in/1-1.png,{API_URL}/media/1-1.jpg" in csv_path.read_text()
    assert sorted(path.name for path in images_dir.iterdir()) == ["1-1.jpg", "1-2.jpg", "2-1.jpg"]
    assert (images_dir / "2-1.jpg").read_bytes() == fake.media[f"{API_URL}/media/2-1.jpg"]
    report = json_of(result)["images"]
    assert (report["saved"], report["skipped"], report["failures"]) == (3, 1, [])


def test_download_of_a_request_completed_with_errors_exits_2(imgpipe, fake, tmp_path):
    request = finished_request_with_media(fake, ["completed_with_errors"])

    result = imgpipe("download", request.request_id, "-o", tmp_path / "out.csv", "--json")

    assert result.exit_code == 2, result.output
    assert (tmp_path / "out.csv").exists()
    assert json_of(result)["images"] is None


def test_download_before_the_request_finishes_exits_1_and_writes_nothing(imgpipe, fake, tmp_path):
    request = fake.add_request(["processing"], [image(1, 1)])

    result = imgpipe("download", request.request_id, "-o", tmp_path / "out.csv")

    assert result.exit_code == 1
    assert "Request not finished" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_missing_image_is_reported_and_exits_1_while_the_others_are_saved(imgpipe, fake, tmp_path):
    request = finished_request_with_media(fake)
    del fake.media[f"{API_URL}/media/1-2.jpg"]

    result = imgpipe(
        "download", request.request_id, "-o", tmp_path / "o.csv", "--images", tmp_path / "i", "--json"
    )

    assert result.exit_code == 1
    failures = json_of(result)["images"]["failures"]
    assert [failure["url"] for failure in failures] == [f"{API_URL}/media/1-2.jpg"]
    assert sorted(path.name for path in (tmp_path / "i").iterdir()) == ["1-1.jpg", "2-1.jpg"]


def test_concurrent_downloads_keep_to_the_limit_and_count_every_byte(imgpipe, fake, tmp_path):
    request = fake.add_request(["completed"], [image(serial, 1) for serial in range(1, 41)])
    for item in request.images:
        fake.media[item["output_url"]] = JPEG_BYTES

    result = imgpipe(
        "download",
        request.request_id,
        "-o",
        tmp_path / "o.csv",
        "--images",
        tmp_path / "i",
        "-j",
        "3",
        "--json",
    )

    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "i").iterdir())) == 40
    assert fake.most_in_flight == 3
    assert json_of(result)["images"]["bytes"] == 40 * len(JPEG_BYTES)


def test_the_api_key_goes_to_the_pipeline_and_never_to_another_media_host(imgpipe, fake, tmp_path):
    request = fake.add_request(
        ["completed"], [image(1, 1), image(1, 2, output_url=f"{FOREIGN_MEDIA_URL}/bucket/1-2.jpg")]
    )
    for item in request.images:
        fake.media[item["output_url"]] = JPEG_BYTES

    result = imgpipe(
        "download", request.request_id, "-o", tmp_path / "o.csv", "--images", tmp_path / "i",
        env={"IMGPIPE_API_KEY": "s3cret"},
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    own = [r for r in fake.received if str(r.url).startswith(API_URL)]
    foreign = [r for r in fake.received if str(r.url).startswith(FOREIGN_MEDIA_URL)]
    assert own
    assert all(r.headers["Authorization"] == "Bearer s3cret" for r in own)
    assert len(foreign) == 1
    assert "Authorization" not in foreign[0].headers


def test_without_a_key_no_authorization_header_is_sent(imgpipe, fake):
    request = fake.add_request(["completed"], [image(1, 1)])

    imgpipe("status", request.request_id)

    assert "Authorization" not in fake.received[0].headers


def test_the_api_key_option_overrides_the_environment(imgpipe, fake):
    request = fake.add_request(["completed"], [image(1, 1)])

    imgpipe("status", request.request_id, "--api-key", "from-flag", env={"IMGPIPE_API_KEY": "from-env"})

    assert fake.received[0].headers["Authorization"] == "Bearer from-flag"


def test_an_unwritable_output_path_is_an_error_not_a_traceback(imgpipe, fake, tmp_path):
    request = finished_request_with_media(fake)

    result = imgpipe("download", request.request_id, "-o", tmp_path / "no" / "such" / "dir.csv", "--json")

    assert result.exit_code == 1
    assert json_of(result)["error"]["title"] == "Cannot write file"
