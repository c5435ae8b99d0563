"""Prometheus metrics of a service's API (`GET /metrics`): request counts and latency by route
template, kept by each process, and the platform's gauges (queue lengths, unpublished outbox
events, dead letters, event lag), read from PostgreSQL and Redis when scraped.

Under gunicorn, request metrics are written to files in `PROMETHEUS_MULTIPROC_DIR` (set by
`kube.gunicorn_config` before any worker starts) and summed over every worker at each scrape,
so whichever worker answers, the counters are those of the whole instance. Without it (the
test suite, one process) they live in this process's memory. The gauges carry no labels but
the service, queue, dependency and producer: no personal data and no per-region figures."""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import redis
from flask import Response, request
from kombu.transport.redis import PRIORITY_STEPS
from kombu.transport.redis import Channel as RedisChannel
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from shared.errors import Unauthenticated
from shared.service import ServiceContext

log = logging.getLogger(__name__)

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# prometheus_client picks its value store when first imported: decide with it, not later.
_MULTIPROCESS = MULTIPROCESS_DIR_ENV in os.environ

# Counts stop here, so a scrape stays one bounded index read however large a backlog grows.
COUNT_CAP = 100_000
# A scrape's reads give up after this long (e.g. behind a migration's table lock).
STATEMENT_TIMEOUT_MS = 2000
# The route label of a request no route matched (404, 405): never the raw path.
UNMATCHED_ROUTE = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# No `*_created` series: multiprocess mode has none, so a scrape looks the same either way.
disable_created_metrics()
_request_metrics = CollectorRegistry(auto_describe=True)
HTTP_REQUESTS = Counter(
    "kube_http_requests",
    "HTTP requests answered, by route template and status.",
    ["service", "method", "route", "status"],
    registry=_request_metrics,
)
HTTP_REQUEST_DURATION = Histogram(
    "kube_http_request_duration_seconds",
    "Time from a request's arrival in the app to its answer, by route template.",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0),
    registry=_request_metrics,
)


def observe_request(service: str, method: str, route: str | None, status: int, seconds: float):
    """Count one answered request (`route`: the Flask rule that matched, or None)."""
    method = method if method in _METHODS else "other"
    route = route or UNMATCHED_ROUTE
    HTTP_REQUESTS.labels(service, method, route, str(status)).inc()
    HTTP_REQUEST_DURATION.labels(service, method, route).observe(seconds)


def metrics_response(context: ServiceContext) -> Response:
    """The scrape: request metrics of every process of this instance, then the gauges."""
    token = context.settings.metrics_token
    if token and not _bearer_matches(token):
        raise Unauthenticated("Send the metrics token (KUBE_METRICS_TOKEN) as a Bearer token.")
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(_Scrape(context))
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


def _bearer_matches(token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


class _Scrape:
    """What one scrape exposes, as one collector for prometheus_client's encoders."""

    def __init__(self, context: ServiceContext):
        self.context = context

    def collect(self) -> Iterator:
        if _MULTIPROCESS:
            yield from MultiProcessCollector(None).collect()
        else:
            yield from _request_metrics.collect()
        yield from platform_gauges(self.context)


@dataclass(frozen=True)
class EventTableFigures:
    unpublished: int
    oldest_unpublished_age: float
    dead_letters: int
    retries: int
    # (producer, unsettled, seconds since the last catch-up pass or None, pass failed)
    feeds: list[tuple[str, int, float | None, bool]]


def platform_gauges(context: ServiceContext) -> Iterator[GaugeMetricFamily]:
    """The gauges read at scrape time; a dependency that is down is reported, never raised."""
    service = context.settings.service
    up = GaugeMetricFamily(
        "kube_dependency_up",
        "Whether the scrape could read the dependency (1) or not (0).",
        labels=["service", "dependency"],
    )

    lengths = _queue_lengths(context)
    up.add_metric([service, "redis"], 0 if lengths is None else 1)
    if lengths is not None:
        queues = GaugeMetricFamily(
            "kube_celery_queue_length",
            "Messages waiting in the service's Celery queue (not yet taken by a worker).",
            labels=["service", "queue"],
        )
        for queue, length in lengths.items():
            queues.add_metric([service, queue], length)
        yield queues

    figures = _event_table_figures(context)
    up.add_metric([service, "database"], 0 if figures is None else 1)
    if figures is not None:
        yield from _event_gauges(service, figures)
    yield up


def _event_gauges(service: str, figures: EventTableFigures) -> Iterator[GaugeMetricFamily]:
    yield _gauge(
        "kube_outbox_unpublished_events",
        f"Outbox events not yet published by the relay (counted up to {COUNT_CAP}).",
        service,
        figures.unpublished,
    )
    yield _gauge(
        "kube_outbox_oldest_unpublished_age_seconds",
        "Age of the oldest outbox event not yet published (0 when none waits).",
        service,
        figures.oldest_unpublished_age,
    )
    yield _gauge(
        "kube_dead_letters_pending",
        f"Dead letters not replayed (counted up to {COUNT_CAP}).",
        service,
        figures.dead_letters,
    )
    yield _gauge(
        "kube_event_retries_pending",
        f"Events whose handler failed and waits for its next try (counted up to {COUNT_CAP}).",
        service,
        figures.retries,
    )
    unsettled = GaugeMetricFamily(
        "kube_event_feed_unsettled",
        "Events of a producer not yet applied at the consumer's last catch-up pass.",
        labels=["service", "producer"],
    )
    checked = GaugeMetricFamily(
        "kube_event_feed_checked_age_seconds",
        "Seconds since the consumer's last catch-up pass over a producer's feed.",
        labels=["service", "producer"],
    )
    failing = GaugeMetricFamily(
        "kube_event_feed_failing",
        "Whether the last catch-up pass over a producer's feed failed (1) or not (0).",
        labels=["service", "producer"],
    )
    for producer, count, age, failed in figures.feeds:
        unsettled.add_metric([service, producer], count)
        if age is not None:
            checked.add_metric([service, producer], age)
        failing.add_metric([service, producer], 1 if failed else 0)
    yield from (unsettled, checked, failing)


def _gauge(name: str, documentation: str, service: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation, labels=["service"])
    gauge.add_metric([service], value)
    return gauge


def _queue_lengths(context: ServiceContext) -> dict[str, int] | None:
    """LLEN of the service's queue (kombu keeps one Redis list per priority step), or None."""
    queue = context.settings.queue
    lists = [queue] + [f"{queue}{RedisChannel.sep}{step}" for step in PRIORITY_STEPS if step]
    try:
        pipe = context.redis.pipeline(transaction=False)
        for key in lists:
            pipe.llen(key)
        return {queue: sum(pipe.execute())}
    except redis.RedisError as exc:
        log.warning("metrics: redis unreadable", extra={"error": type(exc).__name__})
        return None


def _event_table_figures(context: ServiceContext) -> EventTableFigures | None:
    """One bounded read of the service's event tables (indexed where they can grow), or None."""
    tables = context.tables
    outbox, dead, attempts, cursors = (
        tables.outbox,
        tables.dead_letters,
        tables.attempts,
        tables.cursors,
    )
    unpublished = outbox.published_at.is_(None)

    def capped_count(statement):
        return select(func.count()).select_from(statement.limit(COUNT_CAP).subquery())

    # Both outbox reads use the partial index of unpublished rows (ix_outbox_events_pending).
    totals = select(
        capped_count(select(outbox.id).where(unpublished)).scalar_subquery(),
        select(func.extract("epoch", func.statement_timestamp() - func.min(outbox.created_at)))
        .where(unpublished)
        .scalar_subquery(),
        capped_count(select(dead.id).where(dead.replayed_at.is_(None))).scalar_subquery(),
        capped_count(select(attempts.event_id)).scalar_subquery(),
    )
    feeds = select(
        cursors.producer,
        cursors.unsettled,
        func.extract("epoch", func.statement_timestamp() - cursors.checked_at),
        cursors.error.is_not(None),
    ).order_by(cursors.producer)
    try:
        with context.db.transaction() as session:
            session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
            count, age, letters, retries = session.execute(totals).one()
            rows = session.execute(feeds).all()
    except (SQLAlchemyError, OSError) as exc:
        log.warning("metrics: database unreadable", extra={"error": type(exc).__name__})
        return None
    return EventTableFigures(
        unpublished=count,
        oldest_unpublished_age=max(0.0, float(age or 0)),
        dead_letters=letters,
        retries=retries,
        feeds=[
            (producer, unsettled, None if seconds is None else max(0.0, float(seconds)), failed)
            for producer, unsettled, seconds, failed in rows
        ],
    )
