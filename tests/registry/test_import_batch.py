"""The set-based import path: its quick row checks agree with the schema, and an import racing a
manual member creation for the same NIK lets exactly one of them win."""

from __future__ import annotations

import io
import threading
import time
import uuid
from datetime import date

import marshmallow as ma
import pytest
from sqlalchemy import text
from test_imports import csv_file, group_rows

from services.registry.import_check import (
    _group_input,
    _member_input,
    _member_input_schema,
    load_group,
    load_member,
)

from registry_factories import make_nik, member_payload

# --- Quick checks: the same members, and the schema's own errors ---------------------------


def _schema_load(record: dict) -> dict | None:
    try:
        return _member_input_schema.load(_member_input(record))
    except ma.ValidationError:
        return None


@pytest.mark.parametrize("second", "0123456789")
@pytest.mark.parametrize("length", range(8, 14))
@pytest.mark.parametrize("prefix", ["0", "62", "+62", "0 ", "+62-"])
def test_quick_phone_check_agrees_with_normalize_phone(prefix, length, second):
    record = {**member_payload(), "phone": f"{prefix}8{second}{'7' * (length - 2)}"}
    expected = _schema_load(record)
    if expected is None:
        with pytest.raises(ma.ValidationError):
            load_member(record)
    else:
        assert load_member(record) == expected


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"role": "ketua", "gender": "M", "birth_date": "1985-03-12"},
        {"language": "en", "email": "Siti@Example.id"},
        {"gender": "F"},
        {"birth_date": "1985-3-12"},
        {"birth_date": "1986-03-12"},
        {"role": "boss"},
        {"name": "S"},
        {"name": "Siti\x00"},
        {"kk_number": "0012345678901234"},
        {"nik": "6472011203850000"},
        {"phone": "0800123456"},
        {"email": "not an address"},
    ],
)
def test_quick_member_check_loads_what_the_schema_loads(changes):
    record = {**member_payload(), **changes}
    expected = _schema_load(record)
    if expected is None:
        with pytest.raises(ma.ValidationError):
            load_member(record)
    else:
        assert load_member(record, date.today()) == expected


_GROUP = {
    "name": "KUBE Maju Bersama",
    "region_code": "6472011001",
    "address": "Jl. Mawar 1",
    "business_type": "warung",
    "founded_on": "2020-01-15",
}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"address": None, "business_type": None, "founded_on": None},
        {"name": "KU"},
        {"name": "   "},
        {"name": "K" * 201},
        {"name": "KUBE\x00"},
        {"address": "A" * 501},
        {"business_type": "B" * 101},
        {"business_type": "warung\ud800"},
        {"region_code": "64.72.01.1001"},
        {"region_code": "6472010001"},
        {"region_code": "0072011001"},
        {"region_code": "647201100"},
        {"region_code": None},
        {"name": None},
        {"founded_on": "2020-1-15"},
        {"founded_on": "2020-02-30"},
        {"founded_on": "2999-01-01"},
        {"founded_on": "15/01/2020"},
    ],
)
def test_quick_group_check_loads_what_the_schema_loads(changes):
    details = {k: v for k, v in {**_GROUP, **changes}.items() if v is not None}
    try:
        expected = _group_input.load(details)
    except ma.ValidationError:
        with pytest.raises(ma.ValidationError):
            load_group(details)
    else:
        assert load_group(details, date.today()) == expected


# --- An import racing a manual member creation for the same NIK ---------------------------


def _new_import(context, content: bytes) -> uuid.UUID:
    from services.registry.imports import create_import
    from shared.scope import RegionScope

    with context.db.transaction() as session:
        job = create_import(
            session,
            filename="race.csv",
            file=io.BytesIO(content),
            scope=RegionScope("6472"),
            actor="t",
        )
        return job.id


def _wait_for_a_lock_wait(context, timeout: float = 20) -> None:
    """Until some connection of this database waits on a lock (the race is on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with context.db.transaction() as session:
            waiting = session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        time.sleep(0.05)
    raise AssertionError("nobody waited on a lock")


def _import_result(context, import_id: uuid.UUID) -> dict:
    from services.registry.models import Import

    with context.db.transaction() as session:
        job = session.get(Import, import_id)
        return {
            "status": job.status,
            "created": job.groups_created,
            "rejected": job.groups_rejected,
            "errors": job.row_errors,
        }


@pytest.mark.commits
def test_manual_member_committed_during_an_import_wins_and_the_import_reports_the_row(
    apps, clients, officer, make_group, unique, preparing
):
    from services.registry.groups import Rules, find_group
    from services.registry.import_run import process_import
    from services.registry.membership import add_member
    from shared.scope import RegionScope

    context = apps["registry"].extensions["kube"]
    nik = make_nik()
    group = make_group()
    name = unique("KUBE Race")
    rows = group_rows(name)
    rows[1]["nik"] = nik  # spreadsheet row 3
    import_id = _new_import(context, csv_file(rows))

    # The manual creation has written its member and not committed yet...
    session = context.db.sessionmaker()
    session.begin()
    scope = RegionScope("6472")
    target = find_group(session, uuid.UUID(group["id"]), scope, lock=True)
    data = _member_input_schema.load(member_payload(nik=nik))  # as the API loads its body
    add_member(session, context.outbox, target, data, Rules(), scope=scope)
    # ...when the import checks the NIK (free) and inserts it: it waits on the unique index.
    run = threading.Thread(
        target=process_import, args=(context.db, context.outbox, import_id, Rules())
    )
    run.start()
    try:
        _wait_for_a_lock_wait(context)
    finally:
        session.commit()
        session.close()
        run.join(60)

    result = _import_result(context, import_id)
    assert result["status"] == "done"
    assert result["created"] == 0 and result["rejected"] == 1
    (error,) = result["errors"]
    assert (error["row"], error["field"], error["group"]) == (3, "nik", name)
    assert f"already a member of the active group '{group['name']}'" in error["message"]
    members = clients["registry"].get(f"/api/v1/groups/{group['id']}/members", headers=officer)
    assert [m["nik"][-4:] for m in members.json["items"]] == [nik[-4:]]


@pytest.mark.commits
def test_manual_member_posted_during_an_import_is_409_when_the_import_wins(
    apps, clients, officer, make_group, add_member, unique, preparing
):
    from services.registry.groups import Rules
    from services.registry.import_run import process_import

    context = apps["registry"].extensions["kube"]
    nik = make_nik()
    group = make_group()
    name = unique("KUBE Race")
    rows = group_rows(name)
    rows[1]["nik"] = nik
    import_id = _new_import(context, csv_file(rows))

    inserted, release = threading.Event(), threading.Event()

    class HeldOutbox:
        """The registry's outbox, holding the import's transaction open once it has inserted."""

        def preparer(self, event_type):
            return context.outbox.preparer(event_type)

        def add_prepared(self, session, events):
            context.outbox.add_prepared(session, events)
            inserted.set()
            release.wait(30)

    run = threading.Thread(
        target=process_import, args=(context.db, HeldOutbox(), import_id, Rules())
    )
    run.start()
    answers = []
    try:
        assert inserted.wait(30)
        post = threading.Thread(target=lambda: answers.append(add_member(group["id"], nik=nik)))
        post.start()
        _wait_for_a_lock_wait(context)  # the API's insert waits on the import's member
    finally:
        release.set()
        run.join(60)
    post.join(30)

    (answer,) = answers
    assert answer.status_code == 409, answer.json
    assert answer.mimetype == "application/problem+json"
    assert answer.json["errors"] == [{"field": "nik", "message": "already in another active group"}]
    result = _import_result(context, import_id)
    assert result["status"] == "done" and result["created"] == 1 and result["errors"] == []
    found = clients["registry"].get("/api/v1/groups", query_string={"q": name}, headers=officer)
    assert found.json["items"][0]["member_count"] == 5


# --- The writing thread: batches in order, its errors raised, the interpreter restored --------


def test_the_writer_writes_batches_in_order_and_restores_the_switch_interval():
    import sys

    from services.registry.import_run import _Writer

    before = sys.getswitchinterval()
    written, threads = [], set()

    def write(batch):
        time.sleep(0.01)
        threads.add(threading.get_ident())
        written.append(batch)

    with _Writer(write) as writer:
        for batch in range(5):
            writer.submit(batch)
    assert written == [0, 1, 2, 3, 4]
    assert threads and threading.get_ident() not in threads
    assert sys.getswitchinterval() == before


def test_a_failed_write_stops_the_run_with_its_error():
    import sys

    from services.registry.import_run import _Writer

    before = sys.getswitchinterval()
    written = []

    def write(batch):
        if batch == 1:
            raise RuntimeError("batch 1 failed")
        written.append(batch)

    with pytest.raises(RuntimeError, match="batch 1 failed"), _Writer(write) as writer:
        for batch in range(5):
            writer.submit(batch)
    assert written == [0]  # nothing after the failed batch is written
    assert sys.getswitchinterval() == before


def test_a_reading_error_waits_for_the_batch_being_written():
    from services.registry.import_run import _Writer

    written = []

    def write(batch):
        time.sleep(0.2)
        written.append(batch)

    with pytest.raises(ValueError, match="bad row"), _Writer(write) as writer:
        writer.submit(0)
        raise ValueError("bad row")
    assert written == [0]
