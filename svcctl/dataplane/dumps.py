"""The raw input of the dataplane: node command output by key, each with where it came from.

Below the sources (which fill it from files, a netns, a snapshot or kube-proxy exec) and the mode registry
(which names the keys and parses them), so neither needs the other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from svcctl.lazydc import dataclass, field


@dataclass
class NodeDumps:
    """Text of the node commands, keyed like the mode registry's dumps (`svcctl.dataplane.modes`)."""

    node: str
    texts: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    mode: str | None = None  # the dataplane the source knows it read (an agent Pod's), when the dumps cannot say
    # dumps cut to one Service while streaming their file (sources/scoped.py): key -> the note saying so
    streamed: dict[str, str] = field(default_factory=dict)
    # reads the same dumps whole (when a cut one does not parse, the whole one says where it is broken)
    reread: Callable[[], NodeDumps] | None = field(default=None, repr=False, compare=False)
    # files read as pastes (svcctl.paste.Pasted): their sections and skipped lines, and those as sentences
    readings: list[Any] = field(default_factory=list)
    reading_notes: list[str] = field(default_factory=list)
    # the caller needs nothing of the entries but their JSON (whole-dump `rules -o json` without cluster data): a
    # reader may leave them in the text for the writer (`NodeRules.deferred`) instead of making the model
    entries_as_text: bool = False
    # dumps checked as they were streamed from their file and left there, for that writer (ipvs_plain.plain_file:
    # key -> its PlainTable); the key's text is then only the file's head, for the mode detection
    in_file: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        """The key's text; a dump left in its file is read whole first (a reader that wants its text)."""
        if key in self.in_file:
            path = self.in_file.pop(key).path
            with open(path, encoding="utf-8", errors="replace") as fh:
                self.texts[key] = fh.read()
        return self.texts.get(key)

    def __bool__(self) -> bool:
        return bool(self.texts)
