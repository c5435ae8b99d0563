"""A service as the platform sees it: what it contributes (`Service`) and, in a running
process, what its code works with (`ServiceContext`). Neither knows Flask: a worker or the
relay builds a context without importing any web code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis
from celery import Celery
from celery.signals import worker_ready
from sqlalchemy import MetaData

from shared.config import Settings
from shared.db import Database
from shared.encryption import DataKeyError, DataKeys, use_data_keys
from shared.events.consumer import Consumer, Handler
from shared.events.outbox import Outbox, redis_prompt, wake_key
from shared.events.store import EventTables
from shared.events.subscriptions import check_handler_table, check_publications
from shared.tasks import create_celery
from shared.workflow import Workflow


@dataclass(frozen=True)
class PeriodicTask:
    """A task the scheduler sends to the service's queue (`schedule`: seconds or a crontab)."""

    task: str
    schedule: object
    expires: float | None = None


@dataclass(frozen=True)
class Service:
    """Everything one service contributes to the platform, as data."""

    name: str
    default_port: int
    metadata: MetaData
    tables: EventTables
    migrations: Path
    # The event types it publishes through its outbox; the outbox refuses any other.
    publishes: tuple[str, ...] = ()
    # The event types it consumes and the handler of each; start-up checks they agree.
    subscribes_to: tuple[str, ...] = ()
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    # The services whose event feeds it reads to catch up on what the broker lost.
    event_sources: tuple[str, ...] = ()
    periodic_tasks: tuple[PeriodicTask, ...] = ()
    # click commands added to the `kube` command.
    commands: tuple = ()
    # The service's workflow tables, printed by `kube workflows` for the docs.
    workflows: tuple[Workflow, ...] = ()
    # Stores personal data encrypted: refuses to start without KUBE_DATA_KEYS and
    # KUBE_LOOKUP_KEY (shared/encryption.py).
    encrypts_personal_data: bool = False
    # Seeds demo data through the service's API: (base URLs by service, admin token).
    seed_demo: Callable[[Mapping[str, str], str], None] | None = None

    def __post_init__(self):
        check_handler_table(self.name, self.handlers, self.subscribes_to)
        check_publications(self.name, self.publishes)


@dataclass
class ServiceContext:
    """What a service's code needs in a running process: built once by `build_context`."""

    service: Service
    settings: Settings
    db: Database
    outbox: Outbox
    consumer: Consumer
    redis: redis.Redis
    celery: Celery

    @property
    def tables(self) -> EventTables:
        return self.service.tables


def build_context(service: Service, settings: Settings, *, pool_size: int = 5) -> ServiceContext:
    """Connect a service to its database, Redis and queue."""
    if not settings.event_signing_keys:
        raise RuntimeError(
            "Set KUBE_EVENT_SIGNING_KEYS (or KUBE_JWT_SECRET, from which one is derived): "
            "events are signed by their producer and checked by their consumers."
        )
    if service.encrypts_personal_data:
        try:
            use_data_keys(DataKeys.from_settings(settings))
        except DataKeyError as exc:
            raise RuntimeError(f"{service.name}: {exc}") from None
    db = Database(settings.database_url, pool_size=pool_size)
    client = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=0.5, socket_timeout=1.0
    )
    outbox = Outbox(
        service.name,
        service.tables.outbox,
        db,
        prompt=redis_prompt(client, wake_key(settings.queue_prefix, service.name)),
        signing_key=settings.event_signing_keys[0],
        publishes=service.publishes,
    )
    consumer = Consumer(
        service.name,
        db,
        service.tables,
        service.handlers,
        signing_keys=settings.event_signing_keys,
    )
    celery = create_celery(f"kube-{service.name}", settings)
    return ServiceContext(service, settings, db, outbox, consumer, client, celery)


# The context the Celery tasks of this process run with, one per service (a worker serves one).
_task_contexts: dict[str, ServiceContext] = {}


def serve_tasks(context: ServiceContext) -> Celery:
    """Make `context` the one this process's tasks of its service use; return its Celery app.

    A worker that starts catches up on its producers' feeds at once, not at the next tick."""
    _task_contexts[context.service.name] = context
    context.celery.set_default()
    if context.service.event_sources:

        @worker_ready.connect(weak=False)
        def catch_up_at_start(sender=None, **_kwargs):
            context.celery.send_task(
                f"{context.service.name}.catch_up_events", queue=context.settings.queue
            )

    return context.celery


def task_context(service: str) -> ServiceContext:
    """The context of `service`'s tasks in this process."""
    try:
        return _task_contexts[service]
    except KeyError:
        raise RuntimeError(
            f"No {service} context in this process: its tasks run in that service's worker."
        ) from None
