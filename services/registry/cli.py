"""The registry's `kube` commands: `kube regions load PATH`, `kube keys rotate`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from services.registry.key_rotation import rotate as rotate_values
from services.registry.regions import RegionFileError, load_regions, read_region_csv
from shared.config import load_settings
from shared.db import Database
from shared.encryption import DataKeyError, DataKeys, generate_key


@click.group()
def regions() -> None:
    """Load the official Kemendagri region table."""


@regions.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load(path: Path) -> None:
    """Replace the region table with a `code,name` CSV of dotted Kemendagri codes."""
    try:
        settings = load_settings("registry")
    except RuntimeError as exc:
        raise click.UsageError(str(exc)) from exc
    started = time.perf_counter()
    try:
        rows = read_region_csv(path)
    except RegionFileError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        if exc.total > len(exc.problems):
            click.echo(f"... and {exc.total - len(exc.problems)} more problems", err=True)
        click.echo(f"{path}: nothing loaded ({exc.total} problems).", err=True)
        raise SystemExit(1) from exc
    database = Database(settings.database_url, pool_size=1)
    try:
        counts = load_regions(database.engine, rows)
    finally:
        database.dispose()
    seconds = time.perf_counter() - started
    click.echo(
        f"Loaded {counts['total']:,} regions: {counts['province']:,} provinces, "
        f"{counts['regency']:,} regencies and cities, {counts['district']:,} districts, "
        f"{counts['village']:,} villages."
    )
    click.echo(
        f"{counts['changed']:,} added or changed, {counts['removed']:,} removed, "
        f"in {seconds:.1f} s ({counts['total'] / seconds:,.0f} rows/s)."
    )


@click.group()
def keys() -> None:
    """The data keys that encrypt NIK, No. KK and import files (docs/security.md)."""


@keys.command()
@click.option("--batch-size", type=click.IntRange(1, 10_000), help="Rows per transaction.")
def rotate(batch_size: int | None) -> None:
    """Re-encrypt every stored value under the newest key of KUBE_DATA_KEYS, in small
    transactions, while the platform runs; safe to stop and run again."""
    try:
        settings = load_settings("registry")
        data_keys = DataKeys.from_settings(settings)
    except (RuntimeError, DataKeyError) as exc:
        raise click.UsageError(str(exc)) from exc
    database = Database(settings.database_url, pool_size=1)
    started = time.perf_counter()
    try:
        results = rotate_values(database, data_keys, batch_size=batch_size, report=click.echo)
    except DataKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        database.dispose()
    left = sum(r.remaining for r in results)
    done = sum(r.reencrypted for r in results)
    click.echo(f"{done:,} rows re-encrypted in {time.perf_counter() - started:.1f} s.")
    if left:
        click.echo(
            f"{left:,} rows are still under older keys (busy, or written by a process that "
            "does not list the new key first): restart those processes and run this again.",
            err=True,
        )
        raise SystemExit(1)
    click.echo(f"Everything is under key {data_keys.current_id!r}; older keys may be removed.")


@keys.command()
@click.argument("key_id")
def new(key_id: str) -> None:
    """Print a new random data key as KEY_ID:base64, to put first in KUBE_DATA_KEYS."""
    try:
        DataKeys.parse((f"{key_id}:{generate_key()}",), generate_key())
    except DataKeyError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"{key_id}:{generate_key()}")
