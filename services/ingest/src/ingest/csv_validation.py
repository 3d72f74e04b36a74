"""Validate an uploaded product CSV into products and image URLs, collecting every row error."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# The header contract (column names and accepted spellings) is shared with the CLI's pre-check.
from pipeline_schemas import NAME_COLUMN, REQUIRED_COLUMNS, SERIAL_COLUMN, URLS_COLUMN, canonical_column

from .csv_records import MalformedCsv, read_numbered_records
from .plain_rows import plain_serial, plain_url_list
from .url_checks import describe_url_problem, is_plain_web_url, quote_for_message, quote_url_for_message
from .validated import Collected, Product, ValidatedUpload

MAX_SERIAL_DIGITS = 18  # keeps every serial number inside a signed 64-bit integer

_UTF8_BOM = b"\xef\xbb\xbf"
_QUOTED_LIMIT = 80  # characters of a cell quoted in a message
_EXPECTED_HEADER = ", ".join(REQUIRED_COLUMNS)
# Three columns are expected; a header far wider is refused whole, without looking at each cell.
MAX_HEADER_COLUMNS = 256


@dataclass(frozen=True)
class RowError:
    """One problem in the upload; row is the physical line where the record starts (header = 1)."""

    row: int
    column: str
    message: str


class CsvValidationError(Exception):
    """The upload was rejected; ``errors`` lists the problems found up to the cap, ``omitted`` counts the rest."""

    def __init__(self, errors: list[RowError], omitted: int = 0):
        self.errors = list(errors)
        self.omitted = omitted
        first = self.errors[0] if self.errors else None
        summary = f"row {first.row}: {first.message}" if first else "invalid CSV"
        super().__init__(f"{len(self.errors)} CSV error(s); first at {summary}")


@dataclass(frozen=True)
class _Layout:
    """Where each required column sits in the header."""

    serial_index: int
    name_index: int
    urls_index: int
    width: int

    @property
    def urls_column_is_last(self) -> bool:
        return self.urls_index == self.width - 1


class _ErrorLog:
    """Keeps the first `max_errors` errors and counts the others, so an answer stays small."""

    def __init__(self, max_errors: int):
        self.errors: list[RowError] = []
        self.max_errors = max_errors
        self.omitted = 0

    @property
    def found(self) -> int:
        return len(self.errors) + self.omitted

    def add(self, row: int, column: str, message: str) -> None:
        if len(self.errors) < self.max_errors:
            self.errors.append(RowError(row, column, message))
        else:
            self.omitted += 1

    def raise_if_any(self) -> None:
        if self.errors:
            raise CsvValidationError(self.errors, self.omitted)


@dataclass(frozen=True)
class RowLimits:
    """Bounds on what one upload may hold: together they cap what a small file can make us store."""

    max_rows: int = 100_000
    max_name_length: int = 1024
    max_urls_per_row: int = 100


def parse_upload(
    data: bytes,
    *,
    max_rows: int = 100_000,
    max_errors: int = 100,
    max_name_length: int = 1024,
    max_urls_per_row: int = 100,
) -> ValidatedUpload:
    """Parse and validate a product CSV, raising CsvValidationError listing every bad row."""
    limits = RowLimits(max_rows, max_name_length, max_urls_per_row)
    if min(max_rows, max_errors, max_name_length, max_urls_per_row) < 1:
        raise ValueError("every limit must be at least 1")
    records = read_numbered_records(decode_upload(data))
    header_line, layout = read_header(records, max_errors)
    log = _ErrorLog(max_errors)
    products = read_products(records, layout, limits, log)
    log.raise_if_any()
    if not products.rows:
        raise file_error(header_line, "the file has a header but no product rows")
    return products.upload()


def file_error(row: int, message: str) -> CsvValidationError:
    return CsvValidationError([RowError(row, "", message)])


def decode_upload(data: bytes) -> str:
    """Decode UTF-8 (with or without BOM), naming the line of the first invalid byte."""
    body = data[len(_UTF8_BOM) :] if data.startswith(_UTF8_BOM) else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        message = f"the file is not valid UTF-8 (first invalid byte on line {line}); save as UTF-8"
        raise CsvValidationError([RowError(line, "", message)]) from None


def read_header(records: Iterator[tuple[int, list[str]]], max_errors: int = 100) -> tuple[int, _Layout]:
    """Consume the header record and locate the required columns, or raise."""
    try:
        line, cells = next(records)
    except StopIteration:
        raise file_error(1, f"the file is empty; expected a header row: {_EXPECTED_HEADER}") from None
    except MalformedCsv as exc:
        raise file_error(exc.line, f"malformed CSV: {exc.reason}") from None
    while cells and not cells[-1]:
        cells.pop()
    return line, layout_from_header(line, cells, max_errors)


def layout_from_header(line: int, cells: list[str], max_errors: int = 100) -> _Layout:
    """Map header cells to canonical columns; unknown, duplicate or missing ones are errors (capped)."""
    if len(cells) > MAX_HEADER_COLUMNS:
        message = f"the header has {len(cells)} columns (at most {MAX_HEADER_COLUMNS}); expected: {_EXPECTED_HEADER}"
        raise file_error(line, message)
    canonical = [canonical_column(cell) for cell in cells]
    if not any(canonical):
        raise file_error(line, f"a header row is required with columns: {_EXPECTED_HEADER}")
    log = _ErrorLog(max_errors)
    positions: dict[str, int] = {}
    for index, (cell, column) in enumerate(zip(cells, canonical, strict=True)):
        if column is None:
            log.add(line, shorten(cell), describe_unknown_header(cell, index))
        elif column in positions:
            log.add(line, column, f"duplicate column {quote_for_message(cell)} for {column}")
        else:
            positions[column] = index
    for column in REQUIRED_COLUMNS:
        if column not in positions:
            log.add(line, column, f"missing required column '{column}'")
    log.raise_if_any()
    width = len(cells)
    return _Layout(positions[SERIAL_COLUMN], positions[NAME_COLUMN], positions[URLS_COLUMN], width)


def describe_unknown_header(cell: str, index: int) -> str:
    if not cell:
        return f"column {index + 1} has an empty header; expected only: {_EXPECTED_HEADER}"
    return f"unknown column {quote_for_message(cell)}; expected only: {_EXPECTED_HEADER}"


def shorten(text: str) -> str:
    """A cell used as an error's column name, cut like a quoted one (a header cell may be megabytes)."""
    return text if len(text) <= _QUOTED_LIMIT else text[:_QUOTED_LIMIT] + "..."


def read_products(
    records: Iterator[tuple[int, list[str]]], layout: _Layout, limits: RowLimits, log: _ErrorLog
) -> Collected:
    """Validate data records into products, logging errors until the cap or row limit.

    A plain row (plain_rows) is taken as it is; any other goes through validate_row, which
    words its errors. Once an error is logged, products are no longer kept (only checked).
    """
    products = Collected()
    first_row_of_serial: dict[int, int] = {}
    data_rows = 0
    try:
        for line, cells in records:
            data_rows += 1
            if data_rows > limits.max_rows:
                log.add(line, "", f"too many rows: the limit is {limits.max_rows}")
                break
            if plain_row(line, cells, layout, first_row_of_serial, limits, products, log):
                continue
            product = validate_row(line, cells, layout, first_row_of_serial, log, limits)
            if product is not None and not log.errors:
                products.add(
                    line, product.serial_number, product.name, ",".join(product.urls), len(product.urls)
                )
    except MalformedCsv as exc:
        log.add(exc.line, "", f"malformed CSV: {exc.reason}")
    return products


def plain_row(
    line: int,
    cells: list[str],
    layout: _Layout,
    first_row_of_serial: dict[int, int],
    limits: RowLimits,
    products: Collected,
    log: _ErrorLog,
) -> bool:
    """Accept a row that passes the fast checks (True); False leaves the row to validate_row."""
    if len(cells) != layout.width and not (layout.urls_column_is_last and len(cells) > layout.width):
        return False
    serial_cell, name = cells[layout.serial_index], cells[layout.name_index]
    if not (plain_serial(serial_cell, MAX_SERIAL_DIGITS) and 0 < len(name) <= limits.max_name_length):
        return False
    url_cell = ",".join(url_cells_of(cells, layout))
    if not plain_url_list(url_cell, limits.max_urls_per_row):
        return False
    serial = int(serial_cell)
    if first_row_of_serial.setdefault(serial, line) != line:
        return False  # a duplicate: validate_row words it
    if not log.errors:
        products.add(line, serial, name, url_cell, url_cell.count(",") + 1)
    return True


def validate_row(
    line: int,
    cells: list[str],
    layout: _Layout,
    first_row_of_serial: dict[int, int],
    log: _ErrorLog,
    limits: RowLimits = RowLimits(),
) -> Product | None:
    """Check one data record; return its Product, or None after logging its errors."""
    if not row_shape_is_valid(line, cells, layout, log):
        return None
    errors_before = log.found
    serial = read_serial_number(line, cells[layout.serial_index], first_row_of_serial, log)
    name = cells[layout.name_index]
    if not name:
        log.add(line, NAME_COLUMN, "product name is empty")
    elif len(name) > limits.max_name_length:
        message = f"product name has {len(name)} characters; at most {limits.max_name_length}"
        log.add(line, NAME_COLUMN, message)
    urls = read_urls(line, url_cells_of(cells, layout), log, limits.max_urls_per_row)
    if log.found != errors_before or serial is None:
        return None
    return Product(line, serial, name, urls)


def row_shape_is_valid(line: int, cells: list[str], layout: _Layout, log: _ErrorLog) -> bool:
    """A row needs every header column; extra fields may only be spilled-over URLs."""
    if len(cells) < layout.width:
        message = f"row has {len(cells)} fields but the header has {layout.width} columns"
        log.add(line, "", message)
        return False
    if not layout.urls_column_is_last and any(cells[layout.width :]):
        message = (
            f"row has {len(cells)} fields but the header has {layout.width} columns; "
            f"quote the {URLS_COLUMN} cell when it holds several URLs"
        )
        log.add(line, "", message)
        return False
    return True


def url_cells_of(cells: list[str], layout: _Layout) -> list[str]:
    """The URL cell plus any unquoted URLs that spilled into fields after it."""
    if layout.urls_column_is_last:
        return cells[layout.urls_index :]
    return [cells[layout.urls_index]]


def read_serial_number(
    line: int, cell: str, first_row_of_serial: dict[int, int], log: _ErrorLog
) -> int | None:
    """Parse a non-negative integer serial number that no earlier row used."""
    if not cell:
        log.add(line, SERIAL_COLUMN, "serial number is empty")
        return None
    if not (cell.isascii() and cell.isdigit() and len(cell) <= MAX_SERIAL_DIGITS):
        shown = quote_for_message(cell)
        log.add(line, SERIAL_COLUMN, f"serial number must be a non-negative integer, got {shown}")
        return None
    serial = int(cell)
    earlier_row = first_row_of_serial.setdefault(serial, line)
    if earlier_row != line:
        log.add(
            line,
            SERIAL_COLUMN,
            f"duplicate serial number {serial} (first used on row {earlier_row})",
        )
        return None
    return serial


def read_urls(line: int, url_cells: list[str], log: _ErrorLog, max_urls: int = 100) -> tuple[str, ...]:
    """Split comma-separated URLs across the URL cells, logging each invalid one (or too many)."""
    urls = tuple(filter(None, map(str.strip, ",".join(url_cells).split(","))))
    if not urls:
        log.add(line, URLS_COLUMN, "no image URL given")
    if len(urls) > max_urls:
        log.add(line, URLS_COLUMN, f"row has {len(urls)} image URLs; at most {max_urls} per row")
        return ()
    for url in urls:
        if is_plain_web_url(url):
            continue
        problem = describe_url_problem(url)
        if problem is not None:
            log.add(line, URLS_COLUMN, f"{problem}: {quote_url_for_message(url)}")
    return urls
