"""Registry benchmark: bulk-import speed and HTTP read speed on a realistic data set.

Creates its own database, loads the Kemendagri region table, generates a CSV of groups and
members, imports it through the worker's code path (in this process, without Celery), then
starts the registry under gunicorn on a loopback port and measures three read requests.
Every figure is printed, and a Markdown table of all of them closes the output.

    .venv/bin/python bench/registry.py --help
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import logging
import math
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from kube.catalogue import app_target
from kube.localinfra import (
    create_database,
    database_url,
    drop_database,
    free_port,
    redis_answers,
    start_embedded_postgres,
    start_private_redis,
)
from kube.localrun import gunicorn_command
from services.registry import create_app
from services.registry.groups import Rules
from services.registry.import_run import process_import
from services.registry.imports import create_import
from services.registry.models import Group, Import, Member
from services.registry.regions import RegionRow, load_regions, read_region_csv
from services.registry.service import SERVICE as REGISTRY
from shared.auth import issue_token
from shared.migrate import upgrade
from shared.scope import NATIONWIDE
from shared.service import ServiceContext

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REGIONS = ROOT.parent / "shared" / "data" / "wilayah-2025.csv"
OFFICERS = ("ketua", "sekretaris", "bendahara")
SCENARIOS = ("read group", "list regency", "find member by NIK")
# PostgreSQL application names of the in-process importer's and gunicorn's connections.
IMPORTER = "kube-bench-importer"
SERVER = "kube-bench-gunicorn"
# PostgreSQL's default autovacuum_naptime: how often autoanalyze looks at a changing table.
AUTOVACUUM_NAPTIME = 60.0

# Common Indonesian first names by gender, family names, and what KUBE groups make or do.
# fmt: off
MALE_NAMES = (
    "Agus", "Ahmad", "Andi", "Arif", "Bambang", "Budi", "Dedi", "Dwi", "Eko", "Fajar", "Hadi",
    "Hendra", "Imam", "Joko", "Kurniawan", "Made", "Muhammad", "Nur", "Putu", "Rahmat", "Rizky",
    "Slamet", "Sugeng", "Suparman", "Teguh", "Wahyu", "Yusuf",
)
FEMALE_NAMES = (
    "Ani", "Ayu", "Dewi", "Endang", "Fitri", "Indah", "Kartini", "Lestari", "Maria", "Ningsih",
    "Nur", "Putri", "Ratna", "Rina", "Siti", "Sri", "Suryani", "Tuti", "Wati", "Wulan", "Yanti",
    "Yuli",
)
FAMILY_NAMES = (
    "Hidayat", "Saputra", "Setiawan", "Nugroho", "Wijaya", "Santoso", "Pratama", "Siregar",
    "Nasution", "Lubis", "Simanjuntak", "Harahap", "Hutapea", "Purba", "Sitompul", "Lestari",
    "Susanti", "Rahayu", "Wulandari", "Handayani", "Kusuma", "Gunawan", "Halim", "Tanjung",
    "Daulay", "Manurung", "Sembiring", "Ginting", "Tarigan", "Pane",
)
BUSINESS_TYPES = (
    "tempe", "tahu", "kerupuk", "keripik singkong", "warung sembako", "jahit", "batik",
    "anyaman bambu", "kue basah", "ternak ayam", "ternak kambing", "budidaya lele", "kopi bubuk",
    "bengkel motor", "sayur organik", "gula aren",
)
GROUP_WORDS = (
    "Maju Bersama", "Sejahtera", "Mandiri", "Sumber Rezeki", "Harapan Baru", "Berkah",
    "Makmur Jaya", "Karya Usaha", "Mekar Sari", "Gotong Royong",
)
STREETS = ("Jl. Merdeka", "Jl. Pahlawan", "Jl. Sudirman", "Jl. Diponegoro", "Gg. Mawar")
# Mobile prefixes of the big operators; each passes the registry's phone check.
PHONE_PREFIXES = (
    "0811", "0812", "0813", "0821", "0822", "0823", "0852", "0853", "0856", "0857", "0858",
    "0877", "0878", "0881", "0895", "0896",
)
# fmt: on
CSV_COLUMNS = (
    "group_name",
    "village_code",
    "address",
    "business_type",
    "founded_on",
    "nik",
    "kk_number",
    "name",
    "gender",
    "birth_date",
    "phone",
    "role",
)


# --- Options --------------------------------------------------------------------------------


def add_server_arguments(parser: argparse.ArgumentParser, *, redis: str | None = "") -> None:
    """--database-url, and --redis-url unless `redis` is None, as every bench script takes
    them; `redis`: what the script does with its keys, added to that option's help."""
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL"),
        help="PostgreSQL server URL (any database on it); default $BENCH_DATABASE_URL, else "
        "$TEST_DATABASE_URL, else an embedded PostgreSQL in .local/bench-postgres",
    )
    if redis is not None:
        parser.add_argument(
            "--redis-url",
            default=os.environ.get("REDIS_URL"),
            help="Redis URL; default $REDIS_URL if it answers, else a private Redis"
            + (f" ({redis})" if redis else ""),
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with every default documented in --help."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--groups", type=int, default=20_000, help="groups to import (default %(default)s)"
    )
    parser.add_argument(
        "--members-per-group",
        type=int,
        default=10,
        help="members per group: a ketua, a sekretaris, a bendahara, the rest anggota "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=3000,
        help="measured requests per scenario (default %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="client threads, each with its own session (default %(default)s)",
    )
    parser.add_argument(
        "--gunicorn-workers",
        type=int,
        default=2,
        help="gunicorn sync workers (default %(default)s)",
    )
    add_server_arguments(parser)
    parser.add_argument(
        "--regions",
        type=Path,
        default=DEFAULT_REGIONS,
        help="Kemendagri region CSV (default %(default)s); when absent, structurally valid codes "
        "for a few districts are synthesised",
    )
    parser.add_argument(
        "--seed", type=int, default=2025, help="seed of the generated data (default %(default)s)"
    )
    parser.add_argument(
        "--no-autoanalyze",
        action="store_true",
        help="when the server's autovacuum is off, do not ANALYZE during the import as "
        "autovacuum would (shows the import on statistics that never change)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the database (and the gunicorn log) afterwards"
    )
    add_http_arguments(parser)
    args = parser.parse_args(argv)
    for name in ("groups", "members_per_group", "requests", "concurrency", "gunicorn_workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


# --- Output ---------------------------------------------------------------------------------


@dataclass
class Report:
    """The figures gathered so far, printed as they come and as one table at the end."""

    rows: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def figure(self, name: str, value: str) -> None:
        self.rows.append((name, value))
        print(f"    {name}: {value}", flush=True)

    def note(self, message: str) -> None:
        self.notes.append(message)
        print(f"    NOTE: {message}", flush=True)


@contextmanager
def step(title: str) -> Iterator[None]:
    """Print a step's title, then its duration when it ends."""
    print(f"\n== {title}", flush=True)
    started = time.perf_counter()
    yield
    print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)


def rate(count: int, seconds: float) -> str:
    """`count` per second, rounded, with thousands separators."""
    return f"{count / max(seconds, 1e-9):,.0f}"


# --- Infrastructure -------------------------------------------------------------------------


def postgres_server(url: str | None) -> str:
    """The given PostgreSQL server, else an embedded one kept in .local/bench-postgres."""
    if url:
        return url
    print("    starting embedded PostgreSQL in .local/bench-postgres", flush=True)
    return start_embedded_postgres(ROOT / ".local" / "bench-postgres")


def redis_server(url: str | None, stack: ExitStack) -> str:
    """The given Redis if it answers, else a private one stopped when `stack` closes."""
    if url and redis_answers(url):
        return url
    reason = f"Redis at {url} does not answer" if url else "REDIS_URL is not set"
    print(f"    {reason}; starting a private Redis", flush=True)
    data_dir = Path(tempfile.mkdtemp(prefix="kube-bench-redis-"))
    process, private_url = start_private_redis(data_dir, persist=False)
    stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
    stack.callback(stop_process, process)
    return private_url


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    """Ask a child process to stop, and kill it if it does not."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def bench_environment(db_url: str, redis_url: str, port: int, run_id: str) -> dict[str, str]:
    """The registry's settings for this run: own database, queues and signing secret."""
    return {
        "REGISTRY_DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "KUBE_JWT_SECRET": secrets.token_hex(32),
        "KUBE_DATA_KEYS": "bench:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "KUBE_LOOKUP_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "KUBE_QUEUE_PREFIX": f"kubebench-{run_id}",
        "REGISTRY_PORT": str(port),
        # Empty means unset: our HS256 tokens carry no audience or issuer to check.
        "KUBE_JWT_AUDIENCE": "",
        "KUBE_JWT_ISSUER": "",
    }


# --- Regions --------------------------------------------------------------------------------


def synthetic_regions() -> list[RegionRow]:
    """Structurally valid codes for a handful of districts, when the real table is absent."""
    districts = ("647201", "647202", "350701", "350702", "320101", "730101", "110101")
    rows: dict[str, RegionRow] = {}
    for district in districts:
        province, regency = district[:2], district[:4]
        rows.setdefault(province, RegionRow(province, f"Provinsi {province}", "province", None))
        rows.setdefault(regency, RegionRow(regency, f"Kabupaten {regency}", "regency", province))
        rows[district] = RegionRow(district, f"Kecamatan {district}", "district", regency)
        for serial in (*range(1001, 1006), *range(2001, 2021)):
            code = f"{district}{serial}"
            rows[code] = RegionRow(code, f"Desa Sintetis {serial}", "village", district)
    return list(rows.values())


def region_rows(path: Path, report: Report) -> list[RegionRow]:
    """The region table from `path`, else a synthetic one (and a note saying so)."""
    if path.is_file():
        return read_region_csv(path)
    report.note(f"{path} is absent; using synthetic region codes for 7 districts")
    return synthetic_regions()


# --- Data set -------------------------------------------------------------------------------


@dataclass
class DataSet:
    """The generated import file and what the benchmark later looks up in it."""

    content: bytes
    rows: int
    niks: list[str]


class PersonFactory:
    """Members whose NIK, gender and birth date agree, every NIK unique."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        # Serials count up per district, birth date and gender: unique without bookkeeping.
        self.serials: Counter[str] = Counter()

    def nik(self, district: str, gender: str, birth: date) -> str:
        day = birth.day + (40 if gender == "F" else 0)
        prefix = f"{district}{day:02d}{birth.month:02d}{birth.year % 100:02d}"
        self.serials[prefix] += 1
        if self.serials[prefix] > 9999:
            raise RuntimeError(f"more than 9999 people share the NIK prefix {prefix}")
        return f"{prefix}{self.serials[prefix]:04d}"

    def person(self, district: str, role: str) -> dict[str, str]:
        rng = self.rng
        gender = rng.choice("MF")
        # Adults born 1960-2004; day 1-28 is valid in every month. Two-digit years 60-99
        # and 00-04 resolve to these centuries, as the NIK check reads them.
        birth = date(rng.randint(1960, 2004), rng.randint(1, 12), rng.randint(1, 28))
        first = rng.choice(MALE_NAMES if gender == "M" else FEMALE_NAMES)
        return {
            "nik": self.nik(district, gender, birth),
            "kk_number": f"{district}{rng.randint(10**9, 10**10 - 1)}",
            "name": f"{first} {rng.choice(FAMILY_NAMES)}",
            "gender": gender,
            "birth_date": birth.isoformat(),
            "phone": f"{rng.choice(PHONE_PREFIXES)}{rng.randint(10**7, 10**8 - 1)}",
            "role": role,
        }


def member_roles(count: int) -> list[str]:
    """One ketua, one sekretaris, one bendahara, then anggota."""
    return [OFFICERS[i] if i < len(OFFICERS) else "anggota" for i in range(count)]


def generate_csv(
    villages: list[RegionRow], groups: int, members: int, rng: random.Random
) -> DataSet:
    """An import CSV: groups in random real villages, every member in the group's village."""
    people = PersonFactory(rng)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    niks: list[str] = []
    roles = member_roles(members)
    today = date.today()
    for number in range(1, groups + 1):
        village = rng.choice(villages)
        business = rng.choice(BUSINESS_TYPES)
        # The running number keeps names unique per village, so no group counts as unchanged.
        group = {
            "group_name": f"KUBE {business.title()} {rng.choice(GROUP_WORDS)} {number}",
            "village_code": village.code,
            "address": f"{rng.choice(STREETS)} No. {rng.randint(1, 200)}, {village.name}",
            "business_type": business,
            "founded_on": (today - timedelta(days=rng.randint(30, 3650))).isoformat(),
        }
        for role in roles:
            person = people.person(village.code[:6], role)
            niks.append(person["nik"])
            writer.writerow([{**group, **person}[column] for column in CSV_COLUMNS])
    return DataSet(buffer.getvalue().encode("utf-8"), groups * members, niks)


# --- Import ---------------------------------------------------------------------------------


@contextmanager
def repeating(every: float, action: Callable[[], None]) -> Iterator[None]:
    """Call `action` every `every` seconds in a background thread while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            action()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def progress_printer(db, import_id: uuid.UUID, total: int) -> Callable[[], None]:
    """A function printing the import's saved progress, as a long run otherwise looks hung."""
    started = time.perf_counter()

    def show() -> None:
        with db.engine.connect() as connection:
            done = connection.scalar(select(Import.processed_rows).where(Import.id == import_id))
        elapsed = time.perf_counter() - started
        print(
            f"    ... {done or 0:,}/{total:,} rows after {elapsed:.0f} s "
            f"({rate(done or 0, elapsed)} rows/s)",
            flush=True,
        )

    return show


def analyzer(db) -> Callable[[], None]:
    """A function refreshing the statistics of the tables the import reads, as autoanalyze would."""

    def analyze() -> None:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE groups, members"))

    return analyze


def run_import(
    context, data: DataSet, rules: Rules, expected_groups: int, autoanalyze: bool, report: Report
) -> float:
    """Upload check (create_import) then processing (process_import), as the worker runs it;
    the processing rate in rows/s."""
    started = time.perf_counter()
    with context.db.transaction() as session:
        import_id = create_import(
            session,
            filename="bench.csv",
            file=io.BytesIO(data.content),
            scope=NATIONWIDE,
            actor="bench",
        ).id
    seconds = time.perf_counter() - started
    report.figure("Import upload check (create_import)", f"{rate(data.rows, seconds)} rows/s")

    meter = CpuMeter(
        lambda: {
            "importer (this process)": [os.getpid()],
            "PostgreSQL": backend_pids(context, IMPORTER),
        }
    )
    children_before = os.times()
    started = time.perf_counter()
    with ExitStack() as helpers:
        helpers.enter_context(repeating(15, progress_printer(context.db, import_id, data.rows)))
        if autoanalyze:
            # Statistics change the plans of the queries that look for existing groups and
            # NIKs; see stand_in_for_autovacuum.
            helpers.enter_context(repeating(AUTOVACUUM_NAPTIME, analyzer(context.db)))
        process_import(context.db, context.outbox, import_id, rules)
    seconds = time.perf_counter() - started
    cpu = meter.summary()
    # A large file is prepared by a child process (import_prepare.py), waited for by this one.
    children_after = os.times()
    preparing = (children_after.children_user + children_after.children_system) - (
        children_before.children_user + children_before.children_system
    )
    cpu += f"; of the other processes, the import's preparing process {preparing:.1f} s"
    with context.db.transaction() as session:
        job = session.get(Import, import_id)
        report.figure(
            "Import processing (process_import)", f"{rate(job.processed_rows, seconds)} rows/s"
        )
        report.figure("Import processing, groups", f"{rate(job.groups_created, seconds)} groups/s")
        report.figure("Import processing time", f"{seconds:.1f} s")
        report.figure("CPU during the import", cpu)
        report.figure(
            "Import outcome",
            f"{job.status}: {job.groups_created:,} created, {job.groups_unchanged:,} unchanged, "
            f"{job.groups_rejected:,} rejected",
        )
        if job.status != "done" or job.groups_created != expected_groups or job.groups_rejected:
            report.note(
                f"the import did not create all {expected_groups:,} groups cleanly "
                f"(status {job.status}; error: {job.error})"
            )
        for entry in (job.row_errors or [])[:20]:
            print(f"    row error: {entry}", flush=True)
        return job.processed_rows / max(seconds, 1e-9)


@dataclass
class Baselines:
    """The physical limits the import is measured against: the same member rows written by
    psycopg's executemany (into a table shaped like `members` with its indexes and its
    foreign key, as the import must write them; and into a table with one index, the first
    baseline of issue #9) and by COPY."""

    rows: int
    executemany_seconds: float
    executemany_one_index_seconds: float
    copy_seconds: float
    copy_members_seconds: float

    @property
    def executemany_rate(self) -> float:
        return self.rows / max(self.executemany_seconds, 1e-9)

    @property
    def executemany_one_index_rate(self) -> float:
        return self.rows / max(self.executemany_one_index_seconds, 1e-9)

    @property
    def copy_rate(self) -> float:
        return self.rows / max(self.copy_seconds, 1e-9)

    @property
    def copy_members_rate(self) -> float:
        return self.rows / max(self.copy_members_seconds, 1e-9)


SCRATCH = "bench_members_scratch"
SCRATCH_GROUPS = "bench_groups_scratch"
SCRATCH_COLUMNS = (
    "id", "group_id", "nik_encrypted", "nik_hash", "kk_encrypted", "kk_hash", "name", "gender",
    "birth_date", "phone", "email", "language", "role", "village_code", "active", "version",
    "created_at", "updated_at",
)  # fmt: skip


def scratch_rows(data: DataSet) -> list[tuple]:
    """The file's member rows as the members table stores them (encrypted NIK and No. KK with
    their keyed hashes, E.164 phones), made before any clock starts."""
    from services.registry.models import KK_PURPOSE, NIK_PURPOSE, kk_lookup, nik_lookup
    from shared.encryption import data_keys

    keys = data_keys()
    now = datetime.now(UTC)
    group_ids: dict[tuple[str, str], uuid.UUID] = {}
    rows = []
    for record in csv.DictReader(io.StringIO(data.content.decode("utf-8"))):
        key = (record["group_name"], record["village_code"])
        group_id = group_ids.setdefault(key, uuid.uuid4())
        rows.append(
            (
                uuid.uuid4(),
                group_id,
                keys.encrypt_text(record["nik"], purpose=NIK_PURPOSE),
                nik_lookup(record["nik"]),
                keys.encrypt_text(record["kk_number"], purpose=KK_PURPOSE),
                kk_lookup(record["kk_number"]),
                record["name"],
                record["gender"],
                date.fromisoformat(record["birth_date"]),
                "+62" + record["phone"][1:],
                None,
                "id",
                record["role"],
                record["village_code"],
                True,
                1,
                now,
                now,
            )
        )
    return rows


def _scratch_table(connection, rows: list[tuple], *, like_members: bool) -> None:
    """An empty scratch table for the rows: with the members table's indexes (its primary key,
    the NIK and group indexes, the partial unique ones) and its foreign key to a table of the
    rows' group ids; or, as issue #9's first baseline, with its columns and one NIK index."""
    connection.execute(f"DROP TABLE IF EXISTS {SCRATCH}, {SCRATCH_GROUPS}")
    if not like_members:
        connection.execute(
            f"CREATE TABLE {SCRATCH} (LIKE members INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        connection.execute(f"CREATE INDEX ON {SCRATCH} (nik_hash)")
    else:
        connection.execute(f"CREATE TABLE {SCRATCH} (LIKE members INCLUDING ALL)")
        connection.execute(f"CREATE TABLE {SCRATCH_GROUPS} (id uuid PRIMARY KEY)")
        with connection.cursor().copy(f"COPY {SCRATCH_GROUPS} (id) FROM STDIN") as copy:
            for group_id in sorted({row[1] for row in rows}):
                copy.write_row((group_id,))
        connection.execute(
            f"ALTER TABLE {SCRATCH} ADD FOREIGN KEY (group_id) REFERENCES {SCRATCH_GROUPS} (id)"
        )
    connection.commit()


def measure_baselines(context, data: DataSet, report: Report) -> Baselines:
    """Time executemany and COPY of the import's member rows into scratch tables (each run
    starting from an empty table)."""
    import psycopg

    rows = scratch_rows(data)
    url = make_url(str(context.db.engine.url)).set(drivername="postgresql")
    columns = ", ".join(SCRATCH_COLUMNS)
    placeholders = ", ".join(["%s"] * len(SCRATCH_COLUMNS))
    insert = f"INSERT INTO {SCRATCH} ({columns}) VALUES ({placeholders})"  # noqa: S608

    def executemany(connection) -> float:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.executemany(insert, rows)
        connection.commit()
        return time.perf_counter() - started

    def copy(connection) -> float:
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {SCRATCH} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        connection.commit()
        return time.perf_counter() - started

    with psycopg.connect(url.render_as_string(hide_password=False)) as connection:
        _scratch_table(connection, rows, like_members=True)
        executemany_seconds = executemany(connection)
        _scratch_table(connection, rows, like_members=True)
        copy_members_seconds = copy(connection)
        _scratch_table(connection, rows, like_members=False)
        one_index_seconds = executemany(connection)
        connection.execute(f"TRUNCATE {SCRATCH}")
        connection.commit()
        copy_seconds = copy(connection)
        connection.execute(f"DROP TABLE IF EXISTS {SCRATCH}, {SCRATCH_GROUPS}")
        connection.commit()
    baselines = Baselines(
        len(rows), executemany_seconds, one_index_seconds, copy_seconds, copy_members_seconds
    )
    report.figure(
        "Baseline: psycopg executemany of the same member rows into a table shaped like members "
        "(its indexes and foreign key)",
        f"{baselines.executemany_rate:,.0f} rows/s",
    )
    report.figure(
        "Baseline: the same executemany into a table with one index (issue #9's first baseline)",
        f"{baselines.executemany_one_index_rate:,.0f} rows/s",
    )
    report.figure(
        "Baseline: COPY of the same member rows into a table shaped like members",
        f"{baselines.copy_members_rate:,.0f} rows/s",
    )
    report.figure(
        "Baseline: COPY of the same member rows (one index)", f"{baselines.copy_rate:,.0f} rows/s"
    )
    return baselines


def report_import_ratio(import_rate: float, baselines: Baselines, report: Report) -> None:
    """The import's rate beside its physical limits."""
    report.figure(
        "Import rate / executemany into a members-shaped table",
        f"{import_rate:,.0f} / {baselines.executemany_rate:,.0f} rows/s = "
        f"{import_rate / baselines.executemany_rate:.2f}",
    )
    report.figure(
        "Import rate / executemany into a one-index table",
        f"{import_rate:,.0f} / {baselines.executemany_one_index_rate:,.0f} rows/s = "
        f"{import_rate / baselines.executemany_one_index_rate:.2f}",
    )
    report.figure(
        "Import rate / COPY into a members-shaped table",
        f"{import_rate:,.0f} / {baselines.copy_members_rate:,.0f} rows/s = "
        f"{import_rate / baselines.copy_members_rate:.2f}",
    )
    report.figure(
        "Import rate / COPY",
        f"{import_rate:,.0f} / {baselines.copy_rate:,.0f} rows/s = "
        f"{import_rate / baselines.copy_rate:.3f}",
    )


def check_stored(context, data: DataSet, expected_groups: int, report: Report) -> None:
    """Count what the database holds, then vacuum and analyze it."""
    with context.db.transaction() as session:
        groups = session.scalar(select(func.count()).select_from(Group))
        members = session.scalar(select(func.count()).select_from(Member))
    report.figure("Stored", f"{groups:,} groups, {members:,} members")
    if groups != expected_groups or members != data.rows:
        report.note(f"expected {expected_groups:,} groups and {data.rows:,} members stored")
    # What autovacuum does after a bulk load (statistics, visibility map), done now: the read
    # figures then do not depend on when it runs, or on whether it is on at all.
    started = time.perf_counter()
    with context.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE)"))
    report.figure("VACUUM (ANALYZE) after the import", f"{time.perf_counter() - started:.1f} s")


# --- CPU accounting -------------------------------------------------------------------------
# With client, server and database on one small machine, who used the CPU says more about
# the limit than the rates alone. Read from /proc, so nothing extra is needed.

_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """User plus system CPU seconds a process has used so far; 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # After the parenthesised command name, fields 14 and 15 (utime, stime) are 11 and 12.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def machine_busy_cpu() -> float:
    """CPU seconds every core of the machine has spent busy (not idle or waiting on I/O)."""
    with open("/proc/stat") as file:
        ticks = [int(value) for value in file.readline().split()[1:]]
    idle, iowait = ticks[3], ticks[4]
    # Guest time (fields 9 and 10) is already counted in user and nice.
    return (sum(ticks[:8]) - idle - iowait) / _TICK


def child_pids(parent: int) -> list[int]:
    """The direct children of a process (gunicorn's workers)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                children.append(int(entry.name))
    return children


def tagged_url(url: str, application_name: str) -> str:
    """The database URL with an application_name, so its server processes can be told apart."""
    tagged = make_url(url).update_query_dict({"application_name": application_name})
    return tagged.render_as_string(hide_password=False)


def backend_pids(context, application_name: str) -> list[int]:
    """The PostgreSQL server processes of this database's connections tagged with a name."""
    with context.db.engine.connect() as connection:
        return list(
            connection.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = :name"
                ),
                {"name": application_name},
            )
        )


class CpuMeter:
    """CPU seconds used by named sets of processes, and by the rest of the machine."""

    def __init__(self, roles: Callable[[], dict[str, list[int]]]):
        self.roles = roles
        self.before = self._sample()

    def _sample(self) -> tuple[float, float, dict[int, float], dict[str, list[int]]]:
        roles = self.roles()
        used = {pid: process_cpu(pid) for pids in roles.values() for pid in pids}
        return time.perf_counter(), machine_busy_cpu(), used, roles

    def summary(self) -> str:
        """Each role's CPU seconds since the meter started, the rest, and how busy it all was."""
        wall, busy, used, roles = self._sample()
        wall0, busy0, used0, _ = self.before
        parts, ours = [], 0.0
        for role, pids in roles.items():
            # A process that started after the first sample counts from zero.
            seconds = sum(used[pid] - used0.get(pid, 0.0) for pid in pids)
            ours += seconds
            parts.append(f"{role} {seconds:.1f} s")
        other = max(busy - busy0 - ours, 0.0)
        share = (busy - busy0) / max((wall - wall0) * (os.cpu_count() or 1), 1e-9)
        return f"{', '.join(parts)}, other processes {other:.1f} s; machine {share:.0%} busy"


# --- HTTP -----------------------------------------------------------------------------------


def start_gunicorn(workers: int, port: int, db_url: str, log_path: Path) -> subprocess.Popen:
    """The registry under gunicorn, as deployed, logging to `log_path`."""
    command = gunicorn_command(app_target("registry"), f"127.0.0.1:{port}", workers=workers)
    # A file, not a pipe: nobody reads a pipe during the run, and a full one blocks workers.
    with open(log_path, "wb") as log_file:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "REGISTRY_DATABASE_URL": tagged_url(db_url, SERVER)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, to show why a process failed."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_ready(process: subprocess.Popen, base_url: str, log_path: Path, timeout: float = 60):
    """Poll /readyz until the service answers 200; fail with the log if it dies or stalls."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log_tail(log_path)}")
        try:
            if requests.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the registry was not ready in {timeout:.0f} s:\n{log_tail(log_path)}"
            )
        time.sleep(0.2)


@dataclass
class Outcome:
    """Latencies (seconds) of every request of a load, its errors and its wall time."""

    latencies: list[float]
    errors: Counter[str]
    seconds: float


def send_share(
    base_url: str, paths: list[str], headers: dict, barrier: threading.Barrier, outcome: Outcome
) -> None:
    """One client thread: its own session, one request at a time."""
    with requests.Session() as session:
        session.headers.update(headers)
        barrier.wait()
        for path in paths:
            started = time.perf_counter()
            try:
                response = session.get(base_url + path, timeout=30)
                problem = None
                if response.status_code != 200:
                    problem = f"HTTP {response.status_code}: {response.text[:160]}"
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}: {str(exc)[:160]}"
            # list.append and Counter updates of single keys are atomic under the GIL.
            outcome.latencies.append(time.perf_counter() - started)
            if problem:
                outcome.errors[problem] += 1


def run_load(base_url: str, paths: list[str], headers: dict, concurrency: int) -> Outcome:
    """Send `paths` over `concurrency` threads started together; time each request."""
    shares = [paths[i::concurrency] for i in range(concurrency) if paths[i::concurrency]]
    outcome = Outcome([], Counter(), 0.0)
    barrier = threading.Barrier(len(shares) + 1)
    threads = [
        threading.Thread(target=send_share, args=(base_url, share, headers, barrier, outcome))
        for share in shares
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    outcome.seconds = time.perf_counter() - started
    return outcome


def percentile(sorted_values: list[float], p: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    index = max(math.ceil(p / 100 * len(sorted_values)) - 1, 0)
    return sorted_values[index]


def scenario_paths(
    scenario: str, count: int, groups: list[tuple[uuid.UUID, str]], niks: list[str], rng
) -> list[str]:
    """`count` request paths of a scenario, each for a randomly picked group or person."""
    if scenario == "read group":
        return [f"/api/v1/groups/{rng.choice(groups)[0]}" for _ in range(count)]
    if scenario == "list regency":
        # The regency of a random group: busy regencies come up as often as they are busy.
        return [
            f"/api/v1/groups?region={rng.choice(groups)[1][:4]}&page_size=20" for _ in range(count)
        ]
    return [f"/api/v1/members?nik={rng.choice(niks)}" for _ in range(count)]


def measure_scenario(
    scenario: str, base_url: str, paths: list[str], warmup: list[str], headers, args, report, roles
) -> None:
    """A short warm-up, then the measured load; print its rate, latencies, errors and CPU."""
    warm = run_load(base_url, warmup, headers, args.concurrency)
    if warm.errors:
        report.note(f"{scenario}: {sum(warm.errors.values())} errors during warm-up")
    meter = CpuMeter(roles)
    outcome = run_load(base_url, paths, headers, args.concurrency)
    cpu = meter.summary()
    latencies = sorted(outcome.latencies)
    errors = sum(outcome.errors.values())
    p50, p95, p99 = (percentile(latencies, p) * 1000 for p in (50, 95, 99))
    report.figure(
        f"HTTP {scenario}",
        f"{rate(len(latencies), outcome.seconds)} req/s, p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
        f"p99 {p99:.1f} ms, {errors} errors of {len(latencies):,}",
    )
    report.figure(f"CPU during {scenario}", cpu)
    for problem, count in outcome.errors.most_common(5):
        report.note(f"{scenario}: {count} x {problem}")


# --- Machine --------------------------------------------------------------------------------


def proc_field(path: str, key: str) -> str:
    """The first `key: value` of a /proc file, or "unknown"."""
    try:
        with open(path) as file:
            for line in file:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return "unknown"


def machine_facts(context) -> list[tuple[str, str]]:
    """What the figures were measured on."""
    memory_kb = proc_field("/proc/meminfo", "MemTotal").split()[0]
    memory = f"{int(memory_kb) / 1024**2:.1f} GiB" if memory_kb.isdigit() else "unknown"
    with context.db.engine.connect() as connection:
        server = connection.scalar(text("SELECT version()"))
        settings = ", ".join(
            f"{name} {connection.scalar(text(f'SHOW {name}'))}"
            for name in ("shared_buffers", "autovacuum", "synchronous_commit")
        )
    return [
        ("CPUs (nproc)", str(os.cpu_count())),
        ("CPU model", proc_field("/proc/cpuinfo", "model name")),
        ("Memory", memory),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("PostgreSQL", server),
        ("PostgreSQL settings", settings),
        ("Python", platform.python_version()),
        ("Load average at start (1/5/15 min)", load_average()),
    ]


def load_average() -> str:
    """The machine's load, as other work on it skews every figure."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def print_summary(report: Report, facts: list[tuple[str, str]], args) -> None:
    """The closing Markdown tables: the figures, then the machine."""
    print("\n## Results\n")
    print(
        f"{args.groups:,} groups x {args.members_per_group} members; {args.requests:,} requests "
        f"per scenario over {args.concurrency} client threads; "
        f"{args.gunicorn_workers} gunicorn workers.\n"
    )
    print("| Figure | Value |\n|---|---|")
    for name, value in report.rows:
        print(f"| {name} | {value} |")
    print("\n| Machine | |\n|---|---|")
    for name, value in facts:
        print(f"| {name} | {value} |")
    for message in report.notes:
        print(f"\nNOTE: {message}")


# --- The run --------------------------------------------------------------------------------


@dataclass
class Setup:
    """What step 1 prepared for the others."""

    context: ServiceContext
    rules: Rules
    db_url: str
    port: int
    facts: list[tuple[str, str]]


def prepare(args: argparse.Namespace, stack: ExitStack, report: Report) -> Setup:
    """Step 1: a new migrated database, Redis, the environment, and the registry app."""
    run_id = uuid.uuid4().hex[:8]
    name = f"kube_bench_{run_id}_registry"
    print(f"    database {name}", flush=True)
    server = postgres_server(args.database_url)
    redis_url = redis_server(args.redis_url, stack)
    create_database(server, name, exist_ok=False)
    db_url = database_url(server, name)
    if args.keep:
        stack.callback(print, f"\nKept the database: {db_url}")
    else:
        stack.callback(drop_database, server, name)
    upgrade(REGISTRY.migrations, db_url)
    port = free_port()
    # Before the app is built: its settings are read from the environment, and the gunicorn
    # child inherits the same.
    os.environ.update(bench_environment(tagged_url(db_url, IMPORTER), redis_url, port, run_id))
    app = create_app()
    # The app logs INFO lines as JSON; here they would only interleave with the figures.
    logging.getLogger().setLevel(logging.WARNING)
    context = app.extensions["kube"]
    stack.callback(context.db.dispose)
    settings = context.settings
    rules = Rules(settings.group_min_members, settings.group_max_members)
    if args.members_per_group > rules.max_members:
        raise SystemExit(f"--members-per-group is over the maximum of {rules.max_members}")
    if os.getloadavg()[0] > 0.5:
        report.note(
            f"the 1-minute load average was {os.getloadavg()[0]:.2f} at the start: other work "
            "may be sharing the CPUs ('other processes' in the CPU figures says how much)"
        )
    return Setup(context, rules, db_url, port, machine_facts(context))


def load_region_table(setup: Setup, path: Path, report: Report) -> list[RegionRow]:
    """Step 2: read and load the region table; return its villages."""
    started = time.perf_counter()
    regions = region_rows(path, report)
    report.figure("Region file read", f"{rate(len(regions), time.perf_counter() - started)} rows/s")
    started = time.perf_counter()
    load_regions(setup.context.db.engine, regions)
    seconds = time.perf_counter() - started
    report.figure(
        "Region table load", f"{rate(len(regions), seconds)} rows/s ({len(regions):,} rows)"
    )
    return [row for row in regions if row.level == "village"]


def make_import_file(
    setup: Setup, villages: list[RegionRow], args: argparse.Namespace, report: Report
) -> DataSet:
    """Step 3: generate the import file, and say if the API would refuse its size."""
    data = generate_csv(villages, args.groups, args.members_per_group, random.Random(args.seed))
    size = len(data.content) / 1024**2
    report.figure("Import file", f"{data.rows:,} rows, {size:.1f} MiB CSV")
    limit = setup.context.settings.max_import_bytes
    if len(data.content) > limit:
        report.note(
            f"the file ({size:.1f} MiB) is over the API's import limit of {limit / 1024**2:.0f} "
            "MiB (KUBE_MAX_IMPORT_BYTES); create_import, called directly here, does not check "
            "the size"
        )
    return data


def stand_in_for_autovacuum(setup: Setup, args: argparse.Namespace, report: Report) -> bool:
    """Whether to ANALYZE during the import because the server's autovacuum is off."""
    with setup.context.db.engine.connect() as connection:
        autovacuum = connection.scalar(text("SHOW autovacuum"))
    if autovacuum == "on" or args.no_autoanalyze:
        return False
    # Without fresh statistics a pooled connection can keep a generic plan made while the
    # tables were nearly empty (sequential scans), and the import slows down as they grow.
    report.note(
        f"autovacuum is off on this server; the import runs ANALYZE every "
        f"{AUTOVACUUM_NAPTIME:.0f} s, as autovacuum's autoanalyze would (--no-autoanalyze: don't)"
    )
    return True


def start_server(setup: Setup, args: argparse.Namespace, stack: ExitStack):
    """Step 5: gunicorn serving the registry, stopped when `stack` closes; its process and URL."""
    log_dir = Path(tempfile.mkdtemp(prefix="kube-bench-"))
    if not args.keep:
        stack.callback(shutil.rmtree, log_dir, ignore_errors=True)
    log_path = log_dir / "gunicorn.log"
    process = start_gunicorn(args.gunicorn_workers, setup.port, setup.db_url, log_path)
    stack.callback(stop_process, process)
    base_url = f"http://127.0.0.1:{setup.port}"
    wait_ready(process, base_url, log_path)
    print(f"    log: {log_path}", flush=True)
    return process, base_url, log_path


def measure_http(
    setup: Setup, args: argparse.Namespace, process, base_url: str, niks: list[str], report
) -> None:
    """Steps 6-8: each read scenario against the running server."""
    with setup.context.db.transaction() as session:
        groups = [tuple(row) for row in session.execute(select(Group.id, Group.region_code))]
    token = issue_token(
        os.environ["KUBE_JWT_SECRET"], sub="bench-admin", roles=["admin"], region="*"
    )
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(args.seed + 1)

    def roles() -> dict[str, list[int]]:
        return {
            "client (this process)": [os.getpid()],
            "gunicorn": [process.pid, *child_pids(process.pid)],
            "PostgreSQL": backend_pids(setup.context, SERVER),
        }

    warmup_count = max(2 * args.concurrency, args.requests // 10)
    for number, scenario in enumerate(SCENARIOS, 6):
        with step(f"{number}. {scenario}: {args.requests:,} requests, {args.concurrency} threads"):
            paths = scenario_paths(scenario, args.requests, groups, niks, rng)
            warmup = scenario_paths(scenario, warmup_count, groups, niks, rng)
            measure_scenario(scenario, base_url, paths, warmup, headers, args, report, roles)


# --- HTTP reads beside the bare route, under wrk -----------------------------------------------

BASELINE = "kube-bench-baseline"
# wrk's Lua script: cycle through the paths (each thread from its own offset), then print one
# machine-readable line with the count, the errors and the latency percentiles in microseconds.
WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("KUBE_BENCH_PATHS")) do paths[#paths + 1] = line end
local authorization = os.getenv("KUBE_BENCH_AUTHORIZATION")
if authorization ~= "" then wrk.headers["Authorization"] = authorization end
local threads = 0
-- thread:set makes `offset` a global of that thread's own Lua state.
function setup(thread)
  threads = threads + 1
  thread:set("offset", threads * 7919)
end
function request()
  offset = offset + 1
  return wrk.format("GET", paths[offset % #paths + 1])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("KUBE-WRK %d %d %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
"""


@dataclass
class WrkResult:
    """One wrk load: requests, errors and latencies (ms)."""

    requests: int
    seconds: float
    bad_status: int
    socket_errors: int
    p50: float
    p95: float
    p99: float

    @property
    def rate(self) -> float:
        return self.requests / max(self.seconds, 1e-9)

    def summary(self) -> str:
        errors = f", {self.bad_status} non-2xx" if self.bad_status else ""
        errors += f", {self.socket_errors} socket errors" if self.socket_errors else ""
        return (
            f"{self.rate:,.0f} req/s, p50 {self.p50:.1f} ms, p95 {self.p95:.1f} ms, "
            f"p99 {self.p99:.1f} ms{errors}"
        )


def add_http_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the HTTP read phase."""
    parser.add_argument(
        "--wrk-connections",
        type=int,
        default=32,
        help="wrk connections, for the reads and the bare route alike (default %(default)s)",
    )
    parser.add_argument(
        "--wrk-threads", type=int, default=2, help="wrk threads (default %(default)s)"
    )
    parser.add_argument(
        "--wrk-seconds",
        type=int,
        default=10,
        help="measured seconds of each wrk load, after a 2 s warm-up (default %(default)s)",
    )


def start_baseline(setup: Setup, args: argparse.Namespace, stack: ExitStack, log_dir: Path):
    """bench/baseline.py (one PK SELECT of `groups`) under the same gunicorn settings."""
    port = free_port()
    command = gunicorn_command(
        "baseline:create_app()", f"127.0.0.1:{port}", workers=args.gunicorn_workers
    )
    log_path = log_dir / "baseline.log"
    env = {
        **os.environ,
        "BASELINE_DATABASE_URL": tagged_url(setup.db_url, BASELINE),
        "BASELINE_TABLE": "groups",
    }
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, cwd=ROOT / "bench", env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    stack.callback(stop_process, process)
    base_url = f"http://127.0.0.1:{port}"
    wait_ready(process, base_url, log_path)
    return process, base_url


def run_wrk(base_url: str, paths: list[str], authorization: str, args, seconds: int) -> WrkResult:
    """wrk against `base_url`, cycling through `paths` with the given Authorization header."""
    with tempfile.TemporaryDirectory(prefix="kube-bench-wrk-") as directory:
        script = Path(directory) / "paths.lua"
        script.write_text(WRK_SCRIPT)
        listing = Path(directory) / "paths.txt"
        listing.write_text("\n".join(paths) + "\n")
        env = {
            **os.environ,
            "KUBE_BENCH_PATHS": str(listing),
            "KUBE_BENCH_AUTHORIZATION": authorization,
        }
        command = [
            "wrk",
            f"-t{args.wrk_threads}",
            f"-c{args.wrk_connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base_url,
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    line = next(row for row in done.stdout.splitlines() if row.startswith("KUBE-WRK "))
    count, micros, bad, socket, p50, p95, p99, *_ = (int(v) for v in line.split()[1:])
    return WrkResult(count, micros / 1e6, bad, socket, p50 / 1000, p95 / 1000, p99 / 1000)


def measure_with_wrk(base_url: str, paths: list[str], authorization: str, args) -> WrkResult:
    """A 2 s warm-up (connections, caches, the pool), then the measured load."""
    run_wrk(base_url, paths, authorization, args, 2)
    return run_wrk(base_url, paths, authorization, args, args.wrk_seconds)


def measure_http_beside_baseline(
    setup: Setup, args: argparse.Namespace, base_url: str, niks: list[str], stack, report
) -> None:
    """Steps 6-8 under wrk: each read beside the bare Flask routes' PK SELECT (measured right
    before it, so all see the same machine), and their ratios."""
    with setup.context.db.transaction() as session:
        groups = [tuple(row) for row in session.execute(select(Group.id, Group.region_code))]
    token = issue_token(
        os.environ["KUBE_JWT_SECRET"], sub="bench-admin", roles=["admin"], region="*"
    )
    log_dir = Path(tempfile.mkdtemp(prefix="kube-bench-baseline-"))
    stack.callback(shutil.rmtree, log_dir, ignore_errors=True)
    _, baseline_url = start_baseline(setup, args, stack, log_dir)
    rng = random.Random(args.seed + 1)
    count = 5000
    row_ids = [rng.choice(groups)[0] for _ in range(count)]
    # Two bare routes: the lean one (one prepared SELECT on an autocommit connection through
    # the driver, as the reads go) is the limit; the plain one (SQLAlchemy Core in a
    # transaction, as the earlier figures were measured) is printed beside it.
    bare_routes = {
        "bare prepared PK SELECT": [f"/lean/rows/{row_id}" for row_id in row_ids],
        "bare SQLAlchemy PK SELECT": [f"/rows/{row_id}" for row_id in row_ids],
    }
    print(
        f"    wrk -t{args.wrk_threads} -c{args.wrk_connections} -d{args.wrk_seconds}s, "
        f"gunicorn sync x{args.gunicorn_workers}, each read after the bare routes' runs",
        flush=True,
    )
    for number, scenario in enumerate(SCENARIOS, 6):
        with step(f"{number}. {scenario} beside the bare routes (wrk)"):
            bare = {
                name: measure_with_wrk(baseline_url, paths, "", args)
                for name, paths in bare_routes.items()
            }
            paths = scenario_paths(scenario, count, groups, niks, rng)
            found = measure_with_wrk(base_url, paths, f"Bearer {token}", args)
            report.figure(f"HTTP {scenario} (wrk)", found.summary())
            for name, outcome in bare.items():
                report.figure(f"HTTP {name} before {scenario} (wrk)", outcome.summary())
            for name, outcome in bare.items():
                report.figure(
                    f"HTTP {scenario}: ratio to the {name}",
                    f"{found.rate / max(outcome.rate, 1e-9):.2f} (req/s), "
                    f"p99 {found.p99 / max(outcome.p99, 1e-9):.1f}x",
                )
            if found.bad_status or found.socket_errors:
                report.note(f"{scenario}: errors under wrk; see the figure")


def benchmark(args: argparse.Namespace, stack: ExitStack, report: Report) -> list:
    """Every step in order (cleanup goes on `stack` as each resource appears); the facts."""
    with step("1. Database, migrations, app"):
        setup = prepare(args, stack, report)
    with step("2. Region table"):
        villages = load_region_table(setup, args.regions, report)
    with step("3. Import file"):
        data = make_import_file(setup, villages, args, report)
    with step("4. Import (the worker's code path, in this process)"):
        autoanalyze = stand_in_for_autovacuum(setup, args, report)
        baselines = measure_baselines(setup.context, data, report)
        import_rate = run_import(setup.context, data, setup.rules, args.groups, autoanalyze, report)
        report_import_ratio(import_rate, baselines, report)
        check_stored(setup.context, data, args.groups, report)
    with step(f"5. gunicorn with {args.gunicorn_workers} workers on 127.0.0.1:{setup.port}"):
        process, base_url, log_path = start_server(setup, args, stack)
    if shutil.which("wrk"):
        measure_http_beside_baseline(setup, args, base_url, data.niks, stack, report)
    else:
        report.note("wrk is not installed: the reads are measured with the Python client")
        measure_http(setup, args, process, base_url, data.niks, report)
    if process.poll() is not None:
        report.note(f"gunicorn exited during the run:\n{log_tail(log_path)}")
    return [*setup.facts, ("Load average at end (1/5/15 min)", load_average())]


def stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so the cleanup runs when the run is stopped."""

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, clean up whatever happens, then print the summary."""
    args = parse_args(argv)
    stop_on_sigterm()
    report = Report()
    # The stack is the `finally`: gunicorn, the app's connections, the database and a
    # private Redis are released in reverse order of creation, whatever happened.
    with ExitStack() as stack:
        try:
            facts = benchmark(args, stack, report)
        finally:
            print("\n== 9. Cleanup: gunicorn, app connections, database, private Redis")
    print_summary(report, facts, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
