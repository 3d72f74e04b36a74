"""The output CSV (pure): one record per product, URL lists aligned, no cell a spreadsheet runs.

Decision (issue 12, defect 1): a product name may hold line breaks (ingest accepts them inside a
quoted CSV field). It stays one quoted cell, and every line of it that would start with a formula
character gets a `'` in front, so neither a spreadsheet nor a tool that splits lines before it
parses quotes sees a formula, and the URL columns never shift to another record.

The last column (issue 16) names each output's format (`jpeg`, `webp`, `avif`), aligned with the
URLs like them: a kept original has its own format, which the requested one does not tell.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

OUTPUT_HEADER = "S. No.,Product Name,Input Image Urls,Output Image Urls,Output Image Formats"
RECORD_END = "\r\n"  # RFC 4180
# What a spreadsheet runs as a formula when a cell (or a line) starts with it (OWASP CSV injection).
_FORMULA_PREFIXES = "=+-@\t\r"
# Every character some reader takes as the end of a line: CSV readers split records on CR and LF;
# naive line-based tools (str.splitlines, many viewers) on these others too.
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_FORMULA_AT_LINE_START = re.compile(f"(^|[{_LINE_BREAKS}])(?=[{re.escape(_FORMULA_PREFIXES)}])")
_NEEDS_QUOTES = frozenset(',"\r\n')


@dataclass(frozen=True)
class OutputImage:
    """What the output CSV needs of one image."""

    row_number: int
    serial_number: int
    product_name: str
    position: int
    input_url: str
    output_url: str | None
    output_format: str | None = None  # of the stored object; None while failed (empty slot)


def neutralise_cell(value: str) -> str:
    """Prefix `'` wherever a line of the cell begins with a formula character: at its start and
    after every embedded line break."""
    return _FORMULA_AT_LINE_START.sub(lambda m: m.group(1) + "'", value)


def csv_cell(value: str, *, quote: bool = False) -> str:
    """A neutralised cell, quoted when asked or when it holds a separator, a quote or a line break."""
    value = neutralise_cell(value)
    if quote or not _NEEDS_QUOTES.isdisjoint(value):
        return '"' + value.replace('"', '""') + '"'
    return value


def render_output_csv(images: Iterable[OutputImage]) -> str:
    """One record per product in input order, the URL and format lists always one quoted cell.

    Outputs and their formats are aligned with inputs position by position; a failed image leaves
    its slot empty in both.
    """
    products: dict[int, list[OutputImage]] = {}
    for image in images:
        products.setdefault(image.row_number, []).append(image)
    lines = [OUTPUT_HEADER]
    for row_number in sorted(products):
        shots = sorted(products[row_number], key=lambda s: s.position)
        inputs = ",".join(s.input_url for s in shots)
        outputs = ",".join(s.output_url or "" for s in shots)
        formats = ",".join((s.output_format or "") if s.output_url else "" for s in shots)
        cells = [str(shots[0].serial_number), csv_cell(shots[0].product_name)]
        lists = [csv_cell(column, quote=True) for column in (inputs, outputs, formats)]
        lines.append(",".join([*cells, *lists]))
    return RECORD_END.join(lines) + RECORD_END
