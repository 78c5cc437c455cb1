"""What the nftables reader's fast walk did, for the tests that hold it equal to the general path: without this a
fast-vs-general comparison could be comparing the general path with itself."""

from __future__ import annotations

from typing import Any

import pytest

from svcctl.dataplane import nftables


def watch_fast_walks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """From now on (for this test), each service chain the fast walk is asked for appends whether it walked it."""
    walked: list[bool] = []
    real = nftables._Interp._fast_walk

    def spy(self: nftables._Interp, *args: Any) -> bool:
        walked.append(real(self, *args))
        return walked[-1]

    monkeypatch.setattr(nftables._Interp, "_fast_walk", spy)
    return walked
