"""How results reach the user: one JSON document on stdout with --json, rich tables otherwise.

Everything the server sent is rendered as plain Text, so brackets in a message are never read as markup.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import typer
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from .downloads import DownloadReport
from .outcome import CliError
from .summary import Summary

STATUS_STYLES = {
    "completed": "green",
    "completed_with_errors": "yellow",
    "failed": "red",
    "processing": "cyan",
    "pending": "cyan",
    "cancelling": "yellow",
    "cancelled": "yellow",
    "done": "green",
}


class Output:
    """Results go to stdout, errors and progress to stderr; with --json stdout holds only JSON."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self.stdout = Console(highlight=False, soft_wrap=False)
        self.stderr = Console(stderr=True, highlight=False)

    def result(self, data: Any, *renderables: RenderableType) -> None:
        if self.as_json:
            write_json(data)
            return
        for renderable in renderables:
            self.stdout.print(renderable)

    def failure(self, error: CliError, context: dict[str, Any] | None = None) -> None:
        if self.as_json:
            write_json({**(context or {}), "error": error.as_dict()})
            return
        self.stderr.print(error_report(error))

    def note(self, message: str, style: str = "") -> None:
        self.stderr.print(Text(message, style=style), soft_wrap=True)


def write_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def error_report(error: CliError) -> RenderableType:
    heading = Text("Error: ", style="bold red") + Text(error.title, style="bold")
    if error.detail:
        heading += Text(f" ({error.detail})")
    if not error.errors:
        return heading
    return Group(heading, problems_table(error.errors))


def problems_table(problems: list[dict[str, Any]]) -> Table:
    table = Table(title="Validation errors", title_justify="left")
    table.add_column("Row", justify="right")
    table.add_column("Column")
    table.add_column("Message", overflow="fold")
    for problem in problems:
        row = problem.get("row")
        table.add_row(
            text("—" if row is None else row), text(problem.get("column")), text(problem.get("message"))
        )
    return table


def accepted_table(accepted: dict[str, Any]) -> Table:
    return key_value_table(
        "Accepted",
        [
            ("Request", accepted.get("request_id")),
            ("Products", accepted.get("total_products")),
            ("Images", accepted.get("total_images")),
            ("Status", accepted.get("status_url")),
            ("Output CSV", accepted.get("output_csv_url")),
        ],
    )


def status_table(status: dict[str, Any]) -> Table:
    return key_value_table(
        "Request",
        [
            ("Request", status.get("request_id")),
            ("Status", styled_status(status.get("status"))),
            ("Images", status.get("total_images")),
            ("Done", status.get("processed_images")),
            ("Failed", status.get("failed_images")),
            ("Queued", status.get("queued_images", "—")),  # waiting for the fair scheduler
            ("Cancelled", status.get("cancelled_images", "—")),
            ("ETA", describe_eta(status.get("eta_seconds"))),
            ("Progress", percent(status.get("progress"))),
            ("Created", status.get("created_at")),
            ("Updated", status.get("updated_at")),
            ("Completed", status.get("completed_at") or "—"),
        ],
    )


def cancelled_table(answer: dict[str, Any]) -> Table:
    return key_value_table(
        "Cancel",
        [
            ("Request", answer.get("request_id")),
            ("Status", styled_status(answer.get("status"))),
            ("Never run", answer.get("cancelled_images")),
            ("Finishing", answer.get("in_flight_images")),
        ],
    )


def summary_tables(summary: Summary) -> list[Table]:
    totals = key_value_table(
        "Summary",
        [
            ("Images", summary.images),
            ("Compressed", summary.done),
            ("Failed", summary.failed),
            ("Bytes in", human_bytes(summary.input_bytes)),
            ("Bytes out", human_bytes(summary.output_bytes)),
            ("Ratio", describe_ratio(summary.ratio)),
        ],
    )
    return [totals, failures_table(summary)] if summary.failed else [totals]


def failures_table(summary: Summary) -> Table:
    table = Table(title="Failures by reason", title_justify="left")
    table.add_column("Reason")
    table.add_column("Images", justify="right")
    table.add_column("Example", overflow="fold")
    for reason in summary.failures_by_reason():
        table.add_row(text(reason.code), text(reason.count), text(reason.example))
    return table


def download_tables(result: dict[str, Any], report: DownloadReport | None) -> list[Table]:
    rows: list[tuple[str, Any]] = [
        ("Request", result["request_id"]),
        ("Status", styled_status(result["status"])),
    ]
    rows.append(("Output CSV", result["output_csv"]))
    if report is not None:
        rows += [
            ("Images saved", report.saved),
            ("Without output", report.skipped),
            ("Failed downloads", len(report.failures)),
            ("Bytes", human_bytes(report.bytes)),
        ]
    tables = [key_value_table("Downloaded", rows)]
    if report is not None and report.failures:
        tables.append(download_failures_table(report))
    return tables


def download_failures_table(report: DownloadReport) -> Table:
    table = Table(title="Failed downloads", title_justify="left")
    table.add_column("File", overflow="fold")
    table.add_column("Error", overflow="fold")
    for failure in report.failures:
        table.add_row(text(failure["file"]), text(failure["error"]))
    return table


def images_table(images: list[dict[str, Any]]) -> Table:
    """Every image with its sizes before and after; failures show their reason code."""
    table = Table(title=f"{len(images)} image(s)", title_justify="left")
    table.add_column("S. No.", justify="right", no_wrap=True)
    table.add_column("Product", overflow="fold")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    for name in ("In", "Out", "Ratio", "Size"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("Error", no_wrap=True)
    for image in images:
        table.add_row(*image_cells(image))
    return table


def image_cells(image: dict[str, Any]) -> list[RenderableType]:
    size_in, size_out = image.get("input_bytes"), image.get("output_bytes")
    width, height = image.get("width"), image.get("height")
    return [
        text(image.get("serial_number")),
        text(image.get("product_name")),
        text(image.get("position")),
        styled_status(image.get("status")),
        text(human_bytes(size_in) if size_in is not None else "—"),
        text(human_bytes(size_out) if size_out is not None else "—"),
        text(percent(size_out / size_in) if size_in and size_out is not None else "—"),
        text(f"{width}×{height}" if width and height else "—"),
        text((image.get("error") or {}).get("code")),
    ]


def failed_images_table(images: list[dict[str, Any]]) -> Table:
    """The failed images with their input URL and the full reason."""
    table = Table(title=f"{len(images)} failed image(s)", title_justify="left")
    table.add_column("S. No.", justify="right", no_wrap=True)
    table.add_column("Product", overflow="fold")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("Input URL", overflow="fold")
    table.add_column("Reason", overflow="fold")
    table.add_column("Message", overflow="fold")
    for image in images:
        error = image.get("error") or {}
        table.add_row(
            text(image.get("serial_number")),
            text(image.get("product_name")),
            text(image.get("position")),
            text(image.get("input_url")),
            text(error.get("code")),
            text(error.get("message")),
        )
    return table


def key_value_table(title: str, rows: list[tuple[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(label, value if isinstance(value, Text) else text(value))
    return table


def styled_status(status: Any) -> Text:
    return Text(str(status), style=STATUS_STYLES.get(str(status), ""))


def text(value: Any) -> Text:
    return Text("" if value is None else str(value))


def percent(fraction: Any) -> str:
    return "—" if fraction is None else f"{float(fraction) * 100:.1f}%"


def describe_eta(seconds: Any) -> str:
    """The server's estimate (its fair share of the compressors), or a dash when it has none."""
    return str(timedelta(seconds=round(seconds))) if isinstance(seconds, int | float) else "—"


def describe_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    return f"{ratio * 100:.1f}% of the input size (saved {(1 - ratio) * 100:.1f}%)"


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB"):
        if abs(size) < 1024:
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
