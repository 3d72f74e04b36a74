"""A plain-text table of result rows, as the chaos suites print them (one row per fault)."""

from __future__ import annotations


def table_lines(columns: list[str], rows: list[dict]) -> list[str]:
    """Header, rule and one line per row; each column as wide as its widest cell."""
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [
        " | ".join(str(r.get(c, "")).ljust(w) for c, w in zip(columns, widths, strict=True)) for r in rows
    ]
    return lines
