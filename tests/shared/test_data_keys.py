"""The key ring that encrypts personal data at rest, and its keyed lookup hash."""

from __future__ import annotations

import contextlib

import pytest

from shared.encryption import DataKeyError, DataKeys, data_keys, generate_key, use_data_keys

OLD = "2025a:" + generate_key()
NEW = "2026a:" + generate_key()
LOOKUP = generate_key()


def ring(*entries: str, lookup: str = LOOKUP) -> DataKeys:
    return DataKeys.parse(entries, lookup)


def test_a_value_round_trips_and_each_encryption_uses_a_fresh_nonce():
    keys = ring(NEW)
    first = keys.encrypt_text("6472015507900003", purpose=b"members.nik")
    second = keys.encrypt_text("6472015507900003", purpose=b"members.nik")
    assert first != second and b"6472015507900003" not in first
    assert first.startswith(b"\x052026a")  # key id length, key id, then nonce and ciphertext
    assert keys.decrypt_text(first, purpose=b"members.nik") == "6472015507900003"


def test_the_newest_key_encrypts_and_every_key_decrypts():
    old_value = ring(OLD).encrypt_text("6472015507900003", purpose=b"members.nik")
    keys = ring(NEW, OLD)
    assert not keys.is_current(old_value)
    assert keys.decrypt_text(old_value, purpose=b"members.nik") == "6472015507900003"
    rotated = keys.reencrypt(old_value, purpose=b"members.nik")
    assert keys.is_current(rotated) and keys.reencrypt(rotated, purpose=b"members.nik") == rotated
    assert ring(NEW).decrypt_text(rotated, purpose=b"members.nik") == "6472015507900003"


def test_a_value_does_not_decrypt_for_another_purpose():
    keys = ring(NEW)
    value = keys.encrypt_text("6472015507900003", purpose=b"members.nik")
    with pytest.raises(DataKeyError, match="does not decrypt under data key '2026a'"):
        keys.decrypt_text(value, purpose=b"members.kk_number")


def test_a_wrong_key_under_the_same_id_fails_clearly():
    value = ring(NEW).encrypt_text("6472015507900003", purpose=b"members.nik")
    wrong = ring("2026a:" + generate_key())
    with pytest.raises(DataKeyError, match="not the one it was encrypted with"):
        wrong.decrypt_text(value, purpose=b"members.nik")


def test_a_value_under_a_key_no_longer_listed_names_that_key():
    value = ring(OLD).encrypt_text("6472015507900003", purpose=b"members.nik")
    with pytest.raises(DataKeyError, match="'2025a', which is not in KUBE_DATA_KEYS"):
        ring(NEW).decrypt_text(value, purpose=b"members.nik")


def test_the_lookup_hash_is_stable_per_key_and_per_purpose():
    keys = ring(NEW)
    assert keys.lookup_hash("6472015507900003", purpose=b"nik") == ring(OLD).lookup_hash(
        "6472015507900003", purpose=b"nik"
    )  # data keys do not matter: rotation keeps every hash
    assert keys.lookup_hash("6472015507900003", purpose=b"nik") != keys.lookup_hash(
        "6472015507900003", purpose=b"kk"
    )
    other = ring(NEW, lookup=generate_key())
    assert other.lookup_hash("6472015507900003", purpose=b"nik") != keys.lookup_hash(
        "6472015507900003", purpose=b"nik"
    )


@pytest.mark.parametrize(
    ("data_keys_setting", "lookup", "message"),
    [
        ((), LOOKUP, "No data keys: set KUBE_DATA_KEYS"),
        ((NEW,), None, "No lookup key: set KUBE_LOOKUP_KEY"),
        (("nocolon",), LOOKUP, "each entry is id:base64key"),
        (("bad id:" + generate_key(),), LOOKUP, "each entry is id:base64key"),
        (("k1:not base64!",), LOOKUP, "KUBE_DATA_KEYS: a key is not valid base64"),
        (("k1:c2hvcnQ=",), LOOKUP, "KUBE_DATA_KEYS: a key must be 32 bytes, not 5"),
        ((NEW, NEW), LOOKUP, "listed twice"),
        ((NEW,), "c2hvcnQ=", "KUBE_LOOKUP_KEY: a key must be 32 bytes"),
        ((NEW,), NEW.split(":")[1], "KUBE_LOOKUP_KEY must differ from every data key"),
    ],
)
def test_missing_or_malformed_keys_name_their_variable(data_keys_setting, lookup, message):
    with pytest.raises(DataKeyError, match=message):
        DataKeys.parse(data_keys_setting, lookup)


def test_a_process_without_keys_says_which_variables_to_set():
    installed = None
    with contextlib.suppress(DataKeyError):
        installed = data_keys()
    use_data_keys(None)
    try:
        with pytest.raises(DataKeyError, match=r"KUBE_DATA_KEYS.*KUBE_LOOKUP_KEY"):
            data_keys()
    finally:
        use_data_keys(installed)
