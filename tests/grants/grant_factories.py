"""Small factories for the grant service's tests: groups as the registry announces them,
programmes and applications made through the API, and workflow steps."""

from __future__ import annotations

import uuid
from itertools import count

from services.grants.handlers import apply_group_snapshot
from shared.events.contracts import contract_for

DOCUMENTS = (
    "ktp",
    "kk",
    "register_proof",
    "founding_minutes",
    "business_plan",
    "bank_account",
    "village_letter",
    "regency_recommendation",
)
ALL_DOCUMENTS = dict.fromkeys(DOCUMENTS, True)
_versions = count(1)


def announce_group(
    apps,
    *,
    group_id=None,
    region_code="6472011001",
    members=10,
    status="active",
    officers=("ketua", "sekretaris", "bendahara"),
    bank=True,
    name="KUBE Tempe Makmur",
) -> uuid.UUID:
    """Project a group into the grant service as a registry event would."""
    group_id = group_id or uuid.uuid4()
    roles = [*officers, *["anggota"] * max(0, members - len(officers))][:members]
    payload = {
        "group": {
            "group_id": str(group_id),
            "version": next(_versions),
            "name": name,
            "region_code": region_code,
            "status": status,
            "business_type": "tempe",
            "member_count": members,
            "members": [
                {
                    "member_id": str(uuid.uuid4()),
                    "name": f"Anggota {i}",
                    "role": role,
                    "nik_masked": "6472********0001",
                    "phone": None,
                    "email": None,
                    "language": "id",
                }
                for i, role in enumerate(roles)
            ],
            "bank_account": {
                "bank_name": "BRI",
                "account_number": "002101000123305",
                "account_holder": f"{name}",
            }
            if bank
            else None,
        }
    }
    payload = contract_for("group.updated").schema().load(payload)
    with apps["grants"].extensions["kube"].db.transaction() as session:
        apply_group_snapshot(session, payload, {})
    return group_id


def program_body(**overrides) -> dict:
    body = {
        "name": "UEP KUBE Kaltim 2026",
        "fiscal_year": 2026,
        "funding_source": "apbd_province",
        "region_code": "64",
        "total_budget": 200_000_000,
        "min_members": 5,
        "max_members": 20,
    }
    body.update(overrides)
    return body


class Office:
    """An office's staff calling the grant API, one token per person."""

    def __init__(self, client, auth, region: str = "64"):
        self.client = client
        self.auth = auth
        self.region = region

    def headers(self, role: str, sub: str | None = None, **extra) -> dict:
        return {**self.auth(role, region=self.region, sub=sub or role), **extra}

    def program(self, **overrides) -> dict:
        response = self.client.post(
            "/api/v1/programs", json=program_body(**overrides), headers=self.auth("admin")
        )
        assert response.status_code == 201, response.json
        return response.json

    def apply(self, program_id, group_id, *, sub="pendamping", **body) -> dict:
        body = {
            "program_id": str(program_id),
            "group_id": str(group_id),
            "business_plan": "Produksi tempe 50 kg per hari untuk pasar Segiri.",
            "documents": ALL_DOCUMENTS,
            **body,
        }
        response = self.client.post(
            "/api/v1/grants", json=body, headers=self.headers("pendamping", sub)
        )
        assert response.status_code == 201, response.json
        return response.json

    def act(
        self,
        grant: dict,
        action: str,
        role: str,
        *,
        sub=None,
        comment=None,
        data=None,
        if_match=None,
    ):
        """Take an action; return the response (the caller checks its status)."""
        headers = self.headers(role, sub, **{"If-Match": if_match or f'"{grant["version"]}"'})
        body = {"action": action, "comment": comment, "data": data or {}}
        return self.client.post(
            f"/api/v1/grants/{grant['id']}/transitions", json=body, headers=headers
        )

    def move(self, grant: dict, action: str, role: str, **kwargs) -> dict:
        response = self.act(grant, action, role, **kwargs)
        assert response.status_code == 200, response.json
        return response.json


ACTION_DATA = {
    "verify": {"checklist": ALL_DOCUMENTS, "minutes_number": "BA-001/2026"},
    "recommend": {"letter_number": "400/REK/2026"},
    "approve": {"decree_number": "SK-460/2026", "decree_date": "2026-11-20"},
    "report": {"spent_amount": 19_500_000, "report_date": "2026-12-20", "receipts": 12},
    "monitor": {"business_status": "running"},
}
# Who takes each action in these tests (the submitter and verifier are not the approver).
TAKERS = {
    "submit": ("pendamping", "pendamping"),
    "verify": ("verifikator", "verifikator"),
    "recommend": ("kepala_dinas", "kepala-provinsi"),
    "approve": ("kepala_dinas", "kepala"),
    "disburse": ("bendahara", "bendahara"),
    "report": ("pendamping", "pendamping"),
    "accept_report": ("verifikator", "verifikator"),
    "monitor": ("pendamping", "pendamping"),
    "close": ("kepala_dinas", "kepala"),
}


def walk(office: Office, grant: dict, actions: list[str]) -> dict:
    """Take `actions` in turn with the usual takers and data."""
    for action in actions:
        role, sub = TAKERS[action]
        data = ACTION_DATA.get(action)
        if action == "disburse":
            data = {
                "transfer_reference": "TRF-0001",
                "transfer_date": "2026-11-25",
                "amount": grant["amount"],
            }
        grant = office.move(grant, action, role, sub=sub, data=data)
    return grant
