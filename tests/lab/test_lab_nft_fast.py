"""The nftables reader's whole-listing fast paths against the real kube-proxy's nftables ruleset (the lab's world
of tests/lab/test_lab_proxy.py, in nftables mode)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .figures import FIGURES
from .test_lab_proxy import (
    RunCli,
    World,
    _wait_programmed,
    world,  # noqa: F401  (the fixture)
)


@pytest.mark.parametrize("world", ["nftables"], indirect=True)
def test_the_nft_fast_paths_read_the_real_ruleset_as_the_general_reader(world: World, run_cli: RunCli,  # noqa: F811
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The real kube-proxy's `nft list ruleset` gives the same rules with the nftables reader's whole-listing fast
    paths on as with the general reader and walk alone (tests/dataplane/test_nftables_fast.py holds the same on the
    generator's listings), and the fast paths do read it: the fast reader takes the listing and walks real service
    chains from their text."""
    from svcctl.dataplane import nftables

    _wait_programmed(world, run_cli)
    text = world.lab.node_exec(["nft", "list", "ruleset"]).stdout
    walked: list[bool] = []
    real = nftables._Interp._fast_walk

    def spy(self: nftables._Interp, *args: Any) -> bool:
        walked.append(real(self, *args))
        return walked[-1]

    monkeypatch.setattr(nftables._Interp, "_fast_walk", spy)
    models = []
    for fast in (False, True):
        monkeypatch.setattr(nftables, "FAST", fast)
        models.append(json.dumps(nftables.parse_nft(text, "node").to_json(), default=str))
    assert models[0] == models[1]
    assert f"{world.ns}/" in models[1]
    assert nftables._read_listing_fast(text) is not None
    assert sum(walked) > 0, walked
    FIGURES.append(f"nftables fast walk: {sum(walked)} of {len(walked)} real chains asked walked from their text")
