"""The named guards and effects a workflow definition may use, each a plain function of the
application and the step being taken. A definition names them; this table is their code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.grants import budget
from services.grants.models import FINAL_STAGES, Grant, GroupProjection, Program
from shared.scope import RegionScope
from shared.shapes import OFFICER_ROLES
from shared.workflow import Guard, GuardFailure


@dataclass
class Step:
    """What guards and effects see of one action on one application."""

    session: Session
    program: Program
    group: GroupProjection | None
    actor: str
    roles: frozenset[str]
    scope: RegionScope
    now: datetime
    data: dict = field(default_factory=dict)
    documents: tuple[str, ...] = ()


def rp(amount: int) -> str:
    """Rupiah as offices print it: `Rp 2.000.000`."""
    return "Rp " + f"{amount:,}".replace(",", ".")


def _fail(message: str, message_id: str, field: str | None = None) -> list[GuardFailure]:
    return [GuardFailure(message=message, message_id=message_id, field=field)]


def group_known(grant: Grant, step: Step) -> list[GuardFailure]:
    if step.group is not None:
        return []
    return _fail(
        "The registry has not announced this group to the grant service (yet).",
        "Kelompok ini belum tercatat di layanan bantuan (data registrasi belum diterima).",
        "group_id",
    )


def group_active(grant: Grant, step: Step) -> list[GuardFailure]:
    if step.group is None or step.group.status == "active":
        return []
    return _fail(
        f"The group is {step.group.status}; only an active group may receive a grant.",
        f"Status kelompok {step.group.status}; hanya kelompok aktif yang dapat menerima bantuan.",
        "group_id",
    )


def member_count(grant: Grant, step: Step) -> list[GuardFailure]:
    if step.group is None:
        return []
    count, low, high = step.group.member_count, step.program.min_members, step.program.max_members
    if low <= count <= high:
        return []
    return _fail(
        f"The programme takes groups of {low} to {high} member families; this one has {count}.",
        f"Program ini untuk kelompok beranggotakan {low} sampai {high} KK; kelompok ini {count}.",
        "group_id",
    )


def officers_complete(grant: Grant, step: Step) -> list[GuardFailure]:
    if step.group is None:
        return []
    officers = step.group.officers or {}
    missing = [role for role in OFFICER_ROLES if role not in officers]
    if not missing:
        return []
    names = ", ".join(missing)
    return _fail(
        f"The group's officers are incomplete: no {names}.",
        f"Pengurus kelompok belum lengkap: belum ada {names}.",
        "group_id",
    )


def bank_account_known(grant: Grant, step: Step) -> list[GuardFailure]:
    account = (step.group.bank_account if step.group else None) or {}
    if account.get("account_number") and account.get("account_holder"):
        return []
    return _fail(
        "The registry holds no bank account for the group; the grant is paid only to it.",
        "Rekening bank kelompok belum tercatat di registrasi; bantuan hanya ditransfer ke "
        "rekening kelompok.",
        "group_id",
    )


def program_open(grant: Grant, step: Step) -> list[GuardFailure]:
    if step.program.status == "open":
        return []
    return _fail(
        "The programme is closed for applications.",
        "Program ini sudah ditutup untuk pengajuan.",
        "program_id",
    )


def program_region(grant: Grant, step: Step) -> list[GuardFailure]:
    region = step.program.region_code
    if step.group is None:
        return []
    village = step.group.region_code
    if region is None or village.startswith(region):
        return []
    return _fail(
        f"The programme serves region {region}; the group lives in {village}.",
        f"Program ini untuk wilayah {region}; kelompok berada di {village}.",
        "program_id",
    )


def one_open_application(grant: Grant, step: Step) -> list[GuardFailure]:
    others = step.session.scalar(
        select(func.count())
        .select_from(Grant)
        .where(
            Grant.program_id == grant.program_id,
            Grant.group_id == grant.group_id,
            Grant.id != grant.id,
            Grant.stage.not_in(FINAL_STAGES),
        )
    )
    if not others:
        return []
    return _fail(
        "The group already has an open application in this programme.",
        "Kelompok ini sudah memiliki pengajuan yang masih berjalan pada program ini.",
        "group_id",
    )


def amount_limit(program: Program, group: GroupProjection | None) -> int | None:
    """The most the programme's rule gives this group (None while the group is unknown)."""
    if program.amount_rule == "per_group":
        return program.amount
    if group is None:
        return None
    return program.amount * group.member_count


def amount_within_rule(grant: Grant, step: Step) -> list[GuardFailure]:
    limit = amount_limit(step.program, step.group)
    if limit is None or grant.amount <= limit:
        return []
    return _fail(
        f"The programme's rule allows this group at most {rp(limit)}; asked {rp(grant.amount)}.",
        f"Aturan program membolehkan paling banyak {rp(limit)} untuk kelompok ini; diajukan "
        f"{rp(grant.amount)}.",
        "amount",
    )


def budget_available(grant: Grant, step: Step) -> list[GuardFailure]:
    available = budget.available(step.program)
    if grant.amount <= available:
        return []
    return _fail(
        f"The programme's budget has {rp(available)} left; the grant needs {rp(grant.amount)}.",
        f"Sisa anggaran program {rp(available)}; bantuan ini memerlukan {rp(grant.amount)}.",
        "amount",
    )


def separation_of_duties(grant: Grant, step: Step) -> list[GuardFailure]:
    if step.actor not in (grant.submitted_by, grant.verified_by):
        return []
    return _fail(
        "Whoever submitted or verified an application may not approve it.",
        "Pengaju atau verifikator suatu usulan tidak boleh menyetujuinya.",
    )


def submitter_only(grant: Grant, step: Step) -> list[GuardFailure]:
    if step.actor == (grant.submitted_by or grant.created_by):
        return []
    return _fail(
        "Only whoever submitted the application may cancel it.",
        "Hanya pengaju yang dapat membatalkan usulan ini.",
    )


def documents_complete(grant: Grant, step: Step) -> list[GuardFailure]:
    checklist = step.data.get("checklist", {})
    failures: list[GuardFailure] = []
    for document in step.documents:
        if checklist.get(document) is not True:
            failures += _fail(
                f"The document {document} is missing or not in order.",
                f"Dokumen {document} belum ada atau belum sesuai.",
                f"data.checklist.{document}",
            )
    return failures


def amount_matches(grant: Grant, step: Step) -> list[GuardFailure]:
    amount = step.data.get("amount")
    if amount == grant.amount:
        return []
    return _fail(
        f"The transfer of {rp(amount)} differs from the approved {rp(grant.amount)}.",
        f"Jumlah transfer {rp(amount)} berbeda dengan yang disetujui {rp(grant.amount)}.",
        "data.amount",
    )


def province_office(grant: Grant, step: Step) -> list[GuardFailure]:
    # The recommendation on the national route is the province office's: a token for one
    # province (or nationwide), not a regency's.
    if len(step.scope.prefix) in (0, 2):
        return []
    return _fail(
        "The recommendation is the province office's: a token for a province is needed.",
        "Rekomendasi diberikan oleh dinas sosial provinsi: diperlukan akses tingkat provinsi.",
    )


GUARDS: dict[str, Guard] = {
    g.__name__: Guard(g.__name__, g)
    for g in (
        group_known,
        group_active,
        member_count,
        officers_complete,
        bank_account_known,
        program_open,
        program_region,
        one_open_application,
        amount_within_rule,
        budget_available,
        separation_of_duties,
        submitter_only,
        documents_complete,
        amount_matches,
        province_office,
    )
}


def reserve_budget(grant: Grant, step: Step) -> None:
    budget.reserve(step.session, step.program, grant)


def release_budget(grant: Grant, step: Step) -> None:
    budget.release(step.session, step.program, grant)


def disburse_budget(grant: Grant, step: Step) -> None:
    budget.disburse(step.session, step.program, grant)


EFFECTS: dict[str, Callable[[Grant, Step], None]] = {
    e.__name__: e for e in (reserve_budget, release_budget, disburse_budget)
}
# Effects that move a programme's counters: the programme row is locked before their guards.
BUDGET_EFFECTS = frozenset(EFFECTS)
