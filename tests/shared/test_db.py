"""The connection pool against a real PostgreSQL: a connection that died while idle is replaced
before use; one that dies while busy fails one statement, and the next one works."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from shared import db as db_module
from shared.config import sqlalchemy_url
from shared.db import Database, driver_cursor


@pytest.fixture
def database(postgres_server):
    database = Database(sqlalchemy_url(postgres_server), pool_size=1)
    yield database
    database.dispose()


def backend_pid(database: Database) -> int:
    with database.transaction() as session:
        return session.execute(text("SELECT pg_backend_pid()")).scalar_one()


def terminate(postgres_server: str, pid: int) -> None:
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_connection_that_died_while_idle_is_replaced_before_use(
    database, postgres_server, monkeypatch
):
    first = backend_pid(database)
    terminate(postgres_server, first)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has idled long enough
    second = backend_pid(database)
    assert second != first


def test_a_connection_that_died_while_busy_fails_once_then_the_pool_recovers(
    database, postgres_server
):
    first = backend_pid(database)
    terminate(postgres_server, first)
    with pytest.raises(OperationalError) as lost:
        backend_pid(database)  # used at once: not pinged, so its statement meets the loss
    assert lost.value.connection_invalidated
    assert backend_pid(database) != first


def test_reads_prepare_their_statements_and_the_pooled_connection_forgets_it(database):
    probe = text("SELECT count(*) FROM pg_prepared_statements")
    statement = text("SELECT 1 + :n")
    with database.reading() as connection:
        for n in range(3):
            assert connection.execute(statement, {"n": n}).scalar_one() == n + 1
        prepared = connection.execute(probe).scalar_one()
        driver = connection.connection.driver_connection
    assert prepared >= 1  # planned once on this connection, not on every request
    # Back in the pool (pool_size=1: the same connection), other work is planned afresh.
    assert driver.prepare_threshold is None
    with database.transaction() as session:
        assert session.connection().connection.driver_connection is driver
        before = session.execute(probe).scalar_one()
        session.execute(text("SELECT 2 + :n"), {"n": 1})
        session.execute(text("SELECT 2 + :n"), {"n": 1})
        assert session.execute(probe).scalar_one() == before


def test_a_driver_cursor_works_in_the_session_transaction_and_on_a_reading_connection(database):
    with database.transaction() as session:
        session.execute(text("CREATE TEMPORARY TABLE probe (n int) ON COMMIT DROP"))
        with driver_cursor(session) as cursor, cursor.copy("COPY probe (n) FROM STDIN") as copy:
            copy.write_row((7,))
        # The COPY went into the session's own transaction: the session sees its row.
        assert session.execute(text("SELECT n FROM probe")).scalar_one() == 7
    with (
        database.reading() as connection,
        driver_cursor(connection, row_factory=dict_row) as cursor,
    ):
        assert cursor.execute("SELECT 1 AS one").fetchall() == [{"one": 1}]
