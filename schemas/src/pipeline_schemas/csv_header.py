"""The product CSV's header contract: the three columns, their canonical header, accepted spellings.

Ingest validates uploads against it and the CLI checks files before uploading with it, so both
accept exactly the same headers. A spelling is matched after `normalise_header`: case folded,
everything but letters and digits dropped ("S.No", "s no" and "SNO" are all `sno`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "CANONICAL_HEADER",
    "HEADER_SPELLINGS",
    "MAX_SPELLING_CELL",
    "NAME_COLUMN",
    "REQUIRED_COLUMNS",
    "SERIAL_COLUMN",
    "URLS_COLUMN",
    "canonical_column",
    "normalise_header",
]

SERIAL_COLUMN = "S. No."
NAME_COLUMN = "Product Name"
URLS_COLUMN = "Input Image Urls"
REQUIRED_COLUMNS: tuple[str, str, str] = (SERIAL_COLUMN, NAME_COLUMN, URLS_COLUMN)
CANONICAL_HEADER = ",".join(REQUIRED_COLUMNS)
"""The header line templates and documentation show, in this column order."""

HEADER_SPELLINGS: Mapping[str, str] = MappingProxyType(
    {
        "sno": SERIAL_COLUMN,
        "srno": SERIAL_COLUMN,
        "serialno": SERIAL_COLUMN,
        "serialnumber": SERIAL_COLUMN,
        "productname": NAME_COLUMN,
        "inputimageurls": URLS_COLUMN,
        "inputurls": URLS_COLUMN,
    }
)
"""Normalised header cell -> the canonical column it names."""

MAX_SPELLING_CELL = 64
"""Header cells longer than this name no column, decided without normalising a hostile cell."""


def normalise_header(cell: str) -> str:
    """The form spellings are compared in: case folded, letters and digits only."""
    return "".join(char for char in cell.casefold() if char.isalnum())


def canonical_column(cell: str) -> str | None:
    """The canonical column a header cell names, or None when it names none."""
    if len(cell) > MAX_SPELLING_CELL:
        return None
    return HEADER_SPELLINGS.get(normalise_header(cell))
