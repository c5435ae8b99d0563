"""Events the registry consumes: `grant.disbursed` from the grant service, kept as the date
each group's grant was paid (the revenue report compares the visits before and after it)."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.registry.models import GrantDisbursement
from shared.events.consumer import Handler


def record_disbursement(session: Session, payload: dict, envelope: dict) -> None:
    """Keep the grant's transfer date; a grant is paid once, so the first copy stands."""
    session.execute(
        insert(GrantDisbursement)
        .values(
            grant_id=payload["grant"]["grant_id"],
            group_id=payload["grant"]["group_id"],
            disbursed_on=payload["transfer_date"],
        )
        # A second event for the same grant (not one event redelivered: the inbox stops
        # that) changes nothing: the first transfer date is the one that splits the visits.
        .on_conflict_do_nothing(index_elements=["grant_id"])
    )


HANDLERS: dict[str, Handler] = {"grant.disbursed": record_disbursement}
