"""Plain columns as `tabulate(rows, headers, tablefmt="plain", disable_numparse=True)` prints them, for the cells
where that is plain arithmetic: a whole 10,000-Service node is 10,000 rows, and tabulate's per-cell width and
type functions took longer than parsing the dump.

Only cells that are printable ASCII strings without surrounding spaces take this path (their width is their
length, nothing to strip, no colour codes, one line each); anything else returns None and tabulate prints it.
tests/cli/test_plain_table.py holds the two equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def plain_columns(headers: Sequence[str] | None, rows: Sequence[Sequence[Any]]) -> str | None:
    """The table's text (headers upper-cased by the caller, or None for none), or None when a cell is not simple."""
    if not rows:
        return None
    ncols = len(headers) if headers is not None else len(rows[0])
    cells: list[str] = []
    for row in rows:
        if len(row) != ncols:
            return None
        cells.extend(row)
    if headers is not None:
        cells.extend(headers)
    for c in cells:  # cell by cell: a whole dump's cells joined would be another copy of the table
        if c.__class__ is not str or c[:1] == " " or c[-1:] == " " or not (c.isascii() and c.isprintable()):
            return None
    # tabulate: each column as wide as its widest cell, and with headers at least the header's width + 2
    widths = [len(headers[i]) + 2 for i in range(ncols)] if headers is not None else [0] * ncols
    for row in rows:
        for i, c in enumerate(row):
            if len(c) > widths[i]:
                widths[i] = len(c)
    last = ncols - 1
    lines: list[str] = []

    def line(row: Sequence[str]) -> str:
        return "  ".join([c.ljust(widths[i]) if i < last else c for i, c in enumerate(row)]).rstrip()

    if headers is not None:
        lines.append(line(headers))
    lines.extend(line(row) for row in rows)
    return "\n".join(lines)
