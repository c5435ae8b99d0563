"""Input validation every service shares: the base schema and marshmallow's errors as a list."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import marshmallow as ma

# PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded as UTF-8.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def unstorable_text(value: Any) -> dict | list | None:
    """Where `value` holds text PostgreSQL cannot store, as marshmallow error messages."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            return ["Must not contain NUL characters or unpaired surrogates."]
        return None
    if isinstance(value, Mapping):
        found = {}
        for key in value:
            items = value.getlist(key) if hasattr(value, "getlist") else [value[key]]
            problems = [p for p in (unstorable_text(item) for item in items) if p]
            if _UNSTORABLE.search(str(key)):
                problems.append(["The name of this field holds characters that are not allowed."])
            if problems:
                found[_UNSTORABLE.sub("\N{REPLACEMENT CHARACTER}", str(key))] = problems[0]
        return found or None
    if isinstance(value, list | tuple):
        found = {i: p for i, p in ((i, unstorable_text(v)) for i, v in enumerate(value)) if p}
        return found or None
    return None


class Schema(ma.Schema):
    """The base of every input schema: text that cannot be stored is a field error, not a 500."""

    @ma.pre_load
    def _reject_unstorable_text(self, data, **kwargs):
        problems = unstorable_text(data)
        if problems:
            raise ma.ValidationError(problems)
        return data


def flatten_messages(messages: Any, prefix: str = "") -> list[dict]:
    """Turn marshmallow's nested error dict into a flat list of {field, message}."""
    out: list[dict] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            # webargs nests errors under the location ("json", "query", "files").
            if not prefix and key in ("json", "query", "form", "files", "headers", "view_args"):
                out.extend(flatten_messages(value, ""))
                continue
            name = f"{prefix}.{key}" if prefix else str(key)
            out.extend(flatten_messages(value, name))
    elif isinstance(messages, list | tuple) and all(isinstance(m, str) for m in messages):
        for message in messages:
            out.append({"field": prefix or "_schema", "message": message})
    elif isinstance(messages, list | tuple):
        for index, value in enumerate(messages):
            out.extend(flatten_messages(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out.append({"field": prefix or "_schema", "message": str(messages)})
    return out
