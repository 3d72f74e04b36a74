"""The fast path of CSV validation accepts only what the full check accepts, and reads the same lines."""

from __future__ import annotations

import io
import random

import pytest
from ingest import csv_validation
from ingest.csv_records import lines_of
from ingest.csv_validation import CsvValidationError, parse_upload
from ingest.plain_rows import plain_url_list
from ingest.url_checks import describe_url_problem, is_plain_web_url

HEADER = "S. No.,Product Name,Input Image Urls"

TRICKY_URLS = [
    "http://a.example/1.jpg",
    "https://cdn.example.com/a/b.jpg?x=1&y=2#top",
    "http://127.0.0.1:9/catalogue/000001/photo-0.jpg",
    "http://127.0.0.1:65535/x.jpg",
    "http://127.0.0.1:99999/x.jpg",
    "http://127.0.0.1:/x.jpg",
    "http://127.0.0.1:123456/x.jpg",
    "HTTP://A.EXAMPLE/x.jpg",
    "ftp://a.example/x.jpg",
    "http://user:pw@a.example/x.jpg",
    "http://@a.example/x.jpg",
    "http://./x.jpg",
    "http://-/x.jpg",
    "http:///x.jpg",
    "http://a.example",
    "http://a.example?x",
    "http://a.example#x",
    "http://[::1]/x.jpg",
    "http://[::1/x.jpg",
    "http://a.example/x y.jpg",
    "http://a.example/x\ty.jpg",
    "http://a.example/back\\slash.jpg",
    'http://a.example/quote".jpg',
    "http://bücher.example/straße.jpg",
    "http://a.example/\u00e9.jpg",
    "http://" + "a" * 63 + ".example/x.jpg",
    "http://" + "a" * 64 + ".example/x.jpg",
    "http://" + "a" * 64 + "/x.jpg",
    "http://a.example/" + "x" * 2040,
    "http://a.example/" + "x" * 2031,
    "//a.example/x.jpg",
    "a.example/x.jpg",
    "",
]


@pytest.mark.parametrize("url", TRICKY_URLS)
def test_a_url_the_fast_path_takes_is_one_the_full_check_accepts(url):
    if plain_url_list(url, 100):
        assert is_plain_web_url(url)
        assert describe_url_problem(url) is None


def test_the_fast_path_takes_the_usual_url_lists_and_leaves_the_rest():
    assert plain_url_list("http://a.example/1.jpg,https://b.example:8080/2.jpg", 100)
    assert not plain_url_list("http://a.example/1.jpg, http://a.example/2.jpg", 100)  # space: full check
    assert not plain_url_list("http://a.example/1.jpg,,http://a.example/2.jpg", 100)  # empty item
    assert not plain_url_list(",".join(["http://a.example/1.jpg"] * 3), 2)  # over the cap


def random_text(rng: random.Random, alphabet: list[str]) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))


def test_lines_are_cut_as_stringio_with_newline_empty_cuts_them():
    rng = random.Random(14)
    plain = ["a", ",", '"', "\r", "\n", "\r\n", " "]
    other_breaks = [*plain, "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
    for n in range(20_000):
        text = random_text(rng, other_breaks if n % 2 else plain)
        assert list(lines_of(text)) == list(io.StringIO(text, newline="")), repr(text)


def outcome(data: bytes) -> object:
    try:
        return [
            (p.row, p.serial_number, p.name, p.urls) for p in parse_upload(data, max_urls_per_row=3).products
        ]
    except CsvValidationError as exc:
        return exc.errors, exc.omitted


CELLS = {
    "serial": ["1", "2", "007", "", "-1", "x", "1.5", "١", "9" * 19, "3"],
    "name": ["Shirt", "", "Hat\twith tab", "Café", "n" * 1025, '"quoted, name"'],
    "urls": [
        "http://a.example/1.jpg",
        '"http://a.example/1.jpg,http://a.example/2.jpg"',
        "http://a.example/1.jpg,http://a.example/2.jpg",
        '"http://a.example/1.jpg, http://a.example/2.jpg"',
        '"http://a.example/1.jpg,,"',
        '"http://a,http://b,http://c,http://d"',
        "ftp://a.example/x.jpg",
        "http://user:pw@a.example/x.jpg",
        "http://bücher.example/x.jpg",
        "",
    ],
}


GOOD = {
    "name": ["Shirt", "Café", '"quoted, name"', "Hat\twith tab"],
    "urls": CELLS["urls"][:3] + ["http://bücher.example/x.jpg"],
}


def row_of(rng: random.Random, number: int, *, mostly_good: bool) -> str:
    """A CSV row; mostly good ones have their own serial and, nine times in ten, good cells."""
    if not mostly_good:
        return ",".join(rng.choice(CELLS[column]) for column in ("serial", "name", "urls"))
    cells = [str(number)]
    for column in ("name", "urls"):
        cells.append(rng.choice(GOOD[column] if rng.random() < 0.9 else CELLS[column]))
    return ",".join(cells)


def test_a_file_gives_the_same_products_or_errors_with_and_without_the_fast_path(monkeypatch):
    rng = random.Random(2026)
    files = []
    for n in range(400):
        rows = [row_of(rng, k, mostly_good=bool(n % 2)) for k in range(1, 7)]
        files.append(("\n".join([HEADER, *rows]) + "\n").encode())
    fast = [outcome(data) for data in files]

    monkeypatch.setattr(csv_validation, "plain_row", lambda *args: False)
    full = [outcome(data) for data in files]

    assert fast == full
    assert any(isinstance(o, list) for o in fast)  # some files were valid, so the fast path was used
