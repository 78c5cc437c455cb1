"""The one terminal module: where data goes (stdout) and where talk goes (stderr), and whether to colour."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

from svcctl.lazydc import dataclass, field

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from svcctl.model import Finding


def color_wanted(flag: bool | None, stream: Any) -> bool:
    if flag is not None:
        return flag
    if "NO_COLOR" in os.environ:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Terminal:
    """stdout for data, stderr for status; rich with markup and highlighting off so data prints as it is."""

    def __init__(self, color: bool | None = None, verbose: int = 0, *, stdout: IO[str] | None = None,
                 stderr: IO[str] | None = None) -> None:
        """`stdout` / `stderr`: the streams to write to (default: the process's, looked up when used), so a
        test can hand in a pseudo-terminal or a buffer."""
        self._stdout, self._stderr = stdout, stderr
        self.color = color_wanted(color, self.stdout)
        self.err_color = color_wanted(color, self.stderr)
        self.verbose = verbose
        self._out: Console | None = None
        self._err: Console | None = None

    @property
    def stdout(self) -> IO[str]:
        return self._stdout if self._stdout is not None else sys.stdout

    @property
    def stderr(self) -> IO[str]:
        return self._stderr if self._stderr is not None else sys.stderr

    @property
    def is_tty(self) -> bool:
        isatty = getattr(self.stdout, "isatty", None)
        return bool(isatty and isatty())

    @property
    def out(self) -> Console:
        if self._out is None:
            from rich.console import Console  # only when something is drawn: -o json never imports rich

            self._out = Console(file=self.stdout, markup=False, highlight=False, emoji=False,
                                no_color=not self.color, force_terminal=self.color or None,
                                soft_wrap=False)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            # one message, one line: CI logs and `grep` must not see status lines hard-wrapped at 80 columns
            from rich.console import Console

            self._err = Console(file=self.stderr, markup=False, highlight=False, emoji=False,
                                no_color=not self.err_color, force_terminal=self.err_color or None, soft_wrap=True)
        return self._err

    def print(self, obj: RenderableType = "") -> None:
        self.out.print(obj)

    def echo(self, text: str) -> None:
        """Plain text to stdout, untouched by rich (for piped tables)."""
        self.stdout.write(text if text.endswith("\n") else text + "\n")

    def echo_err(self, text: str) -> None:
        """One plain line to stderr, untouched by rich (never wrapped, never styled)."""
        self.stderr.write(text if text.endswith("\n") else text + "\n")

    def status(self, text: str) -> None:
        self.err.print(text, style="dim" if self.err_color else None)

    def warn(self, text: str) -> None:
        self.err.print("warning: " + text, style="yellow" if self.err_color else None)

    def debug(self, text: str) -> None:
        if self.verbose:
            self.err.print("debug: " + text, style="dim" if self.err_color else None)


class OutputOptions(Protocol):
    """What render needs of the command line, and all it sees: the format, headers, the terminal."""

    @property
    def output(self) -> str: ...

    @property
    def no_headers(self) -> bool: ...

    @property
    def terminal(self) -> Terminal: ...


@dataclass
class Output:
    """Output options as a value (the CLI's App is one too): for tests and for callers without a command line."""

    output: str = "table"
    no_headers: bool = False
    terminal: Terminal = field(default_factory=Terminal)


Form = Literal["json", "yaml", "rich", "plain"]


def form(opts: OutputOptions) -> Form:
    """The one choice of how to print: a JSON or YAML document; rich on a terminal (or when colour is asked
    for); plain kubectl-like columns when piped."""
    if opts.output in ("json", "yaml"):
        return "json" if opts.output == "json" else "yaml"
    term = opts.terminal
    return "rich" if term.is_tty or term.color else "plain"


def finding_detail_lines(f: Finding, indent: str, *, where: bool = False) -> list[str]:
    """The evidence and hint (and, when asked, where it is decided) under a finding in every plain listing."""
    out = [f"{indent}evidence: {f.evidence}"] if f.evidence else []
    return out + hint_lines(f, indent, where=where)


def hint_lines(f: Finding, indent: str, *, where: bool = False) -> list[str]:
    """A finding's hint (and, when asked, the rule that decides it): the lines after its evidence."""
    out = [f"{indent}hint: {f.hint}"] if f.hint else []
    if where and f.where:
        out.append(f"{indent}decided by: {f.where}")
    return out


def dump_json(obj: Any) -> str:
    from svcctl.render.jsonout import write_json

    parts: list[str] = []
    write_json(obj, parts.append)
    return "".join(parts) + "\n"


def dump_yaml(obj: Any) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(obj, Dumper=dumper, sort_keys=False, default_flow_style=False))


def emit_document(obj: Any, output: str) -> None:
    """JSON or YAML to stdout and nothing else."""
    if output != "json":
        sys.stdout.write(dump_yaml(obj))
        return
    # the same text as dump_json, written in batches: a whole 10,000-Service dump's JSON is never one string
    from svcctl.render.jsonout import write_json

    write_json(obj, sys.stdout.write)
    sys.stdout.write("\n")


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], no_headers: bool = False) -> str:
    """kubectl-like plain columns for pipes: no borders, two spaces between columns."""
    from svcctl.render.plain import plain_columns

    fast = plain_columns(None if no_headers else [h.upper() for h in headers], rows)
    if fast is not None:  # tabulate's own text, without its per-cell work (render/plain.py)
        return fast
    from tabulate import tabulate

    if no_headers:
        return str(tabulate([list(r) for r in rows], tablefmt="plain", disable_numparse=True))
    return str(tabulate([list(r) for r in rows], headers=[h.upper() for h in headers], tablefmt="plain",
                        disable_numparse=True))
