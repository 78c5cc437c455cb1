"""Exit statuses and the errors that map onto them.

The split follows httpie: "problems found" (1) is a result, not a failure of the tool;
2 and 3 tell a CI step that the answer could not be had at all.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    OK = 0  # nothing wrong found
    PROBLEMS = 1  # the check ran and found problems
    USAGE = 2  # bad flags, unreadable or malformed input
    UNREACHABLE = 3  # could not reach or read the cluster or node (unreachable, 401/403, timeout)
    INTERNAL = 4  # a bug in svcctl (the traceback with -v)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class SvcctlError(Exception):
    """An error with a one-line message, a hint, and the exit status it maps to."""

    status: ExitStatus = ExitStatus.USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(SvcctlError):
    """A file, flag value or dump svcctl cannot use (exit 2)."""

    status = ExitStatus.USAGE

    def __init__(self, message: str, hint: str | None = None, *, source: str | None = None,
                 line: int | None = None) -> None:
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(where + message, hint)
        self.source = source
        self.line = line


class NotFoundError(SvcctlError):
    """The object asked about does not exist (a usage error: the user named it)."""

    status = ExitStatus.USAGE


class ClusterError(SvcctlError):
    """The cluster or node could not be reached or read (exit 3)."""

    status = ExitStatus.UNREACHABLE


class ForbiddenError(ClusterError):
    """RBAC refused a read; callers may degrade instead of failing."""

    def __init__(self, message: str, hint: str | None = None, *, resource: str = "") -> None:
        super().__init__(message, hint)
        self.resource = resource
