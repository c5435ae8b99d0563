"""The registry's `kube` commands: `kube regions load PATH`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from services.registry.regions import RegionFileError, load_regions, read_region_csv
from shared.config import load_settings
from shared.db import Database


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
