"""SQLAlchemy engine and sessions for one service's own database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, scoped_session, sessionmaker


def utcnow() -> datetime:
    return datetime.now(UTC)


# Executions of one statement on a connection after which `Database.reading` prepares it.
READ_PREPARE_THRESHOLD = 1
# A pooled connection idle this long is pinged before it is used again.
PING_AFTER_IDLE_SECONDS = 5.0


def ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it has been idle a while, so a worker or
    API that idled through a database restart reconnects instead of failing, while a busy one
    spends no round trip on it (a statement is half a millisecond here; `pool_pre_ping`
    would add one to every transaction). A connection that breaks while busy fails its
    statement once: the API answers 503 with Retry-After, a task retries, and the pool
    replaces every connection older than the failure."""

    @event.listens_for(engine, "checkin")
    def remember_when(dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection, record, proxy) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and checks out another (a new one if need be).
            raise DisconnectionError(f"idle connection lost: {exc}") from exc


def driver_cursor(executor: Connection | Session, **kwargs) -> psycopg.Cursor:
    """A psycopg cursor on the connection under `executor` (a session's: in its transaction),
    for what SQLAlchemy cannot do (COPY) or does too slowly (the busiest reads). `kwargs` go
    to `psycopg.Connection.cursor` (e.g. `row_factory`). Use it in a `with` block."""
    connection = executor.connection() if isinstance(executor, Session) else executor
    return connection.connection.driver_connection.cursor(**kwargs)


class Database:
    """One service's engine, a session per request/thread, and short transactions for tasks."""

    def __init__(self, url: str, *, pool_size: int = 5):
        self.engine = create_engine(
            url,
            # A failed statement's error (and so the log) never shows its parameters: names,
            # birth dates, bank accounts.
            hide_parameters=True,
            pool_size=pool_size,
            max_overflow=10,
            # No server-side prepared statements: a generic plan made while a table was small
            # (the first groups of a bulk import) would stay with a pooled connection.
            connect_args={"prepare_threshold": None},
        )
        ping_when_idle(self.engine)
        # expire_on_commit=False: handlers serialise objects after commit without a reload.
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.session = scoped_session(self.sessionmaker)
        # For a statement that is atomic by itself: no BEGIN and COMMIT round trips around it.
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._joined = False

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A new session whose work commits on success and rolls back on error."""
        with self.sessionmaker.begin() as session:
            yield session

    @contextmanager
    def autocommit(self) -> Iterator[Session]:
        """A session whose every statement commits by itself, for work that is one atomic
        statement (it saves the two round trips of BEGIN and COMMIT). Under `rolled_back`, an
        ordinary transaction of the test's."""
        if self._joined:
            with self.transaction() as session:
                yield session
            return
        with Session(self._autocommit, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def reading(self, *, prepared: bool = True) -> Iterator[Connection]:
        """A connection in autocommit for reads that are one statement each: no session, no
        ORM unit of work, no BEGIN or ROLLBACK (the busiest reads are one round trip). Under
        `rolled_back`, the test's transaction, so the read sees the test's data.

        `prepared`: the statements are prepared on a connection's second use, so PostgreSQL
        plans each once instead of on every request (planning a group read costs more than
        running it). Only for statements whose plan does not depend on their values (a key
        looked up); a region prefix (`LIKE :pattern`) needs the plan made for its value,
        which a generic plan of a prepared statement is not."""
        if self._joined:
            with self.transaction() as session:
                yield session.connection()
            return
        with self._autocommit.connect() as connection:
            if not prepared:
                yield connection
                return
            driver = connection.connection.driver_connection
            # Only here: other work (a bulk import) is planned afresh.
            driver.prepare_threshold = READ_PREPARE_THRESHOLD
            try:
                yield connection
            finally:
                driver.prepare_threshold = None

    @contextmanager
    def rolled_back(self) -> Iterator[None]:
        """Tests: every session of this database joins one transaction that is rolled back at
        the end, so each test starts from the same data (a commit only releases a savepoint)."""
        connection = self.engine.connect()
        outer = connection.begin()
        self.session.remove()
        self.sessionmaker.configure(bind=connection, join_transaction_mode="create_savepoint")
        self._joined = True
        try:
            yield
        finally:
            self._joined = False
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
