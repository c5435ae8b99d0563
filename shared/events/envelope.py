"""The envelope every event travels in, and its validation against the type's contract."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime

import marshmallow as ma

from shared.errors import PermanentError
from shared.events.contracts import Contract, contract_for
from shared.events.signing import signed_by


class InvalidEvent(PermanentError):
    """An event whose envelope or payload breaks its contract; retrying will not help."""


def _described(text: str) -> dict:
    return {"description": text}


class EnvelopeSchema(ma.Schema):
    """What every event carries around its payload (the descriptions feed the catalogue)."""

    id = ma.fields.UUID(required=True, metadata=_described("the event's id; redeliveries keep it"))
    type = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=3, max=100),
        metadata=_described("the event type, e.g. `grant.stage_changed`"),
    )
    version = ma.fields.Integer(
        required=True,
        validate=ma.validate.Range(min=1),
        metadata=_described("the version of the type's contract"),
    )
    occurred_at = ma.fields.AwareDateTime(
        required=True, format="iso", metadata=_described("when it was recorded, UTC")
    )
    source = ma.fields.String(required=True, metadata=_described("the producing service"))
    correlation_id = ma.fields.String(
        required=True,
        allow_none=True,
        metadata=_described("the X-Request-ID of the request that caused it"),
    )
    payload = ma.fields.Dict(required=True, metadata=_described("the type's payload schema"))
    signature = ma.fields.String(
        required=True,
        validate=ma.validate.Length(equal=64),
        metadata=_described(
            "HMAC-SHA256 (hex) by the producer over the rest of the envelope, keys sorted"
        ),
    )


_envelope_schema = EnvelopeSchema()


@functools.cache
def _schema_of(contract: Contract) -> ma.Schema:
    """One schema instance per contract: building one costs more than checking a payload."""
    return contract.schema()


def checked_payload(event_type: str, payload: dict) -> dict:
    """The payload checked against its type's contract, JSON-ready; ValueError if it breaks it."""
    schema = _schema_of(contract_for(event_type))
    try:
        # Loading checks the contract; dumping the loaded data makes it JSON-ready.
        return schema.dump(schema.load(payload))
    except ma.ValidationError as exc:
        raise ValueError(f"{event_type} payload breaks its contract: {exc.messages}") from exc


def new_envelope(
    event_type: str,
    payload: dict,
    *,
    source: str,
    correlation_id: str | None,
    checked: bool = True,
) -> dict:
    """Build a JSON-ready envelope after checking the payload against its contract
    (`checked=False`: the caller has, and passes a JSON-ready payload)."""
    contract = contract_for(event_type)
    data = checked_payload(event_type, payload) if checked else payload
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "version": contract.version,
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": source,
        "correlation_id": correlation_id,
        "payload": data,
    }


def validate_envelope(data: object, keys: tuple[str, ...]) -> dict:
    """Check a received envelope, its producer's signature and its payload; return the
    loaded payload."""
    if not isinstance(data, dict):
        raise InvalidEvent("event is not a JSON object")
    errors = _envelope_schema.validate(data)
    if errors:
        raise InvalidEvent(f"invalid envelope: {errors}")
    if not signed_by(data, keys):
        raise InvalidEvent("the envelope's signature is not a producer's")
    try:
        contract = contract_for(data["type"])
    except KeyError as exc:
        raise InvalidEvent(f"unknown event type {data['type']!r}") from exc
    if data["version"] != contract.version:
        raise InvalidEvent(f"{data['type']} version {data['version']} is not {contract.version}")
    try:
        return _schema_of(contract).load(data["payload"])
    except ma.ValidationError as exc:
        raise InvalidEvent(f"invalid {data['type']} payload: {exc.messages}") from exc
