"""A quick local look at a product CSV before uploading it; the ingest service stays the authority.

It only catches what is certainly wrong: no header with the three columns, rows without an image URL,
a file that is not UTF-8 or not CSV at all. Row numbers are physical lines (the header is line 1),
as the server counts them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import asdict, dataclass

# The header contract (column names and the spellings the server accepts) is shared with ingest.
from pipeline_schemas import REQUIRED_COLUMNS, URLS_COLUMN, canonical_column

MAX_PROBLEMS = 50
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class RowProblem:
    row: int | None
    column: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class MalformedCsv(Exception):
    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line = line

    def as_problem(self) -> RowProblem:
        return RowProblem(self.line, "", f"malformed CSV: {self}")


def check_product_csv(data: bytes) -> list[RowProblem]:
    """Every problem found (up to MAX_PROBLEMS); an empty list means the file looks uploadable."""
    try:
        text = decode_utf8(data)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return [RowProblem(line, "", "the file is not valid UTF-8; save it as UTF-8")]
    return check_records(numbered_records(text))[:MAX_PROBLEMS]


def decode_utf8(data: bytes) -> str:
    return (data[len(UTF8_BOM) :] if data.startswith(UTF8_BOM) else data).decode("utf-8")


def numbered_records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first physical line, trimmed cells) of every record that is not blank."""
    reader = csv.reader(io.StringIO(text, newline=""))
    previous_end = 0
    try:
        for fields in reader:
            start, previous_end = previous_end + 1, reader.line_num
            cells = [field.strip() for field in fields]
            if any(cells):
                yield start, cells
    except csv.Error as error:
        raise MalformedCsv(previous_end + 1, str(error)) from None


def check_records(records: Iterator[tuple[int, list[str]]]) -> list[RowProblem]:
    try:
        header = next(records, None)
    except MalformedCsv as error:
        return [error.as_problem()]
    if header is None:
        return [RowProblem(1, "", f"the file is empty; expected a header row: {', '.join(REQUIRED_COLUMNS)}")]
    header_line, header_cells = header
    columns = column_positions(header_cells)
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        return [RowProblem(header_line, name, f"missing required column '{name}'") for name in missing]
    return check_rows(records, columns[URLS_COLUMN], url_column_is_last(header_cells, columns), header_line)


def column_positions(header_cells: list[str]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for index, cell in enumerate(header_cells):
        column = canonical_column(cell)
        if column is not None:
            positions.setdefault(column, index)
    return positions


def url_column_is_last(header_cells: list[str], columns: dict[str, int]) -> bool:
    width = len(header_cells)
    while width and not header_cells[width - 1]:
        width -= 1
    return columns[URLS_COLUMN] == width - 1


def check_rows(
    records: Iterator[tuple[int, list[str]]], urls_index: int, urls_last: bool, header_line: int
) -> list[RowProblem]:
    problems: list[RowProblem] = []
    rows = 0
    try:
        for line, cells in records:
            rows += 1
            if not has_image_url(cells, urls_index, urls_last):
                problems.append(RowProblem(line, URLS_COLUMN, "no image URL given"))
            if len(problems) >= MAX_PROBLEMS:
                break
    except MalformedCsv as error:
        return [*problems, error.as_problem()]
    if rows == 0:
        problems.append(RowProblem(header_line, "", "the file has a header but no product rows"))
    return problems


def has_image_url(cells: list[str], urls_index: int, urls_last: bool) -> bool:
    """Whether the URL cell (plus unquoted URLs spilled after it, when it is the last column) names one."""
    url_cells = cells[urls_index:] if urls_last else cells[urls_index : urls_index + 1]
    return any(part.strip() for cell in url_cells for part in cell.split(","))
