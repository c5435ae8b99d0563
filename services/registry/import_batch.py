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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.registry.groups import OFFICER_ROLES, Rules
from services.registry.identity import mask_nik
from services.registry.import_check import GROUP_FIELD_COLUMNS, CheckedGroup
from services.registry.membership import MemberProblem, MemberProblems, taken_message
from services.registry.models import KK_PURPOSE, NIK_PURPOSE, kk_lookup, nik_lookup
from shared.db import driver_cursor, utcnow
from shared.encryption import data_keys
from shared.errors import DomainError, InvalidInput
from shared.events.outbox import EventPreparer, Outbox, PreparedEvent
from shared.scope import RegionScope

# The same key space and key text as a group's lock elsewhere: two runs that import the same
# group wait for each other, and the second finds it there.
GROUP_LOCK_SPACE = 0x4B554245  # "KUBE"

_STAGING = """
DROP TABLE IF EXISTS import_groups_staging;
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
"""
# Ids go into uuid columns as their 16 bytes: a binary COPY carries no types, and the binary
# form of a uuid is its 16 bytes (making uuid.UUID objects instead costs a microsecond each).
_UUID_BYTES = "bytea"
# The staging table's columns and their types, for a binary COPY (a third of the client's
# work of a text COPY, which must escape every byte string).
_GROUP_COLUMNS = {
    "group_index": "int4",
    "id": _UUID_BYTES,
    "name": "text",
    "name_lower": "text",
    "lock_key": "text",
    "region_code": "text",
    "address": "text",
    "business_type": "text",
    "founded_on": "date",
}
# The members of accepted groups go straight into `members`, in these columns and types.
_MEMBER_COLUMNS = {
    "id": _UUID_BYTES,
    "group_id": _UUID_BYTES,
    "nik_hash": "bytea",
    "kk_hash": "bytea",
    "name": "text",
    "gender": "text",
    "birth_date": "date",
    "phone": "text",
    "email": "text",
    "language": "text",
    "role": "text",
    "village_code": "text",
    "nik_encrypted": "bytea",
    "kk_encrypted": "bytea",
    # Added as the rows are written (PreparedBatch.member_rows has the columns above).
    "active": "bool",
    "version": "int4",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
}
# Locks taken in one order, so two runs locking overlapping groups cannot deadlock.
_LOCK_GROUPS = """
SELECT count(pg_advisory_xact_lock(:space, key)) FROM (
    SELECT DISTINCT hashtext(lock_key) AS key FROM import_groups_staging ORDER BY 1
) AS keys
"""
# One index probe per staged group (LIMIT keeps the planner from hashing every group in the
# registry instead, which costs more with each group the registry holds).
_EXISTING_GROUPS = """
SELECT s.group_index FROM import_groups_staging AS s
CROSS JOIN LATERAL (
    SELECT 1 FROM groups AS g
    WHERE g.region_code = s.region_code AND lower(g.name) = s.name_lower
      AND g.status <> 'dissolved'
    LIMIT 1
) AS found
"""
# A village is refused only when the region table is loaded and lacks it (check_village).
_MISSING_VILLAGES = """
SELECT DISTINCT s.region_code FROM import_groups_staging AS s
WHERE EXISTS (SELECT 1 FROM regions)
  AND NOT EXISTS (SELECT 1 FROM regions AS r WHERE r.code = s.region_code)
"""
# Which of the batch's NIKs (keyed hashes) are already in an active group, and which group:
# one index probe per NIK (a join would let the planner scan every member instead), the
# hashes sent as one binary array (psycopg formats it in C; as text, in Python).
_TAKEN_NIKS = """
SELECT s.nik_hash, found.id, found.name, found.region_code
FROM unnest(CAST(%b AS bytea[])) AS s (nik_hash)
CROSS JOIN LATERAL (
    SELECT g.id, g.name, g.region_code
    FROM members AS m JOIN groups AS g ON g.id = m.group_id
    WHERE m.nik_hash = s.nik_hash AND m.active
    LIMIT 1
) AS found
"""
_INSERT_GROUPS = """
INSERT INTO groups (id, name, region_code, address, business_type, founded_on, status,
                    version, created_by, created_at, updated_at)
SELECT id, name, region_code, address, business_type, founded_on, 'draft', 1, :actor,
       :now, :now
FROM import_groups_staging WHERE group_index = ANY(:accepted)
"""


@dataclass
class BatchGroup:
    """What writing needs of one checked group of the file: where its rows are, and what is
    wrong with it as far as the file alone shows (its members are in the batch's rows)."""

    name: str
    rows: int  # how many rows of the file it has
    first_row: int
    member_rows: list[int]  # the row number of each of its members, in order
    region_code: str | None
    # Problems found in its rows (the group cannot be created), each pointing at its row...
    errors: list[dict]
    # ...and in its members as a whole (too many, a NIK or an officer's role twice).
    problems: list[MemberProblem]

    @classmethod
    def of(cls, group: CheckedGroup, rules: Rules) -> BatchGroup:
        return cls(
            name=group.name,
            rows=len(group.rows),
            first_row=group.rows[0][0],
            member_rows=[number for number, _ in group.members],
            region_code=group.data["region_code"] if group.data else None,
            errors=group.errors,
            problems=[] if group.errors else _own_problems(group, rules),
        )

    def row_errors(self, exc: DomainError) -> list[dict]:
        """Point the domain's problems at the file's rows: a member's at its own row, the
        group's at the group's first row."""
        if isinstance(exc, MemberProblems):
            problems = exc.problems
        else:
            problems = [
                MemberProblem(None, entry.get("field") or "row", entry["message"])
                for entry in exc.errors or []
            ] or [MemberProblem(None, "row", exc.detail or "the group was rejected")]
        errors = []
        for problem in problems:
            if problem.index is not None:
                row, column = self.member_rows[problem.index], problem.field
            else:
                row, column = self.first_row, GROUP_FIELD_COLUMNS.get(problem.field, problem.field)
            errors.append(
                {"row": row, "group": self.name, "field": column, "message": problem.message}
            )
        return errors


@dataclass
class GroupOutcome:
    """What became of one group of a batch: created, unchanged or rejected (with errors)."""

    group: BatchGroup
    outcome: str
    errors: list[dict] | None = None


@dataclass
class PreparedBatch:
    """A batch of checked groups made ready for the database before its transaction begins:
    the valid groups' staging rows, their members' rows (NIK and No. KK encrypted, with their
    keyed hashes) and a signed group.registered event each. Making these is most of an
    import's Python, so the next batch is prepared while the database writes this one (in
    another thread or another process: the batch is compact and picklable)."""

    groups: list[BatchGroup]
    valid: list[int]
    group_rows: list[tuple]
    # The rows of `members` without their two timestamps (added as they are written), each
    # group's together: group i's are member_rows[slice_of[i]].
    member_rows: list[tuple]
    slice_of: dict[int, slice]
    # Per group: the index of the member with each NIK hash, to point a taken NIK at its row.
    nik_index: dict[int, dict[bytes, int]]
    events: dict[int, PreparedEvent]


def _copy(session: Session, table: str, columns: dict[str, str], rows) -> None:
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with driver_cursor(session) as cursor, cursor.copy(statement) as copy:
        copy.set_types(list(columns.values()))
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


def prepare_batch(
    groups: list[CheckedGroup], registered: EventPreparer, rules: Rules
) -> PreparedBatch:
    """Everything of a batch that needs no database, for the groups without errors;
    `registered` signs their group.registered events."""
    valid = [i for i, g in enumerate(groups) if not g.errors]
    new_ids = _random_ids(len(valid) + sum(len(groups[i].members) for i in valid))
    group_rows, member_rows, slice_of, nik_index, payloads = [], [], {}, {}, []
    niks, kks = [], []
    for i in valid:
        group = groups[i]
        data = group.data
        region_code = data["region_code"]
        group_id, group_text_id = next(new_ids)
        name_lower = group.name.lower()
        group_rows.append(
            (
                i,
                group_id,
                data["name"],
                name_lower,
                f"{region_code}:{name_lower}",
                region_code,
                data.get("address"),
                data.get("business_type"),
                data.get("founded_on"),
            )
        )
        index_of = nik_index[i] = {}
        first = len(member_rows)
        members = []
        for index, (_, member) in enumerate(group.members):
            nik_hash = nik_lookup(member["nik"])
            index_of.setdefault(nik_hash, index)
            member_id, member_text_id = next(new_ids)
            niks.append(member["nik"])
            kks.append(member["kk_number"])
            member_rows.append(
                (
                    member_id,
                    group_id,
                    nik_hash,
                    kk_lookup(member["kk_number"]),
                    member["name"],
                    member["gender"],
                    member["birth_date"],
                    member["phone"],
                    member["email"],
                    member["language"],
                    member["role"],
                    member.get("village_code") or region_code,
                )
            )
            members.append(
                {
                    "member_id": member_text_id,
                    "name": member["name"],
                    "role": member["role"],
                    "nik_masked": mask_nik(member["nik"]),
                    "phone": member["phone"],
                    "email": member["email"],
                    "language": member["language"],
                }
            )
        slice_of[i] = slice(first, len(member_rows))
        payloads.append(_registered_payload(group_text_id, group, members))
    # NIK and No. KK stored as the Member model stores them (models.py), encrypted in bulk.
    keys = data_keys()
    member_rows = [
        (*row, nik, kk)
        for row, nik, kk in zip(
            member_rows,
            keys.encrypt_many(niks, purpose=NIK_PURPOSE),
            keys.encrypt_many(kks, purpose=KK_PURPOSE),
            strict=True,
        )
    ]
    events = registered.prepare(payloads)
    return PreparedBatch(
        [BatchGroup.of(group, rules) for group in groups],
        valid,
        group_rows,
        member_rows,
        slice_of,
        nik_index,
        dict(zip(valid, events, strict=True)),
    )


def write_batch(
    session: Session,
    outbox: Outbox,
    batch: PreparedBatch,
    *,
    scope: RegionScope,
    actor: str,
) -> list[GroupOutcome]:
    """Create the valid groups of a prepared batch that do not exist yet, in the caller's
    transaction; the outcome of every group, in order."""
    groups = batch.groups
    outcomes = [GroupOutcome(g, "rejected", g.errors) for g in groups]
    if not batch.valid:
        return outcomes
    session.execute(text(_STAGING))
    _copy(session, "import_groups_staging", _GROUP_COLUMNS, batch.group_rows)
    session.execute(text(_LOCK_GROUPS), {"space": GROUP_LOCK_SPACE})
    existing = set(session.scalars(text(_EXISTING_GROUPS)))
    for i in existing:
        outcomes[i] = GroupOutcome(groups[i], "unchanged")
    candidates = [i for i in batch.valid if i not in existing]
    if not candidates:
        return outcomes
    missing_villages = set(session.scalars(text(_MISSING_VILLAGES)))
    # A NIK is in one group of a batch at most: check_group refuses a NIK seen before.
    group_of = {nik_hash: i for i in candidates for nik_hash in batch.nik_index[i]}
    taken: dict[int, list[MemberProblem]] = {}
    with driver_cursor(session) as cursor:
        found = cursor.execute(_TAKEN_NIKS, [list(group_of)]).fetchall()
    for nik_hash, other_id, other_name, other_region in found:
        other = _OtherGroup(other_id, other_name, other_region)
        group_index = group_of[bytes(nik_hash)]
        index = batch.nik_index[group_index][bytes(nik_hash)]
        taken.setdefault(group_index, []).append(
            MemberProblem(index, "nik", taken_message(scope, other))
        )

    accepted = []
    for i in candidates:
        group = groups[i]
        problems = group.problems + taken.get(i, [])
        if problems:
            errors = group.row_errors(MemberProblems(problems))
        elif group.region_code in missing_villages:
            problem = f"region_code {group.region_code} is not in the loaded region table"
            errors = group.row_errors(InvalidInput.field("region_code", problem))
        else:
            accepted.append(i)
            outcomes[i] = GroupOutcome(group, "created")
            continue
        outcomes[i] = GroupOutcome(group, "rejected", errors)
    if not accepted:
        return outcomes
    now = utcnow()
    session.execute(text(_INSERT_GROUPS), {"accepted": accepted, "actor": actor, "now": now})
    _copy(session, "members", _MEMBER_COLUMNS, _member_rows(batch, accepted, now))
    outbox.add_prepared(session, [batch.events[i] for i in accepted])
    return outcomes


def _member_rows(batch: PreparedBatch, accepted: list[int], now: datetime) -> Iterator[tuple]:
    """The accepted groups' member rows, complete: active, version 1, and a group's members
    one microsecond apart, as they join (the group's snapshot lists them in that order)."""
    joined = [now + timedelta(microseconds=offset) for offset in range(_most_members(batch))]
    for i in accepted:
        for offset, row in enumerate(batch.member_rows[batch.slice_of[i]]):
            yield (*row, True, 1, joined[offset], joined[offset])


def _most_members(batch: PreparedBatch) -> int:
    return max((s.stop - s.start for s in batch.slice_of.values()), default=0)


def _random_ids(count: int):
    """`count` random (version 4) UUIDs from one read of urandom (uuid.uuid4() reads it for
    each), each as its 16 bytes and its text."""
    raw = bytearray(os.urandom(16 * count))
    for offset in range(0, len(raw), 16):
        raw[offset + 6] = raw[offset + 6] & 0x0F | 0x40
        raw[offset + 8] = raw[offset + 8] & 0x3F | 0x80
    data = bytes(raw)
    hexed = data.hex()
    for offset in range(0, len(data), 16):
        h = hexed[2 * offset : 2 * offset + 32]
        yield data[offset : offset + 16], f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class _OtherGroup:
    id: uuid.UUID
    name: str
    region_code: str


def _registered_payload(group_id: str, group: CheckedGroup, members: list[dict]) -> dict:
    """The group.registered payload of a new group, JSON-ready, as group_snapshot makes it."""
    return {
        "group": {
            "group_id": group_id,
            "version": 1,
            "name": group.data["name"],
            "region_code": group.data["region_code"],
            "status": "draft",
            "business_type": group.data.get("business_type"),
            "member_count": len(members),
            "members": members,
            "bank_account": None,
        }
    }
