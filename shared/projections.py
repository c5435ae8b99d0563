"""Keeping another service's state as a local copy that only ever moves forward."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session


def upsert_if_newer(session: Session, model: type, values: dict, key: str = "id") -> bool:
    """Insert or update a projected row unless the stored one has the same or a newer
    `version`; return whether the row changed (events may arrive out of order)."""
    statement = insert(model).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[key],
        set_={k: statement.excluded[k] for k in values if k != key},
        where=model.version < statement.excluded.version,
    ).returning(getattr(model, key))
    return session.execute(statement).first() is not None
