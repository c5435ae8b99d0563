"""Demo data for the local run: office mailboxes, so a missed deadline's email has an
address to go to (the local SMTP sink keeps it under .local/mail/)."""

from __future__ import annotations

from collections.abc import Mapping

import requests

MAILBOXES = [
    {"region_code": "", "role": role, "email": f"{role}@dinsos.example.id"}
    for role in ("verifikator", "kepala_dinas", "pendamping", "bendahara", "admin")
] + [
    {"region_code": "64", "role": "verifikator", "email": "verval@dinsos.kaltimprov.example.id"},
]


def seed(urls: Mapping[str, str], token: str) -> None:
    """Set the office mailboxes, unless an office already set its own."""
    base = urls["notifications"]
    headers = {"Authorization": f"Bearer {token}"}
    current = requests.get(f"{base}/api/v1/mailboxes", headers=headers, timeout=10)
    current.raise_for_status()
    if current.json()["mailboxes"]:
        return
    response = requests.put(
        f"{base}/api/v1/mailboxes", json={"mailboxes": MAILBOXES}, headers=headers, timeout=10
    )
    response.raise_for_status()
    print(f"Seeded {len(MAILBOXES)} office mailboxes for deadline emails.")
