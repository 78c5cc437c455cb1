"""`check` over thousands of Services: each Service's report cut to what its output needs as soon as it is made.

An endpoints report holds every Pod's verdict, every endpoint row and the slices (≈ 45 kB in memory per Service;
10,000 Services were 450 MB held to the end for a table that prints one row and the findings of each). Here,
once a Service is checked, its endpoints report is replaced by its findings alone (what the table, wide, JUnit,
GitHub and Markdown outputs read of it); for `-o json` the Service's whole JSON is written first to a temporary
file, and the document is printed from it: the same bytes as `dump_json(report.to_json())`, with the memory of
one Service. YAML output keeps the reports (PyYAML writes the document in one piece).
"""

from __future__ import annotations

import tempfile
from typing import IO, Any, TypeVar

from svcctl.analysis.check import CheckFinding, CheckReport, ServiceCheck
from svcctl.analysis.policy import PolicyReport
from svcctl.findings import Verdict
from svcctl.model import JSON, Finding
from svcctl.render.jsonout import write_json

T = TypeVar("T")

_MARK = "\x00svcctl-spooled-services\x00"
_AT = "\n    "  # the indentation of one item of the report's "services" list (dump_json's indent=2, two levels)


class _Findings:
    """A check's report reduced to its findings (the rest was printed, or is not printed, already)."""

    __slots__ = ("findings",)

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings

    def to_json(self) -> JSON:
        raise RuntimeError("this report was spooled: print it with write_report_json")


class _Kept(ServiceCheck):
    """A checked Service as the spool keeps it. Nothing changes it once made, so its findings (which every status,
    count, headline and row of the output asks for again: ≈ 10 times per Service, each a list of new objects
    sorted) are listed once, and its verdict read once."""

    @property
    def findings(self) -> list[CheckFinding]:
        got: list[CheckFinding] | None = self.__dict__.get("_found")
        if got is None:
            got = self.__dict__["_found"] = super().findings
        return list(got)

    @property
    def verdict(self) -> Verdict:
        got: Verdict | None = self.__dict__.get("_verdict")
        if got is None:
            got = self.__dict__["_verdict"] = super().verdict
        return got


class ReportSpool:
    """Where `run_attempt` hands each checked Service (see the module)."""

    def __init__(self, output: str) -> None:
        self.output = output
        self._file: IO[bytes] | None = None
        self._where: dict[int, tuple[int, int]] = {}  # id(the compact ServiceCheck) -> (offset, length) in _file
        self._kept: list[ServiceCheck] = []  # the compact checks, alive while the spool is (their ids are keys)
        self._values: dict[Any, Any] = {}  # see _same

    @property
    def keeps_reports(self) -> bool:
        return self.output == "yaml"

    def add(self, sc: ServiceCheck) -> ServiceCheck:
        """The ServiceCheck to keep in place of `sc`."""
        if self.keeps_reports or sc.endpoints is None:
            return sc
        offset = length = 0
        if self.output == "json":
            if self._file is None:
                self._file = tempfile.TemporaryFile()  # noqa: SIM115 (as long as the report; deleted when closed)
            parts: list[str] = []
            write_json(sc.to_json(), parts.append, _AT)
            data = "".join(parts).encode()
            offset = self._file.seek(0, 2)
            length = self._file.write(data)
        for f in sc.endpoints.findings:
            f.where = self._same(f.where)
        policy = sc.policy
        if isinstance(policy, PolicyReport):
            policy.reach, policy.notes = self._same(policy.reach), self._same(policy.notes)
            for f in policy.findings:
                f.where = self._same(f.where)
        compact = _Kept(sc.namespace, sc.name, _Findings(list(sc.endpoints.findings)), sc.dns, sc.drift,
                               policy, sc.extra, self._same(sc.skipped), self._same(sc.counts), sc.seconds)
        if self.output == "json":
            self._where[id(compact)] = (offset, length)
            self._kept.append(compact)
        return compact

    def _same(self, v: T) -> T:
        """One object for equal values the kept checks repeat from Service to Service (each policy's reach by
        namespace, the counts, the skipped checks, a finding's `where`): nothing changes them once a check is
        made, and 10,000 Services' copies were ≈ 15 MB."""
        # by type too: 1, 1.0 and True are equal keys, but print differently
        if isinstance(v, dict):
            key: Any = ("d", *((k, type(x), x) for k, x in v.items()))
        elif isinstance(v, list):
            key = ("l", *((type(x), x) for x in v))
        else:
            key = (type(v), v)
        try:
            return self._values.setdefault(key, v)  # type: ignore[no-any-return]
        except TypeError:  # an unhashable value inside: kept as it is
            return v

    def spooled(self, sc: ServiceCheck) -> bool:
        return id(sc) in self._where

    def read(self, sc: ServiceCheck) -> str:
        assert self._file is not None
        offset, length = self._where[id(sc)]
        self._file.seek(offset)
        return self._file.read(length).decode()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def write_report_json(report: CheckReport, spool: ReportSpool, write: Any) -> None:
    """`dump_json(report.to_json())`, each spooled Service's JSON copied from the spool in the report's order."""
    from svcctl.render.console import dump_json

    if not report.services:
        write(dump_json(report.to_json()))
        return
    head, tail = dump_json(report.to_json(services=[_MARK])).split(_json_str(_MARK), 1)
    write(head)
    for i, s in enumerate(report.services):
        if i:
            write("," + _AT)
        if spool.spooled(s):
            write(spool.read(s))
        else:
            parts: list[str] = []
            write_json(s.to_json(), parts.append, _AT)
            write("".join(parts))
    write(tail)


def _json_str(s: str) -> str:
    from json.encoder import encode_basestring_ascii

    return str(encode_basestring_ascii(s))
