"""A dump file's text as `open(path, encoding="utf-8", errors="replace").read()` gives it, with fewer page faults.

That read holds the file's bytes and its decoded text side by side: a whole 10,000-Service nftables listing is
26 MB read into fresh (zeroed) memory, then decoded into 26 MB more. A regular file is decoded here straight from
a read-only mapping of the page cache instead (no copy of its bytes), and universal newlines are applied as the
text reader applies them (`\\r\\n` and a lone `\\r` become `\\n`). Anything else (a pipe, an empty or /proc
file, a mapping refused) is read the ordinary way. tests/sources/test_readfile.py holds the two equal.
"""

from __future__ import annotations

import mmap
import os
import stat

_SMALL = 1 << 20  # below a megabyte the mapping saves nothing worth a second way of reading


def read_text(path: str) -> str:
    """The file's text, decoded as UTF-8 with errors replaced, newlines universal (OSError as `open` raises)."""
    with open(path, "rb") as fh:
        try:
            st = os.fstat(fh.fileno())
        except OSError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode) and st.st_size >= _SMALL:
            try:
                mm = mmap.mmap(fh.fileno(), 0, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0),
                               prot=mmap.PROT_READ)
            except (OSError, ValueError):
                mm = None
            if mm is not None:
                try:
                    text = str(mm, "utf-8", "replace")
                finally:
                    mm.close()
                if "\r" in text:
                    text = text.replace("\r\n", "\n").replace("\r", "\n")
                return text
    with open(path, encoding="utf-8", errors="replace") as fh2:
        return fh2.read()
