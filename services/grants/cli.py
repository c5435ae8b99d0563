"""The grant service's `kube` commands: `kube grants verify-audit`."""

from __future__ import annotations

import click

from services.grants.audit import verify_chains
from shared.config import load_settings
from shared.db import Database


@click.group()
def grants() -> None:
    """The grant service's maintenance commands."""


@grants.command("verify-audit")
def verify_audit() -> None:
    """Check every application's audit chain; report the first broken link of each."""
    try:
        settings = load_settings("grants")
    except RuntimeError as exc:
        raise click.UsageError(str(exc)) from exc
    database = Database(settings.database_url, pool_size=1)
    broken = 0
    try:
        with database.transaction() as session:
            for link in verify_chains(session):
                broken += 1
                click.echo(
                    f"grant {link.grant_id}: record {link.seq} is broken: {link.reason}", err=True
                )
            from sqlalchemy import func, select

            from services.grants.models import AuditRecord

            records, chains = session.execute(
                select(func.count(), func.count(AuditRecord.grant_id.distinct()))
            ).one()
    finally:
        database.dispose()
    if broken:
        click.echo(f"{broken} broken chain(s) among {chains:,} applications.", err=True)
        raise SystemExit(1)
    click.echo(f"All {chains:,} audit chains intact ({records:,} records).")
