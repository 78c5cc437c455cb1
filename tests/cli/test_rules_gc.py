"""`svcctl rules` keeps the cyclic collector paused from the parse through the writing (its passes over a whole
dump's objects while they were written cost 0.07 s of 0.7 at 10,000 IPVS Services), and gives it back as it was,
also when the command fails."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from svcctl.cli.main import run
from svcctl.render import rules as render_rules_module

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "ipvs" / "full.txt"


def test_the_collector_is_paused_while_writing_and_resumed_after(capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    real = render_rules_module.render_rules

    def spy(app: Any, rules: Any) -> None:
        seen.append(gc.isenabled())
        real(app, rules)

    monkeypatch.setattr(render_rules_module, "render_rules", spy)
    assert gc.isenabled()
    assert run("svcctl", ["rules", "--ipvsadm", str(FIX), "-o", "json"]) == 0
    assert seen == [False]
    assert gc.isenabled()
    assert '"mode": "ipvs"' in capsys.readouterr().out


def test_a_failed_read_resumes_it_too(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("not a dump\n")
    assert run("svcctl", ["rules", "--ipvsadm", str(bad)]) == 2
    assert gc.isenabled()
    gc.disable()
    try:  # and a paused collector stays paused
        run("svcctl", ["rules", "--ipvsadm", str(FIX), "-o", "json"])
        assert not gc.isenabled()
    finally:
        gc.enable()
    capsys.readouterr()
