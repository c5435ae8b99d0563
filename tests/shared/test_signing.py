"""Event signatures (pure logic)."""

from __future__ import annotations

import pytest

from shared.errors import PermanentError
from shared.events.envelope import InvalidEvent, new_envelope, validate_envelope
from shared.events.signing import derived_key, sign, signed_by

from support import group_snapshot


def _signed(key: str) -> dict:
    envelope = new_envelope(
        "group.updated",
        group_snapshot("0b5f6c8e-3c52-4c1a-9f0e-8e1e2b0c0d11", 1),
        source="producer",
        correlation_id=None,
    )
    envelope["signature"] = sign(envelope, key)
    return envelope


def test_a_signed_envelope_validates_with_the_current_or_a_rotated_out_key():
    envelope = _signed("old-key")
    assert signed_by(envelope, ("old-key",))
    assert signed_by(envelope, ("new-key", "old-key"))
    assert validate_envelope(envelope, ("new-key", "old-key"))["group"]["version"] == 1


def test_a_changed_or_unsigned_envelope_is_a_permanent_error():
    envelope = _signed("key")
    tampered = {**envelope, "source": "someone-else"}
    with pytest.raises(InvalidEvent, match="signature"):
        validate_envelope(tampered, ("key",))
    unsigned = {k: v for k, v in envelope.items() if k != "signature"}
    with pytest.raises(PermanentError):
        validate_envelope(unsigned, ("key",))


def test_the_derived_key_is_not_the_secret_itself():
    assert derived_key("s" * 40) != "s" * 40 and len(derived_key("s" * 40)) == 64
