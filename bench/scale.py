"""Registry at national scale: a generator of 1,000,000 members in 100,000 groups spread over
the real villages, and the time a NIK lookup and a regency's group list take at that size.

The generator writes straight into a fresh registry database with COPY, storing exactly
what the registry stores (NIK and No. KK encrypted with the run's data key, each with its
keyed hash; groups active, each with a ketua, sekretaris, bendahara and anggota), then
ANALYZEs. The registry then runs under gunicorn as `make run` runs it, and a client sends
NIK lookups (`GET /members?nik=`) and regency lists (`GET /groups?region=<4 digits>`),
measured with a few clients at once and one at a time. Figures are printed, never
asserted.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/scale.py [--members 1000000 --members-per-group 10]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from registry import (
    OFFICERS,
    PersonFactory,
    Report,
    add_server_arguments,
    bench_environment,
    load_average,
    log_tail,
    machine_facts,
    percentile,
    postgres_server,
    redis_server,
    region_rows,
    run_load,
    start_gunicorn,
    step,
    stop_on_sigterm,
    stop_process,
    wait_ready,
)

from kube.localinfra import create_database, database_url, drop_database, free_port
from services.registry.models import KK_PURPOSE, NIK_PURPOSE
from services.registry.regions import load_regions
from services.registry.service import SERVICE as REGISTRY
from shared.auth import issue_token
from shared.config import load_settings
from shared.encryption import DataKeys
from shared.migrate import upgrade
from shared.service import build_context

ROOT = Path(__file__).resolve().parent.parent
REGION_FILE = ROOT.parent / "shared" / "data" / "wilayah-2025.csv"
BUSINESS_TYPES = ("tempe", "warung", "jahit", "ternak ayam", "kerajinan", "bengkel", "kue")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000, help="(default %(default)s)")
    parser.add_argument("--members-per-group", type=int, default=10, help="(default %(default)s)")
    parser.add_argument(
        "--requests", type=int, default=2000, help="requests per scenario (%(default)s)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=4, help="client threads at once (%(default)s)"
    )
    parser.add_argument("--gunicorn-workers", type=int, default=2, help="(default %(default)s)")
    parser.add_argument("--regions", type=Path, default=REGION_FILE, help="(default %(default)s)")
    add_server_arguments(parser, redis=None)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return parser.parse_args(argv)


def generate(url: str, keys: DataKeys, villages: list[str], args, report: Report) -> list:
    """COPY the groups and members; return (NIK, regency) samples for the lookups."""
    rng = random.Random(20251)
    people = PersonFactory(rng)
    groups = args.members // args.members_per_group
    now = datetime.now(UTC)
    samples: list[tuple[str, str]] = []
    roles = [*OFFICERS, *["anggota"] * (args.members_per_group - len(OFFICERS))]
    started = time.perf_counter()
    with psycopg.connect(url) as connection:
        with connection.cursor() as cursor:
            with cursor.copy(
                "COPY groups (id, name, region_code, business_type, status, version, "
                "created_by, created_at, updated_at) FROM STDIN"
            ) as groups_copy:
                group_rows = []
                for number in range(groups):
                    village = rng.choice(villages)
                    group_id = uuid.uuid4()
                    group_rows.append((group_id, village))
                    groups_copy.write_row(
                        (
                            group_id,
                            f"KUBE {rng.choice(BUSINESS_TYPES).title()} {number:06d}",
                            village,
                            rng.choice(BUSINESS_TYPES),
                            "active",
                            1,
                            "bench-scale",
                            now,
                            now,
                        )
                    )
            report.figure("Groups written", f"{groups:,} in {time.perf_counter() - started:.1f} s")
            members_started = time.perf_counter()
            with cursor.copy(
                "COPY members (id, group_id, nik_encrypted, nik_hash, kk_encrypted, kk_hash, "
                "name, gender, birth_date, phone, language, role, village_code, active, "
                "version, created_at, updated_at) FROM STDIN"
            ) as members_copy:
                for group_id, village in group_rows:
                    for role in roles:
                        person = people.person(village[:6], role)
                        nik, kk = person["nik"], person["kk_number"]
                        members_copy.write_row(
                            (
                                uuid.uuid4(),
                                group_id,
                                keys.encrypt_text(nik, purpose=NIK_PURPOSE),
                                keys.lookup_hash(nik, purpose=b"nik"),
                                keys.encrypt_text(kk, purpose=KK_PURPOSE),
                                keys.lookup_hash(kk, purpose=b"kk"),
                                person["name"],
                                person["gender"],
                                person["birth_date"],
                                "+62" + person["phone"][1:],
                                "id",
                                role,
                                village,
                                True,
                                1,
                                now,
                                now,
                            )
                        )
                        if rng.random() < 0.001:
                            samples.append((nik, village[:4]))
        seconds = time.perf_counter() - members_started
        report.figure(
            "Members written (COPY, each NIK and KK encrypted and hashed)",
            f"{args.members:,} in {seconds:.1f} s ({args.members / seconds:,.0f} rows/s)",
        )
        connection.commit()
        connection.autocommit = True
        started = time.perf_counter()
        connection.execute("VACUUM (ANALYZE) groups")
        connection.execute("VACUUM (ANALYZE) members")
        report.figure("VACUUM ANALYZE", f"{time.perf_counter() - started:.1f} s")
        sizes = connection.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('members')), "
            "pg_size_pretty(pg_total_relation_size('groups'))"
        ).fetchone()
        report.figure("Table sizes with indexes", f"members {sizes[0]}, groups {sizes[1]}")
    return samples


def measure(base_url: str, headers: dict, name: str, paths: list[str], args, report) -> None:
    for label, concurrency in ((f"{args.concurrency} clients", args.concurrency), ("1 client", 1)):
        outcome = run_load(base_url, paths, headers, concurrency)
        latencies = sorted(outcome.latencies)
        report.figure(
            f"{name}, {label}",
            f"{len(latencies) / outcome.seconds:,.0f} req/s; p50 "
            f"{percentile(latencies, 50) * 1000:.1f}, p99 {percentile(latencies, 99) * 1000:.1f} ms"
            + (f"; errors {dict(outcome.errors)}" if outcome.errors else ""),
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    report = Report()
    facts: list[tuple[str, str]] = []
    with ExitStack() as stack:
        with step("1. Database, region table"):
            server = postgres_server(args.database_url)
            run_id = uuid.uuid4().hex[:8]
            name = f"kube_bench_{run_id}_registry"
            create_database(server, name, exist_ok=False)
            url = database_url(server, name)
            if not args.keep:
                stack.callback(drop_database, server, name)
            upgrade(REGISTRY.migrations, url)
            port = free_port()
            env = bench_environment(
                url, redis_server(os.environ.get("REDIS_URL"), stack), port, run_id
            )
            os.environ.update(env)
            context = build_context(REGISTRY, load_settings("registry"))
            stack.callback(context.db.dispose)
            regions = region_rows(args.regions, report)
            load_regions(context.db.engine, regions)
            villages = [r.code for r in regions if r.level == "village"]
            report.figure("Villages", f"{len(villages):,}")
            facts = machine_facts(context)
        with step(f"2. Generate {args.members:,} members in groups of {args.members_per_group}"):
            keys = DataKeys.parse((env["KUBE_DATA_KEYS"],), env["KUBE_LOOKUP_KEY"])
            samples = generate(psycopg_url(url), keys, villages, args, report)
        with step("3. The registry under gunicorn; NIK lookups and regency lists"):
            log_dir = Path(tempfile.mkdtemp(prefix="kube-bench-scale-"))
            log_path = log_dir / "registry.log"
            server_process = start_gunicorn(args.gunicorn_workers, port, url, log_path)
            stack.callback(stop_process, server_process)
            base_url = f"http://127.0.0.1:{port}"
            wait_ready(server_process, base_url, log_path)
            token = issue_token(
                env["KUBE_JWT_SECRET"], sub="admin-bench", roles=["admin"], region="*"
            )
            headers = {"Authorization": f"Bearer {token}"}
            rng = random.Random(5)
            nik_paths = [
                f"/api/v1/members?nik={rng.choice(samples)[0]}" for _ in range(args.requests)
            ]
            list_paths = [
                f"/api/v1/groups?region={rng.choice(samples)[1]}&page_size=20"
                for _ in range(args.requests)
            ]
            run_load(base_url, nik_paths[:200], headers, args.concurrency)  # warm-up
            measure(base_url, headers, "Find a member by NIK", nik_paths, args, report)
            measure(base_url, headers, "List a regency's groups", list_paths, args, report)
            if server_process.poll() is not None:
                report.note(f"gunicorn exited:\n{log_tail(log_path)}")
        facts.append(("Load average at end (1/5/15 min)", load_average()))
        counts = Counter(code[:4] for code in villages)
        report.figure("Regencies with villages", f"{len(counts):,}")
    print("\n## Results\n")
    print(
        f"{args.members:,} members in {args.members // args.members_per_group:,} groups; "
        f"{args.requests:,} requests per scenario; {args.gunicorn_workers} gunicorn workers.\n"
    )
    print("| Figure | Value |\n|---|---|")
    for name, value in report.rows:
        print(f"| {name} | {value} |")
    print("\n| Machine | |\n|---|---|")
    for name, value in facts:
        print(f"| {name} | {value} |")
    for message in report.notes:
        print(f"\nNOTE: {message}")
    return 0


def psycopg_url(url: str) -> str:
    """A libpq URL (SQLAlchemy's `postgresql+psycopg://` prefix removed)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


if __name__ == "__main__":
    sys.exit(main())
