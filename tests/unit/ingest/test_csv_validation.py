"""Behaviour of the product CSV validator used by the ingest upload endpoint."""

import pytest
from ingest.csv_validation import (
    CsvValidationError,
    RowError,
    ValidatedUpload,
    parse_upload,
)

HEADER = "S. No.,Product Name,Input Image Urls"
SERIAL = "S. No."
NAME = "Product Name"
URLS = "Input Image Urls"


def csv_bytes(*lines: str, newline: str = "\n") -> bytes:
    return (newline.join(lines) + newline).encode("utf-8")


def errors_from(data: bytes, **limits: int) -> list[RowError]:
    with pytest.raises(CsvValidationError) as caught:
        parse_upload(data, **limits)
    return caught.value.errors


def only_error(data: bytes, **limits: int) -> RowError:
    errors = errors_from(data, **limits)
    assert len(errors) == 1, errors
    return errors[0]


def test_a_valid_file_yields_products_with_rows_serials_names_and_urls():
    upload = parse_upload(csv_bytes(HEADER, "1,Shirt,https://cdn.example.com/a.jpg"))

    assert isinstance(upload, ValidatedUpload)
    [product] = upload.products
    assert (product.row, product.serial_number, product.name) == (2, 1, "Shirt")
    assert product.urls == ("https://cdn.example.com/a.jpg",)


def test_a_quoted_cell_with_three_urls_yields_all_three_in_order():
    row = '1,Shirt,"http://a.example/1.jpg,http://a.example/2.jpg,http://a.example/3.jpg"'

    upload = parse_upload(csv_bytes(HEADER, row))

    assert upload.products[0].urls == (
        "http://a.example/1.jpg",
        "http://a.example/2.jpg",
        "http://a.example/3.jpg",
    )
    assert upload.total_images == 3


def test_unquoted_urls_spilling_into_extra_fields_yield_all_three_in_order():
    row = "1,Shirt,http://a.example/1.jpg,http://a.example/2.jpg,http://a.example/3.jpg"

    upload = parse_upload(csv_bytes(HEADER, row))

    assert upload.products[0].urls == (
        "http://a.example/1.jpg",
        "http://a.example/2.jpg",
        "http://a.example/3.jpg",
    )


def test_empty_items_between_commas_and_a_trailing_comma_are_ignored():
    row = '1,Shirt," http://a.example/1.jpg, ,,http://a.example/2.jpg,"'

    upload = parse_upload(csv_bytes(HEADER, row))

    assert upload.products[0].urls == ("http://a.example/1.jpg", "http://a.example/2.jpg")


def test_a_utf8_bom_and_crlf_line_endings_are_accepted():
    text = csv_bytes(HEADER, "1,Café,https://a.example/1.jpg", newline="\r\n")

    upload = parse_upload(b"\xef\xbb\xbf" + text)

    assert upload.products[0].name == "Café"
    assert upload.products[0].urls == ("https://a.example/1.jpg",)


def test_cells_are_trimmed():
    upload = parse_upload(csv_bytes(HEADER, "  7 ,  Shirt  ,  https://a.example/1.jpg  "))

    product = upload.products[0]
    assert (product.serial_number, product.name) == (7, "Shirt")
    assert product.urls == ("https://a.example/1.jpg",)


def test_blank_lines_are_skipped_and_later_errors_keep_physical_line_numbers():
    data = csv_bytes(HEADER, "", "1,Shirt,https://a.example/1.jpg", "", "   ", "2,,https://a.example/2.jpg")

    assert only_error(data) == RowError(6, NAME, "product name is empty")


def test_a_quoted_cell_spanning_lines_reports_the_line_where_the_next_record_starts():
    data = csv_bytes(HEADER, '1,"Multi', 'line name",https://a.example/1.jpg', "2,,https://a.example/2.jpg")

    error = only_error(data)

    assert (error.row, error.column) == (4, NAME)


def test_an_error_in_a_record_spanning_lines_names_the_line_where_it_starts():
    data = csv_bytes(HEADER, "1,Shirt,https://a.example/1.jpg", '2,"Two', 'lines",')

    assert only_error(data) == RowError(3, URLS, "no image URL given")


@pytest.mark.parametrize(
    ("serial", "name", "urls"),
    [
        ("S. No.", "Product Name", "Input Image Urls"),
        ("S.No", "product name", "Input Image URLs"),
        ("S No", "PRODUCT NAME", "Input URLs"),
        ("Sr. No.", "Product_Name", "input urls"),
        ("Serial Number", "Product Name", "Input Image Urls"),
        ("sno", "productname", "inputimageurls"),
        ("srno", "Product Name", "Input URLs"),
    ],
)
def test_header_variants_are_recognised(serial, name, urls):
    upload = parse_upload(csv_bytes(f"{serial},{name},{urls}", "4,Shirt,https://a.example/1.jpg"))

    assert upload.products[0].serial_number == 4
    assert upload.products[0].name == "Shirt"


def test_columns_may_appear_in_any_order():
    data = csv_bytes("Input Image Urls,Product Name,S. No.", '"https://a.example/1.jpg",Shirt,9')

    product = parse_upload(data).products[0]

    assert (product.serial_number, product.name, product.urls) == (
        9,
        "Shirt",
        ("https://a.example/1.jpg",),
    )


def test_an_unknown_extra_header_column_is_an_error_naming_it():
    data = csv_bytes(HEADER + ",Colour", "1,Shirt,https://a.example/1.jpg,red")

    error = only_error(data)

    assert (error.row, error.column) == (1, "Colour")
    assert "unknown column 'Colour'" in error.message


def test_a_missing_required_column_is_an_error_naming_it():
    error = only_error(csv_bytes("S. No.,Input Image Urls", "1,https://a.example/1.jpg"))

    assert (error.row, error.column) == (1, NAME)
    assert "missing" in error.message


def test_a_file_without_a_header_row_is_rejected():
    error = only_error(csv_bytes("1,Shirt,https://a.example/1.jpg"))

    assert (error.row, error.column) == (1, "")
    assert "header" in error.message


def test_extra_fields_are_an_error_when_the_url_column_is_not_last():
    data = csv_bytes("Input Image Urls,S. No.,Product Name", "http://a.example/1.jpg,1,Shirt,oops")

    error = only_error(data)

    assert (error.row, error.column) == (2, "")
    assert "4 fields" in error.message


def test_a_row_with_fewer_fields_than_the_header_is_an_error():
    error = only_error(csv_bytes(HEADER, "1,Shirt"))

    assert (error.row, error.column) == (2, "")
    assert "2 fields" in error.message


def test_five_bad_rows_are_all_reported_with_their_lines_and_columns():
    data = csv_bytes(
        HEADER,
        "x,Shirt,https://a.example/1.jpg",
        "2,,https://a.example/2.jpg",
        "3,Hat,",
        "4,Sock,ftp://a.example/4.jpg",
        "5,Shoe,images/5.jpg",
        "6,Belt,https://a.example/6.jpg",
    )

    errors = errors_from(data)

    assert [(error.row, error.column) for error in errors] == [
        (2, SERIAL),
        (3, NAME),
        (4, URLS),
        (5, URLS),
        (6, URLS),
    ]


def test_a_duplicate_serial_number_names_the_earlier_row():
    data = csv_bytes(HEADER, "1,Shirt,https://a.example/1.jpg", "1,Hat,https://a.example/2.jpg")

    error = only_error(data)

    assert (error.row, error.column) == (3, SERIAL)
    assert "row 2" in error.message


def test_a_non_integer_serial_number_is_an_error():
    error = only_error(csv_bytes(HEADER, "1.5,Shirt,https://a.example/1.jpg"))

    assert (error.row, error.column) == (2, SERIAL)
    assert "'1.5'" in error.message


def test_an_empty_product_name_is_an_error():
    assert only_error(csv_bytes(HEADER, "1,,https://a.example/1.jpg")) == RowError(
        2, NAME, "product name is empty"
    )


def test_a_row_without_any_url_is_an_error():
    assert only_error(csv_bytes(HEADER, "1,Shirt, , ")) == RowError(2, URLS, "no image URL given")


def test_an_ftp_url_is_rejected():
    error = only_error(csv_bytes(HEADER, "1,Shirt,ftp://a.example/1.jpg"))

    assert error.column == URLS
    assert "http or https" in error.message
    assert "ftp://a.example/1.jpg" in error.message


def test_a_relative_url_is_rejected():
    error = only_error(csv_bytes(HEADER, "1,Shirt,/images/1.jpg"))

    assert error.column == URLS
    assert "absolute" in error.message


def test_a_url_without_a_host_is_rejected():
    error = only_error(csv_bytes(HEADER, "1,Shirt,http:///1.jpg"))

    assert "no host" in error.message


def test_a_url_with_whitespace_inside_is_rejected():
    error = only_error(csv_bytes(HEADER, "1,Shirt,https://a.example/my image.jpg"))

    assert "whitespace" in error.message


def test_a_url_over_2048_characters_is_rejected_and_quoted_truncated():
    long_url = "https://a.example/" + "x" * 2040

    error = only_error(csv_bytes(HEADER, f"1,Shirt,{long_url}"))

    assert "2048" in error.message
    assert len(error.message) < 200


def test_a_url_of_exactly_2048_characters_is_accepted():
    url = "https://a.example/" + "x" * (2048 - len("https://a.example/"))

    assert parse_upload(csv_bytes(HEADER, f"1,Shirt,{url}")).products[0].urls == (url,)


@pytest.mark.parametrize(
    "url",
    ["https://alice:s3cretPW@a.example/1.jpg", "https://s3cretPW@a.example/1.jpg"],
)
def test_a_url_with_credentials_is_rejected_without_revealing_them(url):
    error = only_error(csv_bytes(HEADER, f"1,Shirt,{url}"))

    assert error.column == URLS
    assert "URL must not contain credentials" in error.message
    assert "s3cretPW" not in error.message
    assert "a.example/1.jpg" in error.message


def test_an_empty_file_is_an_error():
    error = only_error(b"")

    assert (error.row, error.column) == (1, "")
    assert "empty" in error.message


def test_a_header_only_file_is_an_error():
    error = only_error(csv_bytes(HEADER))

    assert (error.row, error.column) == (1, "")
    assert "no product rows" in error.message


def test_exceeding_the_row_limit_is_a_single_error_naming_the_limit():
    rows = [f"{n},P{n},https://a.example/{n}.jpg" for n in range(1, 5)]

    error = only_error(csv_bytes(HEADER, *rows), max_rows=3)

    assert (error.row, error.column) == (5, "")
    assert "3" in error.message


def test_a_file_at_the_row_limit_is_accepted():
    rows = [f"{n},P{n},https://a.example/{n}.jpg" for n in range(1, 4)]

    assert len(parse_upload(csv_bytes(HEADER, *rows), max_rows=3).products) == 3


def test_errors_are_capped_at_max_errors_and_the_others_are_counted():
    rows = [f"{n},,https://a.example/{n}.jpg" for n in range(1, 11)]

    with pytest.raises(CsvValidationError) as caught:
        parse_upload(csv_bytes(HEADER, *rows), max_errors=3)

    assert [error.row for error in caught.value.errors] == [2, 3, 4]
    assert caught.value.omitted == 7


def test_non_utf8_input_is_an_error_naming_the_line():
    data = csv_bytes(HEADER) + "1,Caf\xe9,https://a.example/1.jpg\n".encode("latin-1")

    error = only_error(data)

    assert (error.row, error.column) == (2, "")
    assert "UTF-8" in error.message


def test_one_hundred_thousand_rows_with_three_urls_each_are_parsed():
    rows = (
        f'{n},Product {n},"https://cdn.example.com/{n}/a.jpg,'
        f'https://cdn.example.com/{n}/b.jpg,https://cdn.example.com/{n}/c.jpg"'
        for n in range(1, 100_001)
    )

    upload = parse_upload(csv_bytes(HEADER, *rows))

    assert len(upload.products) == 100_000
    assert upload.total_images == 300_000


@pytest.mark.parametrize("host", ["a" * 64 + ".example", "cdn." + "b" * 70, "c" * 64 + ".example:8080"])
def test_a_host_name_label_over_63_characters_is_a_bad_url_naming_the_row(host):
    error = only_error(csv_bytes(HEADER, f"1,Shirt,http://{host}/a.jpg"))

    assert (error.row, error.column) == (2, URLS)
    assert "label longer than 63" in error.message


def test_a_product_name_beyond_the_bound_is_an_error_naming_the_row():
    rows = ["1,Shirt,http://a.example/1.jpg", f"2,{'n' * 1025},http://a.example/2.jpg"]

    error = only_error(csv_bytes(HEADER, *rows))

    assert (error.row, error.column) == (3, NAME)
    assert "1025 characters; at most 1024" in error.message


def test_a_product_name_at_the_bound_is_accepted():
    upload = parse_upload(csv_bytes(HEADER, f"1,{'n' * 10},http://a.example/1.jpg"), max_name_length=10)

    assert upload.products[0].name == "n" * 10


def test_a_row_with_more_urls_than_the_bound_is_one_error_naming_the_row():
    urls = ",".join(f"http://a.example/{n}.jpg" for n in range(301))

    error = only_error(csv_bytes(HEADER, f'1,Shirt,"{urls}"'), max_urls_per_row=300)

    assert (error.row, error.column) == (2, URLS)
    assert "301 image URLs; at most 300" in error.message


def test_a_row_at_the_url_bound_is_accepted():
    urls = ",".join(f"http://a.example/{n}.jpg" for n in range(3))

    assert parse_upload(csv_bytes(HEADER, f'1,Shirt,"{urls}"'), max_urls_per_row=3).total_images == 3
