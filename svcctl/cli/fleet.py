"""`--all-nodes` / `--parallel N` for `trace` and `check`: the shared options and the glue (read → judge → render).

Not a command of its own (it is not in COMMANDS): `trace` calls `run_fleet` with the Service it resolved (a
FleetReport); `check` calls `fleet_rule_sets` for every node's rules and judges them as it judges one node's."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    pass


F = TypeVar("F", bound=Callable[..., Any])


def fleet_options(f: F) -> F:
    f = click.option("--parallel", type=click.IntRange(1, 256), default=8, show_default=True, metavar="N",
                     help="With --all-nodes: read this many nodes at a time.")(f)
    f = click.option("--all-nodes", is_flag=True, default=False,
                     help="Read every node's rules through its kube-proxy Pod and report which nodes drift from "
                          "the API (live cluster; exit 1 when any does).")(f)
    return f
