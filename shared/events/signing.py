"""Envelopes are signed by their producer (HMAC-SHA256) and checked by every consumer, so an
event written into Redis by anyone else is refused (and dead-lettered, where it is seen)."""

from __future__ import annotations

import hashlib
import hmac
import json


def _canonical(envelope: dict) -> bytes:
    """The bytes a signature covers: the envelope without its signature, keys sorted."""
    unsigned = {k: v for k, v in envelope.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), default=str).encode()


def _signature(canonical: bytes, key: str) -> str:
    return hmac.new(key.encode(), canonical, hashlib.sha256).hexdigest()


def sign(envelope: dict, key: str) -> str:
    return _signature(_canonical(envelope), key)


def signed_json(envelope: dict, key: str) -> str:
    """The envelope with its signature, as JSON text, encoding it once: the signed bytes with
    the signature added as a last key."""
    canonical = _canonical(envelope)
    return f'{canonical[:-1].decode()},"signature":"{_signature(canonical, key)}"}}'


def signed_by(envelope: dict, keys: tuple[str, ...]) -> bool:
    """Whether any of `keys` (the current one first, then those being rotated out) signed it."""
    signature = envelope.get("signature")
    if not isinstance(signature, str):
        return False
    return any(hmac.compare_digest(sign(envelope, key), signature) for key in keys)


def derived_key(secret: str) -> str:
    """A signing key derived from the HS256 secret, where no KUBE_EVENT_SIGNING_KEYS is set
    (a different key from the secret itself: tokens and events never share one)."""
    return hmac.new(secret.encode(), b"kube event signing", hashlib.sha256).hexdigest()
