"""What validation makes of an upload: its products by column, with no object per product or URL."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    """One valid product row with its image URLs in file order."""

    row: int
    serial_number: int
    name: str
    urls: tuple[str, ...]


@dataclass(frozen=True)
class ValidatedUpload:
    """Every product of an upload that passed validation, by column: no object per product or URL.

    ``url_cells[i]`` holds the URLs of product i joined by commas (a URL never holds a comma:
    the cell was split on them).
    """

    rows: list[int]
    serials: list[int]
    names: list[str]
    url_cells: list[str]
    total_images: int

    @property
    def products(self) -> tuple[Product, ...]:
        return tuple(
            Product(row, serial, name, tuple(cell.split(",")))
            for row, serial, name, cell in zip(
                self.rows, self.serials, self.names, self.url_cells, strict=True
            )
        )


class Collected:
    """The columns of a ValidatedUpload while they are being read."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.serials: list[int] = []
        self.names: list[str] = []
        self.url_cells: list[str] = []
        self.total_images = 0

    def add(self, row: int, serial: int, name: str, url_cell: str, images: int) -> None:
        self.rows.append(row)
        self.serials.append(serial)
        self.names.append(name)
        self.url_cells.append(url_cell)
        self.total_images += images

    def upload(self) -> ValidatedUpload:
        return ValidatedUpload(self.rows, self.serials, self.names, self.url_cells, self.total_images)
