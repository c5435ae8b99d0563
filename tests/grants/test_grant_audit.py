"""The audit trail's chain catches an edited record; `kube grants verify-audit` reports it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from services.grants.audit import verify_chains
from services.grants.cli import grants as grants_command
from services.grants.models import AuditRecord

from grant_factories import Office, announce_group, walk

# Committed data stays for the rest of the run: kept in Balikpapan, out of other tests' way.
ELSEWHERE = "6471011001"


def test_an_edited_record_breaks_its_chain_at_that_record(clients, auth, apps):
    office = Office(clients["grants"], auth)
    grant = walk(
        office,
        office.apply(office.program()["id"], announce_group(apps)),
        ["submit", "verify", "approve"],
    )
    db = apps["grants"].extensions["kube"].db
    with db.transaction() as session:
        assert [b for b in verify_chains(session) if str(b.grant_id) == grant["id"]] == []
        session.execute(
            update(AuditRecord)
            .where(AuditRecord.grant_id == grant["id"], AuditRecord.seq == 3)
            .values(comment="Disetujui tanpa verifikasi")
        )
        broken = [b for b in verify_chains(session) if str(b.grant_id) == grant["id"]]
    assert [(b.seq, b.reason) for b in broken] == [
        (3, "its content was changed after it was written")
    ]


def test_a_removed_record_breaks_the_chain(clients, auth, apps):
    office = Office(clients["grants"], auth)
    grant = walk(
        office, office.apply(office.program()["id"], announce_group(apps)), ["submit", "verify"]
    )
    db = apps["grants"].extensions["kube"].db
    with db.transaction() as session:
        record = session.scalar(
            select(AuditRecord).where(AuditRecord.grant_id == grant["id"], AuditRecord.seq == 2)
        )
        session.delete(record)
        session.flush()
        broken = [b for b in verify_chains(session) if str(b.grant_id) == grant["id"]]
    assert [(b.seq, b.reason) for b in broken] == [(3, "record 2 is missing")]


@pytest.mark.commits
def test_verify_audit_reports_the_first_broken_link_and_fails(clients, auth, apps):
    office = Office(clients["grants"], auth)
    grant = walk(
        office,
        office.apply(office.program()["id"], announce_group(apps, region_code=ELSEWHERE)),
        ["submit"],
    )
    runner = CliRunner()
    intact = runner.invoke(grants_command, ["verify-audit"])
    assert intact.exit_code == 0, intact.output
    assert "intact" in intact.output
    db = apps["grants"].extensions["kube"].db
    with db.transaction() as session:
        original = session.scalar(
            select(AuditRecord.actor).where(
                AuditRecord.grant_id == grant["id"], AuditRecord.seq == 2
            )
        )
        session.execute(
            update(AuditRecord)
            .where(AuditRecord.grant_id == grant["id"], AuditRecord.seq == 2)
            .values(actor="someone-else")
        )
    try:
        tampered = runner.invoke(grants_command, ["verify-audit"])
        assert tampered.exit_code == 1
        assert f"grant {grant['id']}: record 2 is broken" in tampered.output
    finally:
        with db.transaction() as session:
            session.execute(
                update(AuditRecord)
                .where(AuditRecord.grant_id == grant["id"], AuditRecord.seq == 2)
                .values(actor=original)
            )


def test_a_record_removed_from_the_end_is_caught(clients, auth, apps):
    office = Office(clients["grants"], auth)
    grant = walk(
        office, office.apply(office.program()["id"], announce_group(apps)), ["submit", "verify"]
    )
    db = apps["grants"].extensions["kube"].db
    with db.transaction() as session:
        last = session.scalar(
            select(AuditRecord).where(AuditRecord.grant_id == grant["id"], AuditRecord.seq == 3)
        )
        session.delete(last)
        session.flush()
        broken = [b for b in verify_chains(session) if str(b.grant_id) == grant["id"]]
    assert [b.seq for b in broken] == [3]
    assert "missing from its end" in broken[0].reason
