"""render/plain.py prints what tabulate's plain format prints, for every table it takes, and leaves the rest to
tabulate (the whole-dump `rules` table is 10,000 rows: tabulate's per-cell work was its slowest part)."""

from __future__ import annotations

import random

import pytest
from tabulate import tabulate

from svcctl.render.console import plain_table
from svcctl.render.plain import plain_columns

WORDS = ["", "-", "?", "a", "ns0/svc0:http", "ClusterIP", "10.96.0.1:80/TCP", "x y", "1/3 (33.3%)", "a" * 40,
         "NO ENDPOINTS", "0", "12", "3.5", "1e3", "True", "None", "-1", "[::1]:80/TCP"]
ODD = [" lead", "trail ", "two\nlines", "tab\there", "\x1b[31mred\x1b[0m", "wide 日本", "café", "\t", " "]


def _tabulate(headers: list[str], rows: list[list[str]], no_headers: bool) -> str:
    if no_headers:
        return str(tabulate(rows, tablefmt="plain", disable_numparse=True))
    return str(tabulate(rows, headers=[h.upper() for h in headers], tablefmt="plain", disable_numparse=True))


@pytest.mark.parametrize("seed", range(60))
def test_simple_tables_print_as_tabulate_prints_them(seed: int) -> None:
    rnd = random.Random(seed)
    ncols = rnd.randint(1, 7)
    headers = [rnd.choice(["service port", "kind", "a", "NOTES", "x"]) for _ in range(ncols)]
    rows = [[rnd.choice(WORDS) for _ in range(ncols)] for _ in range(rnd.randint(1, 12))]
    for no_headers in (False, True):
        fast = plain_columns(None if no_headers else [h.upper() for h in headers], rows)
        assert fast is not None
        assert fast == _tabulate(headers, rows, no_headers)


@pytest.mark.parametrize("odd", ODD)
def test_other_cells_are_left_to_tabulate(odd: str) -> None:
    rows = [["a", odd, "c"], ["dd", "e", "f"]]
    assert plain_columns(["A", "B", "C"], rows) is None
    assert plain_table(["a", "b", "c"], rows) == _tabulate(["a", "b", "c"], rows, False)


def test_non_strings_and_no_rows_are_left_to_tabulate() -> None:
    assert plain_columns(["A"], [[1]]) is None
    assert plain_columns(["A"], []) is None
    assert plain_columns(["A", "B"], [["x"]]) is None
    assert plain_table(["a", "b"], []) == _tabulate(["a", "b"], [], False)
