"""A trivial Celery task with the platform's Celery settings (`shared.tasks.configure_celery`):
the bare round trip over Redis that a benchmark sets a pipeline's latency beside. The task
only pushes the worker's clock onto a Redis list the sender waits on.

    # from bench/, with REDIS_URL and BENCH_PROBE_QUEUE set
    python -m celery -A celery_probe worker --concurrency 1 ...
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

from shared.tasks import configure_celery

PONG = "bench.probe.pong"


def probe_celery(redis_url: str, queue: str) -> Celery:
    """A Celery app on the platform's settings, sending to and consuming `queue`."""
    return configure_celery(Celery("kube-bench-probe"), redis_url, queue)


_replies: redis.Redis | None = None


def _client() -> redis.Redis:
    # Made in the pool process that runs the task, after the fork.
    global _replies
    if _replies is None:
        _replies = redis.Redis.from_url(os.environ["REDIS_URL"])
    return _replies


# The worker's app (`-A celery_probe`); a sender builds its own with probe_celery().
celery = probe_celery(os.environ.get("REDIS_URL", ""), os.environ.get("BENCH_PROBE_QUEUE", ""))


@celery.task(name=PONG)
def pong(reply_key: str) -> None:
    """Push the worker's wall-clock time onto `reply_key`."""
    _client().lpush(reply_key, repr(time.time()))
