"""Where an import's file is prepared: in the importing process (a small file) or in a process of
its own (import_prepare.py, a large file). Both give the same outcome, per-row errors, re-run
and resume after a crash; a preparing process that fails or dies fails the import, saying so."""

from __future__ import annotations

import signal
import uuid
from datetime import date

import pytest
from sqlalchemy import select
from test_import_batch import _import_result, _new_import
from test_imports import COLUMNS, csv_file, group_rows

from registry_factories import make_nik


def _run(context, import_id: uuid.UUID, outbox=None) -> dict:
    from services.registry.groups import Rules
    from services.registry.import_run import process_import
    from services.registry.models import Import

    process_import(context.db, outbox or context.outbox, import_id, Rules())
    with context.db.transaction() as session:
        job = session.get(Import, import_id)
        return {
            **_import_result(context, import_id),
            "unchanged": job.groups_unchanged,
            "rows": (job.processed_rows, job.total_rows),
        }


@pytest.mark.commits
def test_outcomes_and_row_errors_are_the_same_wherever_the_file_is_prepared(
    apps, preparing, make_group, add_member, unique
):
    context = apps["registry"].extensions["kube"]
    taken = make_nik()
    assert add_member(make_group()["id"], nik=taken).status_code == 201
    names = [
        unique("KUBE Good"),
        unique("KUBE Bad NIK"),
        unique("KUBE Twice"),
        unique("KUBE Taken"),
    ]
    names.append(unique("KUBE Two Ketua"))
    rows = [row for name in names for row in group_rows(name)]
    rows[6]["nik"] = "6472011203850000"  # group 2, spreadsheet row 8: serial 0000
    rows[11]["nik"] = rows[0]["nik"]  # group 3, row 13 repeats row 2's NIK
    rows[17]["nik"] = taken  # group 4, row 19: in another active group
    rows[23]["role"] = "ketua"  # group 5, row 25: a second ketua
    content = csv_file(rows)

    first = _run(context, _new_import(context, content))
    assert first["status"] == "done"
    assert (first["created"], first["rejected"]) == (1, 4)
    assert [(e["row"], e["group"], e["field"]) for e in first["errors"]] == [
        (8, names[1], "nik"),
        (13, names[2], "nik"),
        (19, names[3], "nik"),
        (25, names[4], "role"),
    ]
    messages = [e["message"] for e in first["errors"]]
    assert "serial" in messages[0] and "also on row 2" in messages[1]
    assert "already a member of the active group" in messages[2] and taken not in str(first)

    # The same file again: the created group is unchanged, the others refused the same way.
    again = _run(context, _new_import(context, content))
    assert again["status"] == "done" and again["unchanged"] == 1
    assert (again["created"], again["rejected"]) == (0, 4)
    assert again["errors"] == first["errors"]


@pytest.mark.commits
def test_a_run_that_crashed_resumes_after_the_groups_it_saved(apps, preparing, unique, monkeypatch):
    from services.registry import import_run
    from services.registry.models import Group

    context = apps["registry"].extensions["kube"]
    monkeypatch.setattr(import_run, "BATCH_ROWS", 5)  # a batch, a transaction, per group
    names = [unique("KUBE Resume") for _ in range(3)]
    import_id = _new_import(context, csv_file([r for n in names for r in group_rows(n)]))

    class Crash(BaseException):
        """The worker process dying: not an error the run can record."""

    class CrashingOutbox:
        def __init__(self):
            self.batches = 0

        def preparer(self, event_type):
            return context.outbox.preparer(event_type)

        def add_prepared(self, session, events):
            self.batches += 1
            if self.batches == 2:
                raise Crash
            context.outbox.add_prepared(session, events)

    with pytest.raises(Crash):
        _run(context, import_id, CrashingOutbox())
    crashed = _import_result(context, import_id)
    assert crashed["status"] == "processing" and crashed["created"] == 1

    resumed = _run(context, import_id)
    assert resumed["status"] == "done" and resumed["created"] == 3 and resumed["errors"] == []
    # Not read again as an unchanged group: the run went on from the saved group's last row.
    assert resumed["unchanged"] == 0 and resumed["rows"] == (15, 15)
    with context.db.transaction() as session:
        stored = session.scalars(select(Group.name).where(Group.name.in_(names))).all()
    assert sorted(stored) == sorted(names)  # each once: the saved group was not written again


@pytest.mark.commits
def test_a_file_with_a_header_and_no_rows_fails_saying_why(apps, preparing):
    context = apps["registry"].extensions["kube"]
    # A row with text only in a column the import does not know passes the upload's check;
    # only reading the file shows there is nothing in it to import.
    content = csv_file([{"notes": "kosong"}], [*COLUMNS, "notes"])
    import_id = _new_import(context, content)
    assert _run(context, import_id)["status"] == "failed"
    with context.db.transaction() as session:
        from services.registry.models import Import

        assert "no data rows" in session.get(Import, import_id).error


def _job(path: str):
    from services.registry.groups import Rules
    from services.registry.import_prepare import PrepareJob
    from services.registry.service import SERVICE
    from shared.events.outbox import EventPreparer
    from shared.scope import RegionScope

    return PrepareJob(
        path=path,
        file_format="csv",
        scope=RegionScope("6472"),
        resume_rows=0,
        today=date.today(),
        registered=EventPreparer("group.registered", SERVICE.name, "k" * 32),
        rules=Rules(),
        batch_rows=5,
    )


def test_a_preparing_process_sends_what_preparing_here_yields(apps, tmp_path, unique):
    from services.registry.import_prepare import prepared_batches, preparing_process

    path = tmp_path / "groups.csv"
    path.write_bytes(csv_file(group_rows(unique()) + group_rows(unique())))
    here = list(prepared_batches(_job(str(path))))
    with preparing_process(_job(str(path))) as received:
        there = list(received)
        assert received.process.wait(10) == 0
    assert [type(item) for item in there] == [int, *[type(b) for b in here[1:]]]
    assert there[0] == here[0] == 10
    for mine, theirs in zip(here[1:], there[1:], strict=True):
        # Ids, nonces and signatures are drawn afresh; what was checked is the same.
        assert theirs.groups == mine.groups and theirs.valid == mine.valid
        assert [r[2:12] for r in theirs.member_rows] == [r[2:12] for r in mine.member_rows]


def test_an_error_in_the_preparing_process_is_raised_here_without_the_nik(apps, tmp_path):
    from services.registry.import_prepare import PreparingProcessError, preparing_process

    nik = make_nik()
    missing = tmp_path / f"{nik}.csv"
    with (
        pytest.raises(PreparingProcessError, match="FileNotFoundError") as raised,
        preparing_process(_job(str(missing))) as received,
    ):
        list(received)
    assert nik not in str(raised.value)


def test_a_preparing_process_killed_fails_the_import_not_hangs_it(apps, tmp_path, unique):
    from services.registry.import_prepare import PreparingProcessError, preparing_process

    path = tmp_path / "groups.csv"
    path.write_bytes(csv_file([r for _ in range(200) for r in group_rows(unique())]))
    with preparing_process(_job(str(path))) as received:
        items = iter(received)
        assert next(items) == 1000  # the row count: the child is working
        received.process.send_signal(signal.SIGKILL)
        with pytest.raises(PreparingProcessError, match="ended without finishing"):
            list(items)
    assert received.process.returncode == -signal.SIGKILL


def test_an_unfinished_read_stops_the_preparing_process(apps, tmp_path, unique):
    from services.registry.import_prepare import preparing_process

    path = tmp_path / "groups.csv"
    path.write_bytes(csv_file([r for _ in range(200) for r in group_rows(unique())]))
    with preparing_process(_job(str(path))) as received:
        next(iter(received))
    # The importing side failed or stopped: the child does not outlive it.
    assert received.process.returncode is not None
