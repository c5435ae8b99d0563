"""Test data factories for the registry: valid NIKs, phones and member payloads."""

from __future__ import annotations

import itertools
import random
from datetime import date

_serials = itertools.count(random.randint(1, 5000))


def make_nik(*, gender: str = "M", birth: date = date(1985, 3, 12), district="647201") -> str:
    """A valid NIK no other test of this run uses."""
    serial = next(_serials) % 9999 + 1
    day = birth.day + (40 if gender == "F" else 0)
    return f"{district}{day:02d}{birth.month:02d}{birth.year % 100:02d}{serial:04d}"


def make_phone() -> str:
    return f"0812{random.randint(10_000_000, 99_999_999)}"


def member_payload(**overrides) -> dict:
    gender = overrides.pop("gender_for_nik", "M")
    payload = {
        "nik": make_nik(gender=gender),
        "kk_number": f"647201{random.randint(10**9, 10**10 - 1)}",
        "name": f"Warga {random.randint(1000, 9999)}",
        "phone": make_phone(),
        "role": "anggota",
    }
    payload.update(overrides)
    return payload
