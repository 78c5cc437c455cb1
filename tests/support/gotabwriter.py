"""Go's text/tabwriter (left-aligned, padchar ' ', no flags), so fixtures have the exact spacing agents print.

Cilium's listings use `tabwriter.NewWriter(os.Stdout, 5, 0, 3, ' ', 0)`: a cell is text ended by a tab; a
column's width is the widest cell in a run of consecutive lines that have that column, plus the padding, and
at least minwidth; every terminated cell (empty ones too) is padded to it; text after a line's last tab is
written as is. This is our own implementation of that documented behaviour (the recursive column blocks).
"""

from __future__ import annotations


def format_tabwriter(text: str, minwidth: int = 5, padding: int = 3) -> str:
    lines = text.split("\n")
    trailing_newline = text.endswith("\n")
    if trailing_newline:
        lines = lines[:-1]
    cells = [ln.split("\t") for ln in lines]
    out: list[str] = []

    def write(line0: int, line1: int, widths: list[int]) -> None:
        for row in cells[line0:line1]:
            parts = []
            for j, c in enumerate(row):
                parts.append(c.ljust(widths[j]) if j < len(widths) else c)
            out.append("".join(parts))

    def fmt(line0: int, line1: int, widths: list[int]) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(cells[this]) - 1:
                this += 1
                continue
            write(line0, this, widths)
            line0 = this
            width = minwidth
            while this < line1 and column < len(cells[this]) - 1:
                width = max(width, len(cells[this][column]) + padding)
                this += 1
            fmt(line0, this, [*widths, width])
            line0 = this
        write(line0, line1, widths)

    fmt(0, len(cells), [])
    return "\n".join(out) + ("\n" if trailing_newline else "")
