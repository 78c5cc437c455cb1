"""svcctl.lazyre.LazyPattern: the readers' module-level regexes are compiled on first use, and then behave as the
compiled pattern does (the same methods, bound to it, so a hoisted `match = P.match` costs nothing extra)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from svcctl.lazyre import LazyPattern

ROOT = Path(__file__).resolve().parent.parent.parent


def test_nothing_is_compiled_until_a_method_is_used() -> None:
    p = LazyPattern(r"(?P<a>x+)(y)", re.I)
    assert p.pattern == r"(?P<a>x+)(y)" and "match" not in vars(p)
    m = p.match("XXy")
    assert m is not None and m.group("a") == "XX"
    assert vars(p)["match"] == re.compile(r"(?P<a>x+)(y)", re.I).match  # the compiled pattern's own method
    assert p.groups == 2 and p.groupindex == {"a": 1} and p.flags & re.I


def test_a_hoisted_method_is_the_compiled_patterns() -> None:
    p = LazyPattern(rb" -[jg] (\S+)")
    find = p.findall  # before any use: the first attribute compiles
    assert find(b"-A X -j KUBE-SVC-1 -g Y") == [b"KUBE-SVC-1", b"Y"]
    assert find.__self__ is re.compile(rb" -[jg] (\S+)")  # type: ignore[attr-defined]


@pytest.mark.parametrize("method, args", [
    ("search", ("a1b22",)), ("fullmatch", ("22",)), ("sub", ("#", "a1b22")), ("subn", ("#", "a1b22")),
    ("split", ("a1b22",)), ("findall", ("a1b22",)),
])
def test_each_method_answers_as_re_does(method: str, args: tuple[str, ...]) -> None:
    lazy, real = LazyPattern(r"\d+"), re.compile(r"\d+")
    got, want = getattr(lazy, method)(*args), getattr(real, method)(*args)
    if isinstance(want, re.Match):
        assert got.span() == want.span()
    else:
        assert got == want
    assert [m.span() for m in LazyPattern(r"\d+").finditer("a1b22")] == [m.span() for m in real.finditer("a1b22")]


def test_an_unknown_attribute_is_an_attribute_error_and_compiles_nothing() -> None:
    p = LazyPattern("x")
    with pytest.raises(AttributeError):
        p.nosuch  # noqa: B018
    assert "match" not in vars(p)


def test_a_bad_pattern_fails_on_first_use_not_at_import() -> None:
    p = LazyPattern("(")
    with pytest.raises(re.error):
        p.match("(")


def test_importing_the_readers_compiles_none_of_their_patterns() -> None:
    """The point of it: a fresh interpreter that imports the nftables, IPVS and chain readers (and the trace
    analysis) has compiled none of their module-level patterns."""
    probe = ("import sys; import svcctl.dataplane.nftables, svcctl.dataplane.ipvs, svcctl.dataplane.modes.chains, "
             "svcctl.dataplane.replacement, svcctl.sources.scoped, svcctl.analysis.trace\n"
             "from svcctl.lazyre import LazyPattern\n"
             "mods = [m for n, m in sys.modules.items() if n.startswith('svcctl.')]\n"
             "lazy = [(m.__name__, k, v) for m in mods for k, v in vars(m).items() if isinstance(v, LazyPattern)]\n"
             "print(len(lazy), sorted(f'{m}.{k}' for m, k, v in lazy if 'match' in vars(v)))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    count, compiled = proc.stdout.split(" ", 1)
    assert int(count) >= 60, proc.stdout
    assert compiled.strip() == "[]"
