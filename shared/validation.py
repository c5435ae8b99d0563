"""Input validation every service shares: the base schema, closed lists of choices, PATCH
bodies, and marshmallow's errors as a list."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
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


class Choice(ma.fields.String):
    """A string from a closed list, named: the OpenAPI documents show it once, as the enum
    component `name`, wherever the concept appears (request, response or query)."""

    def __init__(self, name: str, choices: Iterable[str], **kwargs):
        self.choices = tuple(choices)
        validators = [ma.validate.OneOf(self.choices), *_as_list(kwargs.pop("validate", None))]
        super().__init__(validate=validators, **kwargs)
        self.component = name


def _as_list(validate) -> list:
    if validate is None:
        return []
    return list(validate) if isinstance(validate, list | tuple) else [validate]


def patch_of(schema: type[ma.Schema], *, not_null: Iterable[str] = ()) -> type[ma.Schema]:
    """The PATCH body of `schema`: every field optional and without a default, so a client
    sends only what it changes and a field left out stays as it is. `not_null` names fields
    whose null means "take the default" on creation but cannot be stored on a change."""
    fields: dict[str, Any] = {}
    for name, field in schema._declared_fields.items():
        field = copy.deepcopy(field)
        field.required = False
        field.load_default = ma.missing
        if name in not_null:
            field.allow_none = False
        fields[name] = field
    return type(f"{schema.__name__}Patch", (schema,), fields)


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
