"""Demo data for the local run, created through the registry's own API."""

from __future__ import annotations

import requests

DEMO_GROUPS = [
    {"name": "KUBE Tempe Makmur", "region_code": "6472011001", "business_type": "tempe"},
    {"name": "KUBE Warung Sejahtera", "region_code": "6472011002", "business_type": "e-warong"},
    {"name": "KUBE Jahit Mandiri", "region_code": "6471021003", "business_type": "tailoring"},
]


def seed(registry_url: str, token: str) -> None:
    """Create the demo groups, unless the registry already has groups."""
    headers = {"Authorization": f"Bearer {token}"}
    existing = requests.get(f"{registry_url}/api/v1/groups", headers=headers, timeout=10)
    existing.raise_for_status()
    if existing.json()["total"]:
        print("Registry already has groups; no demo data added.", flush=True)
        return
    for group in DEMO_GROUPS:
        requests.post(
            f"{registry_url}/api/v1/groups", json=group, headers=headers, timeout=10
        ).raise_for_status()
    print(f"Seeded {len(DEMO_GROUPS)} demo groups.", flush=True)
