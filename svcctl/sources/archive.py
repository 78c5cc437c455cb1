"""The guards every archive reader applies to a member before reading it (tarballs, bugtool / Retina zips):
no path outside the archive, no links, no member or total past its limit (a gzip bomb costs a bounded read)."""

from __future__ import annotations

from pathlib import PurePosixPath

from svcctl.errors import InputError


def member_path(name: str, *, link: bool, source: str) -> PurePosixPath:
    """The member's path, refused when it is absolute, climbs out (`..`) or is a link."""
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts:
        raise InputError(f"refusing archive member with unsafe path {name!r}", source=source)
    if link:
        raise InputError(f"refusing archive member {name!r}: links are not allowed", source=source)
    return pure


def count_member(name: str, size: int, total: int, *, source: str, max_member: int, max_total: int) -> int:
    """The uncompressed total after this member, refused when the member or the total is too large."""
    if size > max_member:
        raise InputError(f"refusing archive member {name!r}: {size} bytes is too large", source=source)
    total += size
    if total > max_total:
        raise InputError("refusing archive: uncompressed size too large", source=source)
    return total
