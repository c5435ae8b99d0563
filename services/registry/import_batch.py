"""Writing an import's checked groups a batch at a time: the rows go into staging tables with
COPY, the registry's rules (a group already there, a NIK in another active group, a village
missing from the region table) are checked by a few set-based statements, and the accepted
groups, their members and their group.registered events are inserted in one statement each.

The outcome of each group, and the message of each refusal, are those of registering the
group and adding its members one by one through the API (services/registry/membership.py).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.registry.groups import OFFICER_ROLES, Rules
from services.registry.identity import mask_nik
from services.registry.import_check import CheckedGroup, row_errors
from services.registry.membership import MemberProblem, MemberProblems, taken_message
from services.registry.models import KK_PURPOSE, NIK_PURPOSE, kk_lookup, nik_lookup
from shared.db import utcnow
from shared.encryption import data_keys
from shared.errors import InvalidInput
from shared.events.outbox import Outbox
from shared.scope import RegionScope

# The same key space and key text as a group's lock elsewhere: two runs that import the same
# group wait for each other, and the second finds it there.
GROUP_LOCK_SPACE = 0x4B554245  # "KUBE"

_STAGING = """
DROP TABLE IF EXISTS import_groups_staging, import_members_staging;
CREATE TEMPORARY TABLE import_groups_staging (
    group_index integer PRIMARY KEY,
    id uuid NOT NULL,
    name text NOT NULL,
    name_lower text NOT NULL,
    lock_key text NOT NULL,
    region_code text NOT NULL,
    address text,
    business_type text,
    founded_on date
) ON COMMIT DROP;
CREATE TEMPORARY TABLE import_members_staging (
    group_index integer NOT NULL,
    member_index integer NOT NULL,
    id uuid NOT NULL,
    nik_encrypted bytea NOT NULL,
    nik_hash bytea NOT NULL,
    kk_encrypted bytea NOT NULL,
    kk_hash bytea NOT NULL,
    name text NOT NULL,
    gender text NOT NULL,
    birth_date date NOT NULL,
    phone text,
    email text,
    language text NOT NULL,
    role text NOT NULL,
    village_code text NOT NULL,
    created_at timestamptz NOT NULL
) ON COMMIT DROP;
"""
_GROUP_COLUMNS = (
    "group_index, id, name, name_lower, lock_key, region_code, address, business_type, founded_on"
)
_MEMBER_COLUMNS = (
    "group_index, member_index, id, nik_encrypted, nik_hash, kk_encrypted, kk_hash, name, "
    "gender, birth_date, phone, email, language, role, village_code, created_at"
)
# Locks taken in one order, so two runs locking overlapping groups cannot deadlock.
_LOCK_GROUPS = """
SELECT count(pg_advisory_xact_lock(:space, key)) FROM (
    SELECT DISTINCT hashtext(lock_key) AS key FROM import_groups_staging ORDER BY 1
) AS keys
"""
_EXISTING_GROUPS = """
SELECT s.group_index FROM import_groups_staging AS s
WHERE EXISTS (
    SELECT 1 FROM groups AS g
    WHERE g.region_code = s.region_code AND lower(g.name) = s.name_lower
      AND g.status <> 'dissolved'
)
"""
# A village is refused only when the region table is loaded and lacks it (check_village).
_MISSING_VILLAGES = """
SELECT DISTINCT s.region_code FROM import_groups_staging AS s
WHERE EXISTS (SELECT 1 FROM regions)
  AND NOT EXISTS (SELECT 1 FROM regions AS r WHERE r.code = s.region_code)
"""
_TAKEN_NIKS = """
SELECT s.group_index, s.nik_hash, g.id, g.name, g.region_code
FROM import_members_staging AS s
JOIN members AS m ON m.nik_hash = s.nik_hash AND m.active
JOIN groups AS g ON g.id = m.group_id
"""
_INSERT_GROUPS = """
INSERT INTO groups (id, name, region_code, address, business_type, founded_on, status,
                    version, created_by, created_at, updated_at)
SELECT id, name, region_code, address, business_type, founded_on, 'draft', 1, :actor,
       :now, :now
FROM import_groups_staging WHERE group_index = ANY(:accepted)
"""
_INSERT_MEMBERS = """
INSERT INTO members (id, group_id, nik_encrypted, nik_hash, kk_encrypted, kk_hash, name,
                     gender, birth_date, phone, email, language, role, village_code, active,
                     version, created_at, updated_at)
SELECT m.id, g.id, m.nik_encrypted, m.nik_hash, m.kk_encrypted, m.kk_hash, m.name, m.gender,
       m.birth_date, m.phone, m.email, m.language, m.role, m.village_code, true, 1,
       m.created_at, m.created_at
FROM import_members_staging AS m
JOIN import_groups_staging AS g USING (group_index)
WHERE m.group_index = ANY(:accepted)
"""


@dataclass
class GroupOutcome:
    """What became of one group of a batch: created, unchanged or rejected (with errors)."""

    group: CheckedGroup
    outcome: str
    errors: list[dict] | None = None


def _copy(session: Session, table: str, columns: str, rows) -> None:
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _own_problems(group: CheckedGroup, rules: Rules) -> list[MemberProblem]:
    """The problems in the members themselves: too many, a NIK or an officer's role twice."""
    members = [data for _, data in group.members]
    problems = []
    if len(members) > rules.max_members:
        problems.append(
            MemberProblem(
                None, "members", f"{len(members)} members; the maximum is {rules.max_members}"
            )
        )
    first_with: dict[tuple[str, str], int] = {}
    for index, member in enumerate(members):
        for field in ("nik", "role"):
            if field == "role" and member["role"] not in OFFICER_ROLES:
                continue
            earlier = first_with.setdefault((field, member[field]), index)
            if earlier != index:
                problems.append(MemberProblem(index, field, f"same {field} as member {earlier}"))
    return problems


def write_batch(
    session: Session,
    outbox: Outbox,
    groups: list[CheckedGroup],
    rules: Rules,
    *,
    scope: RegionScope,
    actor: str,
) -> list[GroupOutcome]:
    """Create the valid groups of a batch that do not exist yet, in the caller's transaction;
    the outcome of every group, in order."""
    outcomes = [GroupOutcome(g, "rejected", g.errors) for g in groups]
    valid = [i for i, g in enumerate(groups) if not g.errors]
    if not valid:
        return outcomes
    now = utcnow()
    ids = {i: uuid.uuid4() for i in valid}
    session.execute(text(_STAGING))
    _copy(
        session,
        "import_groups_staging",
        _GROUP_COLUMNS,
        (
            (
                i,
                ids[i],
                groups[i].data["name"],
                groups[i].name.lower(),
                f"{groups[i].data['region_code']}:{groups[i].name.lower()}",
                groups[i].data["region_code"],
                groups[i].data.get("address"),
                groups[i].data.get("business_type"),
                groups[i].data.get("founded_on"),
            )
            for i in valid
        ),
    )
    session.execute(text(_LOCK_GROUPS), {"space": GROUP_LOCK_SPACE})
    existing = set(session.scalars(text(_EXISTING_GROUPS)))
    for i in existing:
        outcomes[i] = GroupOutcome(groups[i], "unchanged")
    candidates = [i for i in valid if i not in existing]
    if not candidates:
        return outcomes
    missing_villages = set(session.scalars(text(_MISSING_VILLAGES)))

    new_ids = _random_ids(sum(len(groups[i].members) for i in candidates))
    members: dict[int, list[dict]] = {}
    hashes: dict[int, dict[bytes, int]] = {}
    staged = []
    offset = 0
    for i in candidates:
        region_code = groups[i].data["region_code"]
        rows = members[i] = []
        index_of = hashes[i] = {}
        for index, (_, data) in enumerate(groups[i].members):
            nik_hash = nik_lookup(data["nik"])
            index_of.setdefault(nik_hash, index)
            member = {
                **data,
                "id": next(new_ids),
                "village_code": data.get("village_code") or region_code,
                # One after the other, as they join: the group's snapshot lists them so.
                "created_at": now + timedelta(microseconds=offset),
            }
            offset += 1
            rows.append(member)
            staged.append(
                [
                    i,
                    index,
                    member["id"],
                    data["nik"],
                    nik_hash,
                    data["kk_number"],
                    kk_lookup(data["kk_number"]),
                    data["name"],
                    data["gender"],
                    data["birth_date"],
                    data["phone"],
                    data["email"],
                    data["language"],
                    data["role"],
                    member["village_code"],
                    member["created_at"],
                ]
            )
    # NIK and No. KK stored as the Member model stores them (models.py), encrypted in bulk.
    keys = data_keys()
    niks = keys.encrypt_many([row[3] for row in staged], purpose=NIK_PURPOSE)
    kks = keys.encrypt_many([row[5] for row in staged], purpose=KK_PURPOSE)
    for row, nik, kk in zip(staged, niks, kks, strict=True):
        row[3], row[5] = nik, kk
    _copy(session, "import_members_staging", _MEMBER_COLUMNS, staged)
    taken: dict[int, list[MemberProblem]] = {}
    for group_index, nik_hash, other_id, other_name, other_region in session.execute(
        text(_TAKEN_NIKS)
    ):
        other = _OtherGroup(other_id, other_name, other_region)
        taken.setdefault(group_index, []).append(
            MemberProblem(hashes[group_index][bytes(nik_hash)], "nik", taken_message(scope, other))
        )

    accepted = []
    for i in candidates:
        group = groups[i]
        rows = [number for number, _ in group.members]
        problems = _own_problems(group, rules) + taken.get(i, [])
        if problems:
            errors = row_errors(group, rows, MemberProblems(problems))
        elif group.data["region_code"] in missing_villages:
            problem = f"region_code {group.data['region_code']} is not in the loaded region table"
            errors = row_errors(group, rows, InvalidInput.field("region_code", problem))
        else:
            accepted.append(i)
            outcomes[i] = GroupOutcome(group, "created")
            continue
        outcomes[i] = GroupOutcome(group, "rejected", errors)
    if not accepted:
        return outcomes
    values = {"accepted": accepted, "actor": actor, "now": now}
    session.execute(text(_INSERT_GROUPS), values)
    session.execute(text(_INSERT_MEMBERS), values)
    outbox.add_prepared(
        session,
        "group.registered",
        [_registered_payload(ids[i], groups[i], members[i]) for i in accepted],
    )
    return outcomes


def _random_ids(count: int):
    """`count` random (version 4) UUIDs as text, from one read of urandom: uuid.uuid4() costs
    more than the rest of a member's row."""
    raw = bytearray(os.urandom(16 * count))
    for offset in range(0, len(raw), 16):
        raw[offset + 6] = raw[offset + 6] & 0x0F | 0x40
        raw[offset + 8] = raw[offset + 8] & 0x3F | 0x80
    text = raw.hex()
    for offset in range(0, len(text), 32):
        h = text[offset : offset + 32]
        yield f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class _OtherGroup:
    id: uuid.UUID
    name: str
    region_code: str


def _registered_payload(group_id: uuid.UUID, group: CheckedGroup, members: list[dict]) -> dict:
    """The group.registered payload of a new group, JSON-ready, as group_snapshot makes it."""
    return {
        "group": {
            "group_id": str(group_id),
            "version": 1,
            "name": group.data["name"],
            "region_code": group.data["region_code"],
            "status": "draft",
            "business_type": group.data.get("business_type"),
            "member_count": len(members),
            "members": [
                {
                    "member_id": m["id"],
                    "name": m["name"],
                    "role": m["role"],
                    "nik_masked": mask_nik(m["nik"]),
                    "phone": m["phone"],
                    "email": m["email"],
                    "language": m["language"],
                }
                for m in members
            ],
            "bank_account": None,
        }
    }
