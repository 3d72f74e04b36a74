"""The common product row, checked in a few C-level calls; anything unusual goes to the full check.

A 100,000-row upload spends most of its validation in per-row Python. Here one regular
expression decides a whole URL cell at once and a row that passes every test is accepted as
is. A row that fails any of them is not rejected here: csv_validation's full check decides it
and words its errors, so the answers stay exactly what they were. Every test below is
therefore stricter than the full check (it accepts a subset of what the full check accepts).
"""

from __future__ import annotations

import re

from pipeline_runtime.urls import MAX_HOST_LABEL, MAX_URL_LENGTH

# Lower-case http(s), an ASCII host name of at most MAX_HOST_LABEL characters holding a letter or
# digit, an optional port of at most four digits, then "/" and printable ASCII other than space,
# comma and backslash. url_checks.is_plain_web_url accepts every URL this matches.
_HOST = r"(?=[.-]*[A-Za-z0-9])[A-Za-z0-9.-]{1," + str(MAX_HOST_LABEL) + "}"
_URL = r"https?://" + _HOST + r"(?::[0-9]{1,4})?(?:/[\x21-\x2b\x2d-\x5b\x5d-\x7e]*)?"
_URL_LIST = re.compile(f"{_URL}(?:,{_URL})*")


def plain_url_list(joined: str, max_urls: int) -> bool:
    """True when the comma-joined URL cells are 1..max_urls plain URLs with no empty item or space."""
    if not _URL_LIST.fullmatch(joined):
        return False
    if joined.count(",") >= max_urls:
        return False
    return len(joined) <= MAX_URL_LENGTH or max(map(len, joined.split(","))) <= MAX_URL_LENGTH


def plain_serial(cell: str, max_digits: int) -> bool:
    """A non-empty ASCII decimal number of at most `max_digits` digits (duplicates are checked apart)."""
    return 0 < len(cell) <= max_digits and cell.isascii() and cell.isdigit()
