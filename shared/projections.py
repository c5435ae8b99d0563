"""Keeping another service's state as a local copy that only ever moves forward."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.errors import PermanentError

# A snapshot this far ahead of the stored one is no real history: one such event would
# freeze the projection, since every genuine later snapshot would look older.
MAX_VERSION_JUMP = 10_000


def upsert_if_newer(session: Session, model: type, values: dict, key: str = "id") -> bool:
    """Insert or update a projected row unless the stored one has the same or a newer
    `version`; return whether the row changed (events may arrive out of order). A version
    implausibly far ahead is refused (PermanentError: dead-lettered, where it is seen).

    One statement when the row changes (every event in order): the stored version is read
    only when it did not, to tell a late snapshot from an implausible one."""
    statement = insert(model).values(**values)
    version = model.version
    statement = statement.on_conflict_do_update(
        index_elements=[key],
        set_={k: statement.excluded[k] for k in values if k != key},
        where=(version < statement.excluded.version)
        & (statement.excluded.version <= version + MAX_VERSION_JUMP),
    ).returning(getattr(model, key))
    if session.execute(statement).first() is not None:
        return True
    stored = session.scalar(select(version).where(getattr(model, key) == values[key]))
    if stored is not None and values["version"] > stored + MAX_VERSION_JUMP:
        raise PermanentError(f"version {values['version']} jumps implausibly far ahead of {stored}")
    return False
