"""An upload's rows in PostgreSQL's COPY text format, a chunk at a time, with ordered image ids.

300,000 images are one formatted line each: building a Python object per image (a tuple for
asyncpg's binary COPY, a UUID) cost more than the server's own work. Here a chunk of a few
thousand products becomes one bytes object; the caller encodes chunks in a thread while the
server reads the previous one. PostgreSQL parses the ids and numbers itself (uuid, integer):
a malformed value would fail the whole COPY, never be stored differently.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from uuid import UUID

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")
# The two hex groups an id's sequence number fills (see OrderedIds), looked up, not formatted.
_SEQ_HIGH = [f"{n:03x}" for n in range(1 << 12)]
_SEQ_LOW = [f"{0x8000 | n:04x}" for n in range(1 << 14)]


class OrderedIds:
    """`count` UUIDv7 strings (RFC 9562, method 1) that sort in the order given, rendered on demand.

    48-bit Unix milliseconds, then a 26-bit sequence number (12 bits in rand_a, 14 after the
    variant), then 48 random bits. Image ids in input order append to the right edge of the
    primary-key index instead of landing at random pages: COPY of 300,000 images is much faster.
    Only the random bits are kept (6 bytes an id): ids exist as strings only while encoded.
    """

    MAX = 1 << 26

    def __init__(self, count: int) -> None:
        if not 0 <= count < self.MAX:
            raise ValueError(f"between 0 and {self.MAX - 1} ordered ids")
        millis = f"{time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF:012x}"
        self.prefix = f"{millis[:8]}-{millis[8:]}-7"
        self.tails = os.urandom(6 * count).hex()
        self.count = count

    def render(self, start: int, stop: int) -> list[str]:
        """Ids number start..stop-1 as canonical strings."""
        if not 0 <= start <= stop <= self.count:
            raise IndexError(f"ids {start}..{stop} of {self.count}")
        prefix, tails, high, low = self.prefix, self.tails, _SEQ_HIGH, _SEQ_LOW
        return [
            f"{prefix}{high[n >> 14]}-{low[n & 0x3FFF]}-{tails[12 * n : 12 * n + 12]}"
            for n in range(start, stop)
        ]


def copy_text(value: str) -> str:
    """A value for COPY's text format: backslash, tab, newline and carriage return escaped."""
    return value.translate(_COPY_ESCAPES) if _NEEDS_ESCAPE.search(value) else value


def escaped(values: Sequence[str]) -> Sequence[str]:
    """The values escaped for COPY; one scan of the whole chunk in the usual case of nothing to escape."""
    if not _NEEDS_ESCAPE.search("".join(values)):
        return values
    return [copy_text(value) for value in values]


def products_chunk(
    request_id: UUID, rows: Sequence[int], serials: Sequence[int], names: Sequence[str]
) -> bytes:
    """Lines of products: request_id, row_number, serial_number, product_name."""
    rid = str(request_id)
    return "".join(
        [
            f"{rid}\t{row}\t{serial}\t{name}\n"
            for row, serial, name in zip(rows, serials, escaped(names), strict=True)
        ]
    ).encode()


def images_chunk(
    request_id: UUID,
    rows: Sequence[int],
    serials: Sequence[int],
    url_cells: Sequence[str],
    ids: OrderedIds,
    first_id: int,
) -> tuple[bytes, int]:
    """Lines of images (image_id, request_id, row_number, serial_number, position, input_url), and
    the number of the next chunk's first id. `url_cells` are each product's URLs joined by commas."""
    rid, prefix, tails, high, low = str(request_id), ids.prefix, ids.tails, _SEQ_HIGH, _SEQ_LOW
    n = first_id
    lines: list[str] = []
    append = lines.append
    for row, serial, cell in zip(rows, serials, escaped(url_cells), strict=True):
        head = f"\t{rid}\t{row}\t{serial}\t"
        for position, url in enumerate(cell.split(",")):
            append(
                f"{prefix}{high[n >> 14]}-{low[n & 0x3FFF]}-{tails[12 * n : 12 * n + 12]}{head}{position}\t{url}\n"
            )
            n += 1
    if n > ids.count:
        raise IndexError(f"{n} images but {ids.count} ids")
    return "".join(lines).encode(), n
