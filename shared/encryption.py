"""Personal data at rest: AES-256-GCM per value under a ring of data keys, and a keyed hash
(HMAC-SHA256 under a separate lookup key) to find and compare values without decrypting.

A stored value is `[n][key id, n ASCII bytes][nonce, 12 bytes][ciphertext + 16-byte tag]`:
the key id tells which key of the ring decrypts it, so keys can rotate while old values
stay readable. Each value is bound to its purpose (e.g. `members.nik`) as associated data,
so a value copied into another column does not decrypt there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
DATA_KEYS_HELP = (
    "KUBE_DATA_KEYS (or KUBE_DATA_KEYS_FILE): comma-separated id:base64 keys of 32 bytes, "
    "newest first, e.g. 2026a:$(openssl rand -base64 32)"
)
LOOKUP_KEY_HELP = (
    "KUBE_LOOKUP_KEY (or KUBE_LOOKUP_KEY_FILE): a base64 key of 32 bytes, "
    "e.g. $(openssl rand -base64 32)"
)


class DataKeyError(RuntimeError):
    """A data or lookup key that is missing, malformed, unknown or wrong."""


def _decode_key(text: str, variable: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise DataKeyError(f"{variable}: a key is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise DataKeyError(f"{variable}: a key must be {KEY_BYTES} bytes, not {len(key)}")
    return key


def generate_key() -> str:
    """A new random key, base64, for KUBE_DATA_KEYS or KUBE_LOOKUP_KEY."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


@dataclass(frozen=True)
class DataKeys:
    """The data keys (newest first: it encrypts, all decrypt) and the lookup key."""

    keys: tuple[tuple[str, bytes], ...]
    lookup_key: bytes
    _ciphers: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, data_keys: tuple[str, ...] | str | None, lookup_key: str | None) -> DataKeys:
        """Keys from their settings (`id:base64` entries; a base64 lookup key), or a
        DataKeyError naming the variable that is missing or wrong."""
        if isinstance(data_keys, str):
            data_keys = tuple(k for k in data_keys.split(",") if k.strip())
        if not data_keys:
            raise DataKeyError(f"No data keys: set {DATA_KEYS_HELP}.")
        if not lookup_key:
            raise DataKeyError(f"No lookup key: set {LOOKUP_KEY_HELP}.")
        ring: list[tuple[str, bytes]] = []
        for entry in data_keys:
            key_id, sep, text = entry.strip().partition(":")
            if not sep or not _KEY_ID.fullmatch(key_id):
                raise DataKeyError(
                    "KUBE_DATA_KEYS: each entry is id:base64key, the id 1 to 32 letters, "
                    "digits, '.', '_' or '-'"
                )
            if key_id in dict(ring):
                raise DataKeyError(f"KUBE_DATA_KEYS: key id {key_id!r} is listed twice")
            ring.append((key_id, _decode_key(text, "KUBE_DATA_KEYS")))
        lookup = _decode_key(lookup_key, "KUBE_LOOKUP_KEY")
        if lookup in dict(ring).values():
            raise DataKeyError("KUBE_LOOKUP_KEY must differ from every data key")
        return cls(tuple(ring), lookup)

    @classmethod
    def from_settings(cls, settings) -> DataKeys:
        return cls.parse(settings.data_keys, settings.lookup_key)

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    @property
    def current_prefix(self) -> bytes:
        """The first bytes of every value encrypted under the newest key."""
        return _header(self.current_id)

    def _cipher(self, key_id: str) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            key = dict(self.keys).get(key_id)
            if key is None:
                raise DataKeyError(
                    f"A value is encrypted under data key {key_id!r}, which is not in "
                    "KUBE_DATA_KEYS; add it back (after the newest) to read it."
                )
            cipher = self._ciphers[key_id] = AESGCM(key)
        return cipher

    def encrypt(self, plain: bytes, *, purpose: bytes) -> bytes:
        """Encrypt under the newest key with a fresh random nonce."""
        nonce = os.urandom(NONCE_BYTES)
        cipher = self._cipher(self.current_id)
        return self.current_prefix + nonce + cipher.encrypt(nonce, plain, purpose)

    def decrypt(self, value: bytes, *, purpose: bytes) -> bytes:
        """Decrypt a value under whichever key of the ring it names."""
        value = bytes(value)
        length = value[0] if value else 0
        key_id = value[1 : 1 + length].decode("ascii", "replace")
        body = value[1 + length :]
        if not length or len(body) < NONCE_BYTES + 16:
            raise DataKeyError(f"A {purpose.decode()} value is not an encrypted value.")
        cipher = self._cipher(key_id)
        try:
            return cipher.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], purpose)
        except InvalidTag:
            raise DataKeyError(
                f"A {purpose.decode()} value does not decrypt under data key {key_id!r}: "
                "the key listed under that id is not the one it was encrypted with, or the "
                "value was altered."
            ) from None

    def is_current(self, value: bytes) -> bool:
        return bytes(value[: len(self.current_prefix)]) == self.current_prefix

    def reencrypt(self, value: bytes, *, purpose: bytes) -> bytes:
        """The value under the newest key (unchanged if it already is)."""
        if self.is_current(value):
            return bytes(value)
        return self.encrypt(self.decrypt(value, purpose=purpose), purpose=purpose)

    def encrypt_many(self, plains: list[str], *, purpose: bytes) -> list[bytes]:
        """Texts encrypted as encrypt_text does, their nonces drawn from one read of urandom."""
        cipher = self._cipher(self.current_id)
        prefix = self.current_prefix
        nonces = os.urandom(NONCE_BYTES * len(plains))
        return [
            prefix + nonce + cipher.encrypt(nonce, plain.encode(), purpose)
            for nonce, plain in zip(
                (nonces[i : i + NONCE_BYTES] for i in range(0, len(nonces), NONCE_BYTES)),
                plains,
                strict=True,
            )
        ]

    def encrypt_text(self, plain: str, *, purpose: bytes) -> bytes:
        return self.encrypt(plain.encode(), purpose=purpose)

    def decrypt_text(self, value: bytes, *, purpose: bytes) -> str:
        return self.decrypt(value, purpose=purpose).decode()

    def lookup_hash(self, plain: str, *, purpose: bytes) -> bytes:
        """The keyed hash that finds a value: equal values, equal hashes; without the lookup
        key no hash can be computed, so the hashes cannot be guessed by enumeration."""
        # The key's HMAC state is computed once per purpose and copied, not rebuilt per value.
        keyed = self._ciphers.get(("lookup", purpose))
        if keyed is None:
            keyed = self._ciphers[("lookup", purpose)] = hmac.new(
                self.lookup_key, purpose + b"\0", hashlib.sha256
            )
        hasher = keyed.copy()
        hasher.update(plain.encode())
        return hasher.digest()


def _header(key_id: str) -> bytes:
    encoded = key_id.encode("ascii")
    return bytes([len(encoded)]) + encoded


# The keys of this process, installed once at start-up by the service that needs them.
_installed: DataKeys | None = None


def use_data_keys(keys: DataKeys | None) -> None:
    """Make `keys` the ones this process encrypts, decrypts and hashes with."""
    global _installed
    _installed = keys


def data_keys() -> DataKeys:
    """This process's keys; a DataKeyError if none were installed."""
    if _installed is None:
        raise DataKeyError(
            f"No data keys in this process: set {DATA_KEYS_HELP}, and {LOOKUP_KEY_HELP}."
        )
    return _installed
