"""The output CSV (pure): alignment, order, quoting, and no formula on any line of any cell."""

from __future__ import annotations

import csv
import io

import pytest
from tracker.api.csv_output import neutralise_cell, render_output_csv

from tests.unit.tracker.fakes import as_output, image


def test_output_rows_follow_input_order_even_when_images_arrive_shuffled():
    images = [image(3, 1, "http://a/d"), image(2, 1, "http://a/b"), image(3, 0, "http://a/c")]
    images.append(image(2, 0, "http://a/a"))

    lines = render_output_csv(as_output(images)).splitlines()

    assert lines[1:] == [
        '1,Product 1,"http://a/a,http://a/b",",",","',
        '2,Product 2,"http://a/c,http://a/d",",",","',
    ]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
INJECTIONS = [
    "x\n=cmd|' /C calc'!A0",
    "x\r=cmd|' /C calc'!A0",
    "x\r\n=cmd|' /C calc'!A0",
    "x\n\r=1+1",
    "\n+1\n-2\n@SUM(A1)\n\tx",
    '=HYPERLINK("http://evil","y")\n"quoted"\r\n,comma',
    "x\u2028=1\x85=2\x0b=3",
]


@pytest.mark.parametrize("name", INJECTIONS)
def test_a_product_name_with_line_breaks_stays_one_neutralised_cell(name):
    images = [
        image(2, 0, "http://a/1.jpg", "http://o/1.jpg", serial=1, name=name),
        image(2, 1, "http://a/2.jpg", "http://o/2.jpg", serial=1, name=name),
        image(3, 0, "http://a/3.jpg", "http://o/3.jpg", serial=2, name="Hat"),
    ]

    text = render_output_csv(as_output(images))
    rows = list(csv.reader(io.StringIO(text, newline="")))

    assert len(rows) == 3  # the header and one record per product, whatever the name holds
    assert all(len(r) == 5 for r in rows)
    assert rows[1][0] == "1"
    assert rows[1][2:] == ["http://a/1.jpg,http://a/2.jpg", "http://o/1.jpg,http://o/2.jpg", "jpeg,jpeg"]
    assert rows[2] == ["2", "Hat", "http://a/3.jpg", "http://o/3.jpg", "jpeg"]
    assert rows[1][1].replace("'", "") == name.replace("'", "")  # only neutralising marks were added
    cells = [cell for r in rows for cell in r]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
    # A reader that splits on line breaks (ignoring quotes) sees no formula either.
    assert not [line for line in text.splitlines() if line.startswith(FORMULA_STARTS)]
    assert not [line for line in rows[1][1].splitlines() if line.startswith(FORMULA_STARTS)]


@pytest.mark.parametrize("dangerous", ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_cells_a_spreadsheet_would_run_as_formulas_are_neutralised(dangerous):
    assert neutralise_cell(dangerous) == "'" + dangerous


def test_ordinary_cells_are_left_alone():
    assert neutralise_cell("Red Shoe") == "Red Shoe"


def test_each_output_names_its_format_aligned_with_its_url_and_a_failed_one_leaves_both_empty():
    """Issue 16: a request asks for one format, but a kept original keeps its own (here a JPEG)."""
    images = [
        image(2, 0, "http://a/1.png", "http://o/1.webp", output_format="webp"),
        image(2, 1, "http://a/2.jpg", "http://o/2.jpg", output_format="jpeg"),
        image(2, 2, "http://a/3.png", status="failed"),
        image(3, 0, "http://a/4.png", "http://o/4.avif", output_format="avif"),
    ]

    rows = list(csv.reader(io.StringIO(render_output_csv(as_output(images)), newline="")))

    assert rows[0][3:] == ["Output Image Urls", "Output Image Formats"]
    assert rows[1][3:] == ["http://o/1.webp,http://o/2.jpg,", "webp,jpeg,"]
    assert rows[2][3:] == ["http://o/4.avif", "avif"]
