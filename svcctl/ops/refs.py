"""Service references as the user types them. Its own module so that `endpoints` reads one without importing
the check operation (and the analysis behind it) before its first request: an unreachable server fails sooner."""

from __future__ import annotations

from svcctl.errors import InputError


def split_ref(ref: str) -> tuple[str | None, str]:
    """`name` or `ns/name` (also `svc/name`, `service/name` as kubectl writes them); None: no namespace given."""
    parts = ref.split("/")
    if len(parts) == 2 and parts[0] in ("svc", "service", "services"):
        parts = [parts[1]]
    if len(parts) == 1 and parts[0]:
        return None, parts[0]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise InputError(f"cannot read Service {ref!r}", hint="give NAME or NAMESPACE/NAME")
