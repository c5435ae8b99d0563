"""The `kube` command: tokens for local use, migrations, the outbox relay, the local run."""

from __future__ import annotations

import os
import signal
import threading

import click

from shared.auth import ROLES, issue_token
from shared.config import SERVICES, database_url_for, load_settings


@click.group()
def main() -> None:
    """Operate the KUBE platform."""


@main.command()
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES))
@click.option("--region", default="", help="Region-code prefix, e.g. 6472; empty for all.")
@click.option("--sub", default="local-user", help="The user the token names.")
@click.option("--ttl", default=8 * 3600, show_default=True, help="Lifetime in seconds.")
def token(roles: tuple[str, ...], region: str, sub: str, ttl: int) -> None:
    """Print an HS256 token signed with KUBE_JWT_SECRET, for local use."""
    secret = os.environ.get("KUBE_JWT_SECRET")
    if not secret:
        raise click.UsageError("KUBE_JWT_SECRET is not set.")
    click.echo(issue_token(secret, sub=sub, roles=list(roles), region=region, ttl_seconds=ttl))


def _services(names: tuple[str, ...]) -> list[str]:
    chosen = list(names) or [s for s in SERVICES if database_url_for(s)]
    if not chosen:
        raise click.UsageError("No service database is configured (<SERVICE>_DATABASE_URL).")
    return chosen


@main.command()
@click.argument("services", nargs=-1, type=click.Choice(SERVICES))
def migrate(services: tuple[str, ...]) -> None:
    """Upgrade each service's database to its newest migration."""
    from shared.migrate import upgrade

    for service in _services(services):
        upgrade(service, load_settings(service).database_url)
        click.echo(f"{service}: migrated")


@main.command()
@click.argument("services", nargs=-1, type=click.Choice(SERVICES))
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
    for service in chosen:
        settings = load_settings(service)
        models = __import__(f"services.{service}.models", fromlist=["OutboxEvent"])
        relays.append(
            Relay(
                service,
                Database(settings.database_url, pool_size=1),
                models.OutboxEvent,
                publisher,
                settings.relay_batch_size,
            )
        )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    run_relays(relays, first.redis_url, first.queue_prefix, first.relay_poll_seconds, stop)


@main.command()
@click.option("--demo/--no-demo", default=True, help="Seed demo groups on an empty registry.")
def run(demo: bool) -> None:
    """Start the whole platform as local processes (what `make run` calls)."""
    from shared.localrun import run_platform

    run_platform(seed_demo=demo)


class _ServiceCommands(click.Group):
    """A service's command group, imported only when it runs, so `shared` never imports services."""

    def __init__(self, target: str, **kwargs):
        super().__init__(**kwargs)
        self.target = target

    def _group(self) -> click.Group:
        import importlib

        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._group().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._group().get_command(ctx, cmd_name)


main.add_command(
    _ServiceCommands(
        "services.registry.cli:regions",
        name="regions",
        help="Load the official Kemendagri region table.",
    )
)


if __name__ == "__main__":
    main()
