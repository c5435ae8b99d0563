"""The `kube` command: tokens for local use, migrations, the outbox relay, the local run, and
the commands each service contributes (e.g. `kube regions load`)."""

from __future__ import annotations

import os
import signal
import threading

import click

from kube.catalogue import BY_NAME, NAMES, SERVICES, SUBSCRIPTIONS
from shared.auth import ROLES, issue_token
from shared.config import database_url_for, env_int, load_settings


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Operate the KUBE platform.

    Commands that need a service's database use `<SERVICE>_DATABASE_URL`; where it is not
    set and `make run` has made its local databases, they use those."""
    local_only = (
        "token",
        "revoke-token",
        "run",
        "workflows",
        "openapi",
        "events-doc",
        "walkthrough",
    )
    if ctx.invoked_subcommand in (None, *local_only):
        return
    from kube.localrun import LOCAL, use_local_databases

    if (LOCAL / "postgres").exists():
        use_local_databases(os.environ)


@main.command()
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES))
@click.option(
    "--region",
    required=True,
    help="Region-code prefix, e.g. 6472; * for nationwide (admin and service only).",
)
@click.option("--sub", required=True, help="The user the token names (who is acting).")
@click.option(
    "--ttl",
    default=8 * 3600,
    show_default=True,
    type=click.IntRange(60, None),
    help="Lifetime in seconds, at most KUBE_JWT_MAX_TTL_SECONDS.",
)
def token(roles: tuple[str, ...], region: str, sub: str, ttl: int) -> None:
    """Print an HS256 token signed with KUBE_JWT_SECRET, for local use."""
    cap = env_int("KUBE_JWT_MAX_TTL_SECONDS", 12 * 3600)
    if ttl > cap:
        raise click.BadParameter(
            f"at most {cap} seconds (KUBE_JWT_MAX_TTL_SECONDS)", param_hint="--ttl"
        )
    from kube.localrun import local_jwt_secret

    secret = os.environ.get("KUBE_JWT_SECRET") or local_jwt_secret(create=False)
    if not secret:
        raise click.UsageError("KUBE_JWT_SECRET is not set (and `make run` has not made one).")
    click.echo(issue_token(secret, sub=sub, roles=list(roles), region=region, ttl_seconds=ttl))


@main.command("revoke-token")
@click.argument("jti")
def revoke_token(jti: str) -> None:
    """Refuse a token by its `jti` from now on, on every service sharing this Redis."""
    import redis

    from shared.config import env_str
    from shared.tokens import revoked_key

    prefix = env_str("KUBE_QUEUE_PREFIX", "kube")
    client = redis.Redis.from_url(env_str("REDIS_URL", "redis://127.0.0.1:6379/0"))
    # Kept as long as any token can live, then it would have expired anyway.
    client.set(revoked_key(prefix, jti), 1, ex=env_int("KUBE_JWT_MAX_TTL_SECONDS", 12 * 3600))
    click.echo(f"revoked {jti}")


def _services(names: tuple[str, ...]) -> list[str]:
    chosen = list(names) or [s for s in NAMES if database_url_for(s)]
    if not chosen:
        raise click.UsageError("No service database is configured (<SERVICE>_DATABASE_URL).")
    return chosen


@main.command()
@click.argument("services", nargs=-1, type=click.Choice(NAMES))
def migrate(services: tuple[str, ...]) -> None:
    """Upgrade each service's database to its newest migration."""
    from shared.migrate import upgrade

    for name in _services(services):
        upgrade(BY_NAME[name].migrations, load_settings(name).database_url)
        click.echo(f"{name}: migrated")


@main.command()
@click.argument("services", nargs=-1, type=click.Choice(NAMES))
def relay(services: tuple[str, ...]) -> None:
    """Publish the services' outbox events to their subscribers' queues, until stopped."""
    from celery import Celery

    from shared.db import Database
    from shared.events.outbox import CeleryPublisher, Relay, run_relays
    from shared.logs import configure_logging
    from shared.tasks import configure_celery

    chosen = _services(services)
    first = load_settings(chosen[0])
    configure_logging("relay", first.log_level)
    publisher = CeleryPublisher(
        configure_celery(Celery("kube-relay"), first.redis_url), first.queue_prefix
    )
    relays = []
    for name in chosen:
        settings = load_settings(name)
        relays.append(
            Relay(
                name,
                Database(settings.database_url, pool_size=1),
                BY_NAME[name].tables.outbox,
                publisher,
                SUBSCRIPTIONS,
                settings.relay_batch_size,
            )
        )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    run_relays(relays, first.redis_url, first.queue_prefix, first.relay_poll_seconds, stop)


@main.command()
def workflows() -> None:
    """Print every workflow table (from, action, to, roles, guards) as Markdown."""
    for service in SERVICES:
        for workflow in service.workflows:
            click.echo(f"### {service.name}: {workflow.name}\n\n{workflow.table()}\n")


@main.command()
def openapi() -> None:
    """Rewrite each service's committed OpenAPI document (docs/openapi/<service>.json)."""
    from kube.openapi import COMMITTED, write_documents

    changed = write_documents()
    for path in changed:
        click.echo(f"rewrote {path.relative_to(COMMITTED.parent.parent)}")
    if not changed:
        click.echo("the committed documents are current")


@main.command("events-doc")
def events_doc() -> None:
    """Rewrite the event catalogue (docs/event-catalogue.md) and the AsyncAPI document
    (docs/asyncapi.json) from the event contracts, producers and handlers in code."""
    from kube.events_doc import DOCS, write_documents

    changed = write_documents()
    for path in changed:
        click.echo(f"rewrote {path.relative_to(DOCS.parent)}")
    if not changed:
        click.echo("the event catalogue is current")


@main.command()
@click.option("--demo/--no-demo", default=True, help="Seed demo groups on an empty registry.")
def run(demo: bool) -> None:
    """Start the whole platform as local processes (what `make run` calls)."""
    from kube.localrun import run_platform

    run_platform(seed_demo=demo)


@main.command()
def walkthrough() -> None:
    """Take the demo's submitted application to `closed` through the Python client, one role
    per step, and show the messages the group received (against `make run`'s platform, or
    the APIs at <SERVICE>_URL)."""
    from kube.catalogue import SERVICES as services
    from kube.localrun import jwt_secret, port_of
    from kube.walkthrough import run as walk

    urls = {
        s.name: os.environ.get(f"{s.name.upper()}_URL")
        or f"http://127.0.0.1:{port_of(s, os.environ)}"
        for s in services
    }
    try:
        walk(urls, jwt_secret())
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None


for _service in SERVICES:
    for _command in _service.commands:
        main.add_command(_command)


if __name__ == "__main__":
    main()
