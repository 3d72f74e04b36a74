"""The `imgpipe` command: submit, status, images and download.

Exit codes: 0 completed (or nothing went wrong), 2 completed with errors, 1 failed or any error,
including a mistyped option (click's own 2 would read as "completed with errors").
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from .api import Connection, PipelineApi, Upload
from .downloads import DownloadProgress, DownloadReport, image_files, save_images
from .outcome import EXIT_COMPLETED, EXIT_FAILED, CliError, exit_code_for
from .precheck import check_product_csv
from .render import (
    Output,
    accepted_table,
    cancelled_table,
    download_tables,
    failed_images_table,
    images_table,
    status_table,
    summary_tables,
)
from .summary import summarise
from .watching import WaitPolicy, WaitTimedOut, progress_view_for, wait_for_finish

DEFAULT_INGEST_URL = "http://127.0.0.1:8000"
DEFAULT_API_URL = "http://127.0.0.1:8001"
CLICK_USAGE_ERROR = 2


@contextlib.contextmanager
def usage_errors_exit_with_one() -> Iterator[None]:
    try:
        yield
    except typer.TyperException as error:
        if error.exit_code == CLICK_USAGE_ERROR:
            error.exit_code = EXIT_FAILED
        raise


class UsageErrorsExitWithOne(TyperGroup):
    """Click exits 2 on a usage error; here 2 means "completed with errors", so those exit 1."""

    # The context is typer's private vendored click Context (typer._click), a base of typer.Context
    # with no public name, so these overrides take and give Any.
    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with usage_errors_exit_with_one():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with usage_errors_exit_with_one():
            return super().invoke(ctx)


app = typer.Typer(
    cls=UsageErrorsExitWithOne,
    help="Submit product CSVs to the image-compression pipeline, watch them, and fetch the results.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

IngestUrl = Annotated[
    str, typer.Option("--ingest-url", envvar="IMGPIPE_INGEST_URL", help="Base URL of the ingest service.")
]
ApiUrl = Annotated[
    str, typer.Option("--api-url", envvar="IMGPIPE_API_URL", help="Base URL of the tracker (status) API.")
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="IMGPIPE_API_KEY",
        show_default=False,
        help="Sent as `Authorization: Bearer <key>` to the pipeline's own services.",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, for scripts.")]
RequestId = Annotated[str, typer.Argument(help="The request id that `imgpipe submit` printed.")]


def connection_of(ctx: typer.Context, ingest_url: str, api_url: str, api_key: str | None) -> Connection:
    """Connection settings; tests pass an httpx transport through the click context object."""
    transport = ctx.obj.get("transport") if isinstance(ctx.obj, dict) else None
    return Connection(ingest_url, api_url, api_key or None, transport=transport)


def finish(output: Output, flow: Coroutine[Any, Any, int]) -> NoReturn:
    """Run a command's flow and exit with its code; any CliError is shown and exits 1."""
    try:
        code = asyncio.run(flow)
    except CliError as error:
        output.failure(error)
        code = EXIT_FAILED
    raise typer.Exit(code)


class OutputFormatOption(enum.StrEnum):
    jpeg = "jpeg"
    webp = "webp"
    avif = "avif"


def _quality_option(value: str | None) -> str | None:
    if value is None or value == "auto" or (value.isdigit() and 1 <= int(value) <= 95):
        return value
    raise typer.BadParameter("an integer from 1 to 95, or auto")


@app.command()
def submit(
    ctx: typer.Context,
    csv_file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The product CSV.")
    ],
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="URL called (signed) when the request finishes.")
    ] = None,
    quality: Annotated[
        str | None,
        typer.Option(
            callback=_quality_option,
            help="1-95 on the output format's scale (the server's default is 50), or auto.",
        ),
    ] = None,
    output_format: Annotated[
        OutputFormatOption | None,
        typer.Option("--format", help="Output format (the server's default: jpeg)."),
    ] = None,
    optimize: Annotated[
        bool | None, typer.Option("--optimize/--no-optimize", help="JPEG only: optimal Huffman tables.")
    ] = None,
    progressive: Annotated[
        bool | None, typer.Option("--progressive/--no-progressive", help="JPEG only: progressive scans.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show live progress until the request finishes.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=1, help="With --wait: give up after this many seconds.")
    ] = 3600,
    interval: Annotated[
        float, typer.Option(min=0.05, help="With --wait: seconds between status polls.")
    ] = 2.0,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Reuse to make a repeated upload return the first request.")
    ] = None,
    skip_check: Annotated[
        bool, typer.Option("--skip-check", help="Upload without the local pre-check.")
    ] = False,
    ingest_url: IngestUrl = DEFAULT_INGEST_URL,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Check a product CSV locally, upload it, and with --wait follow it to the end."""
    output = Output(as_json)
    data = csv_file.read_bytes()
    problems = [] if skip_check else check_product_csv(data)
    if problems:
        detail = f"{len(problems)} problem(s) found locally; nothing was uploaded"
        output.failure(CliError("Invalid CSV", detail, [problem.as_dict() for problem in problems]))
        raise typer.Exit(EXIT_FAILED)
    upload = Upload(
        csv_file.name,
        data,
        webhook,
        quality,
        idempotency_key or str(uuid.uuid4()),
        output_format.value if output_format else None,
        optimize,
        progressive,
    )
    policy = WaitPolicy(timeout, interval) if wait else None
    finish(output, submit_flow(connection_of(ctx, ingest_url, api_url, api_key), upload, policy, output))


async def submit_flow(
    connection: Connection, upload: Upload, policy: WaitPolicy | None, output: Output
) -> int:
    async with PipelineApi(connection) as api:
        accepted = await api.upload(upload)
        if policy is None:
            output.result(accepted, accepted_table(accepted))
            return EXIT_COMPLETED
        return await wait_and_summarise(api, accepted, policy, output)


async def wait_and_summarise(
    api: PipelineApi, accepted: dict[str, Any], policy: WaitPolicy, output: Output
) -> int:
    request_id = str(accepted["request_id"])
    output.note(f"accepted {request_id} ({accepted.get('total_images')} images); waiting for it to finish")
    try:
        with progress_view_for(output.stderr) as view:
            status = await wait_for_finish(api, request_id, policy, view)
    except WaitTimedOut as error:
        error.detail += f"; it goes on: see `imgpipe status {request_id}`"
        output.failure(error, {"accepted": accepted, "status": error.last_status})
        return EXIT_FAILED
    summary = await summarise(api.images(request_id))
    result = {"accepted": accepted, "status": status, "summary": summary.as_dict()}
    output.result(result, status_table(status), *summary_tables(summary))
    return exit_code_for(str(status.get("status")))


@app.command()
def status(
    ctx: typer.Context,
    request_id: RequestId,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Show a request's status; exits 0 completed (or still running), 2 with errors, 1 failed."""
    output = Output(as_json)
    finish(output, status_flow(connection_of(ctx, DEFAULT_INGEST_URL, api_url, api_key), request_id, output))


async def status_flow(connection: Connection, request_id: str, output: Output) -> int:
    async with PipelineApi(connection) as api:
        current = await api.status(request_id)
    output.result(current, status_table(current))
    return exit_code_for(str(current.get("status")))


@app.command()
def cancel(
    ctx: typer.Context,
    request_id: RequestId,
    ingest_url: IngestUrl = DEFAULT_INGEST_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Cancel a request: images not started never run, started ones finish; 1 if it already finished."""
    output = Output(as_json)
    finish(output, cancel_flow(connection_of(ctx, ingest_url, DEFAULT_API_URL, api_key), request_id, output))


async def cancel_flow(connection: Connection, request_id: str, output: Output) -> int:
    async with PipelineApi(connection) as api:
        answer = await api.cancel(request_id)
    output.result(answer, cancelled_table(answer))
    return EXIT_COMPLETED


@app.command()
def images(
    ctx: typer.Context,
    request_id: RequestId,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only the images that failed, with reasons.")
    ] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """List a request's images: sizes before and after, dimensions, and errors."""
    output = Output(as_json)
    connection = connection_of(ctx, DEFAULT_INGEST_URL, api_url, api_key)
    finish(output, images_flow(connection, request_id, failed, output))


async def images_flow(connection: Connection, request_id: str, only_failed: bool, output: Output) -> int:
    async with PipelineApi(connection) as api:
        listed = [
            image
            async for image in api.images(request_id)
            if not only_failed or image.get("status") == "failed"
        ]
    table = failed_images_table(listed) if only_failed else images_table(listed)
    output.result({"request_id": request_id, "items": listed}, table)
    return EXIT_COMPLETED


@app.command()
def download(
    ctx: typer.Context,
    request_id: RequestId,
    output_csv: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", dir_okay=False, help="Where to write the output CSV [default: <id>.csv]."
        ),
    ] = None,
    images_dir: Annotated[
        Path | None, typer.Option("--images", file_okay=False, help="Also save every output image here.")
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-j", min=1, max=32, help="Image downloads at once.")
    ] = 4,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Save a finished request's output CSV and, with --images, its compressed images."""
    output = Output(as_json)
    targets = DownloadTargets(output_csv or Path(f"{request_id}.csv"), images_dir, concurrency)
    connection = connection_of(ctx, DEFAULT_INGEST_URL, api_url, api_key)
    finish(output, download_flow(connection, request_id, targets, output))


@dataclass(frozen=True)
class DownloadTargets:
    csv_path: Path
    images_dir: Path | None
    concurrency: int


async def download_flow(
    connection: Connection, request_id: str, targets: DownloadTargets, output: Output
) -> int:
    async with PipelineApi(connection) as api:
        await api.save(api.output_csv_url(request_id), targets.csv_path)
        current = await api.status(request_id)
        report = None
        if targets.images_dir is not None:
            report = await download_images(api, request_id, targets, output)
    result = {
        "request_id": request_id,
        "status": current.get("status"),
        "output_csv": str(targets.csv_path),
        "images": report.as_dict() if report else None,
    }
    output.result(result, *download_tables(result, report))
    if report and report.failures:
        return EXIT_FAILED
    return exit_code_for(str(current.get("status")))


async def download_images(
    api: PipelineApi, request_id: str, targets: DownloadTargets, output: Output
) -> DownloadReport:
    if targets.images_dir is None:  # callers only come here with --images
        raise ValueError("download_images needs an images directory")
    try:
        targets.images_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CliError(
            "Cannot create directory", f"{targets.images_dir}: {error.strerror or error}"
        ) from error
    files, skipped = image_files([image async for image in api.images(request_id)], targets.images_dir)
    with DownloadProgress(output.stderr, len(files)) as progress:
        report = await save_images(api, files, targets.concurrency, progress.advance)
    report.skipped = skipped
    return report


def main() -> None:
    app()
