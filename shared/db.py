"""SQLAlchemy engine and sessions for one service's own database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session, scoped_session, sessionmaker


def utcnow() -> datetime:
    return datetime.now(UTC)


class Database:
    """One service's engine, a session per request/thread, and short transactions for tasks."""

    def __init__(self, url: str, *, pool_size: int = 5):
        # pre_ping: a worker that idled through a database restart reconnects instead of failing.
        self.engine = create_engine(
            url,
            pool_pre_ping=True,
            # A failed statement's error (and so the log) never shows its parameters: names,
            # birth dates, bank accounts.
            hide_parameters=True,
            pool_size=pool_size,
            max_overflow=10,
            # No server-side prepared statements: a generic plan made while a table was small
            # (the first groups of a bulk import) would stay with a pooled connection.
            connect_args={"prepare_threshold": None},
        )
        # expire_on_commit=False: handlers serialise objects after commit without a reload.
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.session = scoped_session(self.sessionmaker)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A new session whose work commits on success and rolls back on error."""
        with self.sessionmaker.begin() as session:
            yield session

    @contextmanager
    def rolled_back(self) -> Iterator[None]:
        """Tests: every session of this database joins one transaction that is rolled back at
        the end, so each test starts from the same data (a commit only releases a savepoint)."""
        connection = self.engine.connect()
        outer = connection.begin()
        self.session.remove()
        self.sessionmaker.configure(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield
        finally:
            self.session.remove()
            self.sessionmaker.configure(
                bind=self.engine, join_transaction_mode="conditional_savepoint"
            )
            outer.rollback()
            connection.close()

    def on_commit(self, callback) -> None:
        """Call `callback(session)` after every commit of this database's sessions."""
        event.listen(self.sessionmaker, "after_commit", callback)

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.session.remove()
        self.engine.dispose()
