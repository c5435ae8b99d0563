"""The physical baseline a service's figures are set beside: a bare Flask app whose routes do
one primary-key SELECT (or one primary-key UPDATE and commit) of a table, on the same
PostgreSQL, driver and pool settings as the services, served by the same gunicorn. Nothing
else: no token, no schema, no ORM, no access log.

`/rows/<id>` reads through SQLAlchemy Core in a transaction, as most service code does.
`/lean/rows/<id>` is the leanest a read can be: an autocommit connection from the pool, the
statement prepared, straight through the driver, as the registry's busiest reads now go
(`Database.reading`, services/registry/reads.py); it is their baseline.

    BASELINE_DATABASE_URL=postgresql://... BASELINE_TABLE=grants \
        python -m gunicorn ... "baseline:create_app()"   # from bench/
"""

from __future__ import annotations

import os

from flask import Flask, abort, jsonify
from psycopg.rows import dict_row
from sqlalchemy import bindparam, column, select, table, text, update

from shared.config import sqlalchemy_url
from shared.db import Database, driver_cursor


def create_app() -> Flask:
    """The bare app on $BASELINE_DATABASE_URL, reading and touching rows of $BASELINE_TABLE."""
    db = Database(sqlalchemy_url(os.environ["BASELINE_DATABASE_URL"]))
    name = os.environ.get("BASELINE_TABLE", "grants")
    if not name.isidentifier():
        raise ValueError(f"not a table name: {name!r}")
    rows = table(name, column("id"))
    read_row = select(text("*")).select_from(rows).where(rows.c.id == bindparam("row_id"))
    # Sets the key to itself: a real row write (new tuple version, WAL, commit) that changes
    # no value, so the rows stay as the service left them.
    touch_row = (
        update(rows)
        .where(rows.c.id == bindparam("row_id"))
        .values(id=rows.c.id)
        .returning(rows.c.id)
    )
    lean_read_row = f"SELECT * FROM {name} WHERE id = %(row_id)s"  # noqa: S608 (checked name)
    app = Flask(__name__)

    @app.get("/readyz")
    def readyz():
        db.ping()
        return jsonify(status="ready")

    @app.get("/rows/<uuid:row_id>")
    def read(row_id):
        with db.engine.connect() as connection:
            row = connection.execute(read_row, {"row_id": row_id}).mappings().first()
        if row is None:
            abort(404)
        return jsonify(dict(row))

    @app.get("/lean/rows/<uuid:row_id>")
    def read_lean(row_id):
        with (
            db.reading() as connection,
            driver_cursor(connection, row_factory=dict_row) as cursor,
        ):
            row = cursor.execute(lean_read_row, {"row_id": row_id}).fetchone()
        if row is None:
            abort(404)
        return jsonify(row)

    @app.post("/rows/<uuid:row_id>/touch")
    def touch(row_id):
        with db.engine.begin() as connection:
            found = connection.execute(touch_row, {"row_id": row_id}).scalar()
        if found is None:
            abort(404)
        return jsonify(id=found)

    return app
