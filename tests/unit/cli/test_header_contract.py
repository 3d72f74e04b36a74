"""The CSV header contract in pipeline_schemas: ingest and the CLI pre-check accept the same headers."""

import pytest
from imgpipe_cli.precheck import check_product_csv
from ingest.csv_validation import CsvValidationError, parse_upload
from pipeline_schemas import (
    CANONICAL_HEADER,
    HEADER_SPELLINGS,
    REQUIRED_COLUMNS,
    SERIAL_COLUMN,
    canonical_column,
)
from pipeline_schemas.csv_header import MAX_SPELLING_CELL

ROW = "1,Shirt,http://127.0.0.1:9/a.jpg\n"


def csv_with(header: str) -> bytes:
    return f"{header}\n{ROW}".encode()


def ingest_accepts(data: bytes) -> bool:
    try:
        parse_upload(data)
    except CsvValidationError:
        return False
    return True


def header_with(column: str, spelling: str) -> str:
    return ",".join(spelling if name == column else name for name in REQUIRED_COLUMNS)


def test_the_canonical_header_names_the_three_columns_in_order():
    assert CANONICAL_HEADER == "S. No.,Product Name,Input Image Urls"
    assert [canonical_column(cell) for cell in CANONICAL_HEADER.split(",")] == list(REQUIRED_COLUMNS)


def test_every_spelling_names_a_required_column():
    assert set(HEADER_SPELLINGS.values()) == set(REQUIRED_COLUMNS)


def test_both_accept_the_canonical_header():
    assert ingest_accepts(csv_with(CANONICAL_HEADER))
    assert check_product_csv(csv_with(CANONICAL_HEADER)) == []


@pytest.mark.parametrize(("spelling", "column"), sorted(HEADER_SPELLINGS.items()))
@pytest.mark.parametrize(
    "styled", [str, str.upper, lambda s: f" {s[:2]}.{s[2:]} "], ids=["as-is", "upper", "dotted"]
)
def test_both_accept_every_spelling_in_any_case_and_punctuation(spelling, column, styled):
    data = csv_with(header_with(column, styled(spelling)))
    assert ingest_accepts(data)
    assert check_product_csv(data) == []


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_both_refuse_a_header_that_misspells_a_column(column):
    data = csv_with(header_with(column, "Something Else"))
    assert not ingest_accepts(data)
    assert [problem.column for problem in check_product_csv(data)] == [column]


def test_a_cell_longer_than_any_spelling_names_no_column_for_either():
    padded = "S" + "." * MAX_SPELLING_CELL + "No"
    assert canonical_column(padded) is None
    data = csv_with(header_with(SERIAL_COLUMN, padded))
    assert not ingest_accepts(data)
    assert [problem.column for problem in check_product_csv(data)] == [SERIAL_COLUMN]
