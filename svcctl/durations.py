"""kubectl's durations (`--request-timeout`, `check --wait`). Its own module at the bottom of the layers, so the
global `--request-timeout` option does not import the check analysis (and the API model) on every command."""

from __future__ import annotations

import re

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """`90`, `90s`, `5m`, `1m30s`, `1h`, `500ms` → seconds. ValueError when unreadable."""
    t = text.strip().lower()
    if not t:
        raise ValueError("empty duration")
    try:
        value = float(t)
    except ValueError:
        pos = 0
        value = 0.0
        for m in _DURATION.finditer(t):
            if m.start() != pos:
                raise ValueError(f"cannot read duration {text!r}") from None
            value += float(m.group(1)) * _UNIT[m.group(2)]
            pos = m.end()
        if pos != len(t):
            raise ValueError(f"cannot read duration {text!r}") from None
    if value < 0:
        raise ValueError(f"negative duration {text!r}")
    return value
