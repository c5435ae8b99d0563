"""The per-provider rate limit, shared through real Redis by separate processes."""

from __future__ import annotations

import multiprocessing
import time
import uuid

import pytest
import redis

from services.notifications.providers.ratelimit import Rate, RateLimiter

from support import RUN_ID


@pytest.fixture
def key_prefix(redis_url):
    """A prefix no other test or run uses; its keys are deleted afterwards."""
    prefix = f"kubetest-{RUN_ID}-{uuid.uuid4().hex[:8]}:ratelimit"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_a_slot_is_refused_past_the_limit_with_the_wait_until_one_frees(redis_client, key_prefix):
    # A long span, so a slow machine cannot let the first slot expire during the test.
    limiter = RateLimiter(redis_client, {"gw": Rate(3, 30.0)}, key_prefix)

    assert [limiter.acquire("gw") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("gw")

    assert 0 < wait <= 30
    # A refused call takes no slot: the next refusal waits no longer.
    assert 0 < limiter.acquire("gw") <= wait


def test_a_batch_gets_the_slots_that_are_left_and_the_wait_for_the_rest(redis_client, key_prefix):
    limiter = RateLimiter(redis_client, {"gw": Rate(5, 30.0)}, key_prefix)
    assert limiter.acquire_many("gw", 3) == (3, 0.0)
    granted, wait = limiter.acquire_many("gw", 4)
    assert granted == 2 and 0 < wait <= 30
    assert limiter.acquire_many("gw", 2)[0] == 0
    assert limiter.acquire("gw") > 0
    assert redis_client.zcard(limiter.key("gw")) == 5


def test_providers_have_their_own_slots(redis_client, key_prefix):
    limiter = RateLimiter(redis_client, {"a": Rate(1, 30.0), "b": Rate(1, 30.0)}, key_prefix)
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0
    assert limiter.acquire("b") == 0.0


def test_a_provider_without_a_rate_is_not_limited(redis_client, key_prefix):
    limiter = RateLimiter(redis_client, {}, key_prefix)
    assert [limiter.acquire("smtp") for _ in range(50)] == [0.0] * 50
    assert not list(redis_client.scan_iter(f"{key_prefix}:*"))


def test_limiters_with_other_prefixes_do_not_share_slots(redis_client, key_prefix):
    one = RateLimiter(redis_client, {"gw": Rate(1, 30.0)}, key_prefix + "-one")
    two = RateLimiter(redis_client, {"gw": Rate(1, 30.0)}, key_prefix + "-two")
    try:
        assert one.acquire("gw") == 0.0
        assert two.acquire("gw") == 0.0
    finally:
        one.reset("gw")
        two.reset("gw")


def test_reset_frees_every_slot(redis_client, key_prefix):
    limiter = RateLimiter(redis_client, {"gw": Rate(1, 30.0)}, key_prefix)
    limiter.acquire("gw")
    limiter.reset("gw")
    assert limiter.acquire("gw") == 0.0


def test_the_window_key_expires_on_its_own(redis_client, key_prefix):
    limiter = RateLimiter(redis_client, {"gw": Rate(2, 5.0)}, key_prefix)
    limiter.acquire("gw")
    assert 0 < redis_client.pttl(limiter.key("gw")) <= 6000


@pytest.mark.parametrize(
    "per_second, rate",
    [(5, Rate(5, 1.0)), (2.7, Rate(2, 1.0)), (1, Rate(1, 1.0)), (0.5, Rate(1, 2.0))],
)
def test_rates_per_second(per_second, rate):
    assert Rate.per_second(per_second) == rate


@pytest.mark.parametrize("bad", [0, -1])
def test_a_rate_must_be_positive(bad):
    with pytest.raises(ValueError):
        Rate.per_second(bad)


SLOTS_EACH = 10
LIMIT = 5


def _take_slots(redis_url: str, key_prefix: str, start, results) -> None:
    """Take SLOTS_EACH slots as fast as the limiter allows; report when each was asked for
    and granted."""
    client = redis.Redis.from_url(redis_url)
    limiter = RateLimiter(client, {"gw": LIMIT}, key_prefix)
    start.wait(60)
    granted, deadline = [], time.monotonic() + 90
    while len(granted) < SLOTS_EACH and time.monotonic() < deadline:
        asked = time.time()
        wait = limiter.acquire("gw")
        if wait == 0:
            granted.append((asked, time.time()))
        else:
            time.sleep(min(wait, 1.0))
    results.put(granted)


def test_two_processes_together_never_exceed_the_limit_in_any_second(redis_url, key_prefix):
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    processes = [
        context.Process(target=_take_slots, args=(redis_url, key_prefix, start, results))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    granted = [results.get(timeout=180) for _ in processes]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0

    assert [len(each) for each in granted] == [SLOTS_EACH, SLOTS_EACH]
    grants = sorted(g for each in granted for g in each)
    # A grant happened somewhere between its ask and its answer. Count, for every
    # one-second window starting at an ask, the grants surely inside it: never above LIMIT,
    # however slowly a busy machine ran either process.
    for window_start, _ in grants:
        inside = [
            1
            for asked, answered in grants
            if window_start <= asked and answered < window_start + 1.0
        ]
        assert len(inside) <= LIMIT, (window_start, grants)
    # And the limit really held them back: 20 grants at 5 a second span at least 3 seconds.
    assert grants[-1][1] - grants[0][0] >= (2 * SLOTS_EACH / LIMIT) - 1
