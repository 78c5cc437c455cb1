"""Label selectors in the API's syntax: what a Service's selector matches. Pure (the model layer), so the
analysis and the sources filter Pods the same way, the way the apiserver does."""

from __future__ import annotations


def selector_string(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def parse_selector(text: str | None) -> list[tuple[str, str, str | None]]:
    """Parse `a=b,c!=d,e,!f` into (key, op, value) with op in = != exists !exists.

    Enough of the API's syntax for snapshots to filter the way the apiserver does (no set-based `in`)."""
    out: list[tuple[str, str, str | None]] = []
    if not text:
        return out
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "!=" in part:
            k, v = part.split("!=", 1)
            out.append((k.strip(), "!=", v.strip()))
        elif "==" in part:
            k, v = part.split("==", 1)
            out.append((k.strip(), "=", v.strip()))
        elif "=" in part:
            k, v = part.split("=", 1)
            out.append((k.strip(), "=", v.strip()))
        elif part.startswith("!"):
            out.append((part[1:].strip(), "!exists", None))
        else:
            out.append((part, "exists", None))
    return out


def labels_match(labels: dict[str, str], selector: list[tuple[str, str, str | None]]) -> bool:
    for key, op, value in selector:
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!exists" and key in labels:
            return False
    return True
