"""Demo data for the local run, created through the registry's own API."""

from __future__ import annotations

from collections.abc import Mapping

import requests

ROLES = ("ketua", "sekretaris", "bendahara", "anggota", "anggota")
# Active groups hold the account their grant is paid into (the group's own, never a member's).
DEMO_GROUPS = [
    {
        "name": "KUBE Tempe Makmur",
        "region_code": "6472011001",
        "business_type": "tempe",
        "address": "Jl. Pahlawan RT 05",
        "founded_on": "2025-02-17",
        "bank_account": {
            "bank_name": "BRI",
            "account_number": "002101000456307",
            "account_holder": "KUBE Tempe Makmur",
        },
        "activate": True,
    },
    {
        "name": "KUBE Warung Sejahtera",
        "region_code": "6472011002",
        "business_type": "e-warong",
        "address": "Jl. Sentosa 12",
        "founded_on": "2025-06-02",
        "bank_account": {
            "bank_name": "Mandiri",
            "account_number": "1480012345678",
            "account_holder": "KUBE Warung Sejahtera",
        },
        "activate": True,
    },
    {
        "name": "KUBE Jahit Mandiri",
        "region_code": "6471021003",
        "business_type": "tailoring",
        "address": "Gg. Melati 4",
        "founded_on": "2026-01-20",
        "activate": False,
    },
    {
        "name": "KUBE Ternak Berkah",
        "region_code": "6472021004",
        "business_type": "goats",
        "address": "Jl. Padat Karya RT 12",
        "founded_on": "2025-03-10",
        "bank_account": {
            "bank_name": "Bank Kaltimtara",
            "account_number": "0011234567",
            "account_holder": "KUBE Ternak Berkah",
        },
        "activate": True,
    },
    {
        "name": "KUBE Manik Lestari",
        "region_code": "6471011005",
        "business_type": "crafts",
        "address": "Jl. Mulawarman 21",
        "founded_on": "2025-04-22",
        "bank_account": {
            "bank_name": "BNI",
            "account_number": "1234509876",
            "account_holder": "KUBE Manik Lestari",
        },
        "activate": True,
    },
    {
        "name": "KUBE Unggas Jaya",
        "region_code": "6472031006",
        "business_type": "poultry",
        "address": "Gg. Kenanga 7",
        "founded_on": "2025-08-05",
        "bank_account": {
            "bank_name": "BSI",
            "account_number": "7123456789",
            "account_holder": "KUBE Unggas Jaya",
        },
        "activate": True,
    },
]
MEMBER_NAMES = [
    "Siti Aminah",
    "Budi Santoso",
    "Rina Wati",
    "Agus Salim",
    "Dewi Lestari",
    "Joko Susilo",
    "Sri Rahayu",
    "Hendra Gunawan",
    "Nur Aisyah",
    "Bambang Irawan",
    "Yuni Kartika",
    "Slamet Riyadi",
    "Wulan Sari",
    "Eko Prasetyo",
    "Fitri Handayani",
]


def _nik(district: str, index: int, female: bool) -> str:
    day = 10 + index % 18 + (40 if female else 0)
    return f"{district}{day:02d}{1 + index % 12:02d}{80 + index % 15:02d}{index + 1:04d}"


def seed(urls: Mapping[str, str], token: str) -> None:
    """Create the demo groups with members through the registry's API, unless they are
    there already (`urls` maps each service to its base URL)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    api = f"{urls['registry']}/api/v1"
    existing = session.get(f"{api}/groups", params={"q": DEMO_GROUPS[0]["name"]}, timeout=10)
    existing.raise_for_status()
    if existing.json()["total"]:
        print("The demo groups are there already; none added.", flush=True)
        return
    index = 0
    for spec in DEMO_GROUPS:
        body = {k: v for k, v in spec.items() if k != "activate"}
        group = session.post(f"{api}/groups", json=body, timeout=10)
        group.raise_for_status()
        group_id = group.json()["id"]
        for role in ROLES:
            female = index % 2 == 0
            member = {
                "nik": _nik(spec["region_code"][:6], index, female),
                "kk_number": f"{spec['region_code'][:6]}{2000000000 + index}",
                "name": MEMBER_NAMES[index % len(MEMBER_NAMES)],
                "phone": f"08125{index:07d}",
                "role": role,
            }
            session.post(
                f"{api}/groups/{group_id}/members", json=member, timeout=10
            ).raise_for_status()
            index += 1
        if spec["activate"]:
            session.post(
                f"{api}/groups/{group_id}/status",
                timeout=10,
                json={"action": "activate", "reason": "Verifikasi lapangan selesai"},
            ).raise_for_status()
            session.post(
                f"{api}/groups/{group_id}/visits",
                timeout=10,
                json={
                    "visited_on": "2026-10-15",
                    "topics": ["bookkeeping"],
                    "monthly_revenue": 2_400_000,
                    "notes": "Pembukuan rapi",
                },
            ).raise_for_status()
    print(f"Seeded {len(DEMO_GROUPS)} demo groups with {index} members.", flush=True)
