"""The test tree's one rule that code relies on: test file names are unique across the groups (conftest.py puts
every group on sys.path, so `from test_collect import …` finds the one file of that name)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_test_file_names_are_unique_across_groups() -> None:
    names = Counter(p.name for p in HERE.rglob("test_*.py") if "lab" not in p.relative_to(HERE).parts)
    assert len(names) > 50
    assert [n for n, c in names.items() if c > 1] == []
