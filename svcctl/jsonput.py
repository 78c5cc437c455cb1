"""The JSON document type and `put`, apart from the model: the dataplane's entries write their JSON with `put`,
and a one-Service `rules` read should not pay for building the API model's dataclasses (a tenth of its
start-up) to get a four-line function."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


def put(out: JSON, **fields: Any) -> JSON:
    """Add each field that says something to a JSON document: None and empty strings and collections are left
    out, 0 and False are kept (pass `flag or None` for a flag written only when set). Returns `out`."""
    for key, value in fields.items():
        if value is None or (isinstance(value, (str, list, dict, set, tuple)) and not value):
            continue
        out[key] = value
    return out
