"""A rate limit per provider that holds across every worker process, kept in Redis.

Each provider has a sliding window: at most `count` sends in any `seconds`-long span, as
Redis's own clock sees it. One Lua script checks and records sends atomically (a batch of
deliveries asks for several slots at once), so processes racing for the last slot cannot
both win. A refused caller learns how long until a slot frees up, and a Celery task
retries with that countdown instead of sleeping.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import redis

# KEYS[1] the provider's window (a sorted set of sends scored by microseconds);
# ARGV: count, window in microseconds, how many sends are asked for, a unique prefix for
# their members. Returns {granted, microseconds until the oldest send leaves the window
# (0 when every send asked for was granted)}.
_ACQUIRE = """
local key = KEYS[1]
local count = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local granted = math.min(wanted, count - redis.call('ZCARD', key))
if granted < 0 then granted = 0 end
for i = 1, granted do
  redis.call('ZADD', key, now, ARGV[4] .. ':' .. i)
end
if granted > 0 then
  redis.call('PEXPIRE', key, math.ceil(window / 1000) + 1000)
end
if granted == wanted then
  return {granted, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {granted, math.max(1, tonumber(oldest[2]) + window - now)}
"""


@dataclass(frozen=True)
class Rate:
    """At most `count` sends in any span of `seconds`."""

    count: int
    seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.count < 1 or not self.seconds > 0:
            raise ValueError("a rate needs a count of at least 1 and a positive span")

    @classmethod
    def per_second(cls, rate: float) -> Rate:
        """A rate of `rate` sends a second; below 1, one send every 1/rate seconds."""
        if not rate > 0:
            raise ValueError("a rate must be a positive number of sends a second")
        if rate >= 1:
            # Rounded down: a limit is never exceeded by rounding.
            return cls(math.floor(rate), 1.0)
        return cls(1, 1 / rate)


class RateLimiter:
    """Shared send slots per provider name; a provider without a rate is not limited."""

    def __init__(
        self,
        client: redis.Redis,
        rates: Mapping[str, Rate | float],
        key_prefix: str = "kube:ratelimit",
    ):
        self.client = client
        self.rates = {
            name: rate if isinstance(rate, Rate) else Rate.per_second(rate)
            for name, rate in rates.items()
        }
        self.key_prefix = key_prefix
        self._acquire = client.register_script(_ACQUIRE)

    def key(self, provider: str) -> str:
        return f"{self.key_prefix}:{provider}"

    def acquire(self, provider: str) -> float:
        """Take a send slot for `provider`: 0.0 when taken, else the seconds to wait before
        asking again."""
        granted, wait = self.acquire_many(provider, 1)
        return 0.0 if granted else wait

    def acquire_many(self, provider: str, wanted: int) -> tuple[int, float]:
        """Take up to `wanted` send slots for `provider` in one call: how many were taken,
        and, when fewer than asked, the seconds until the next one frees up."""
        rate = self.rates.get(provider)
        if rate is None or wanted < 1:
            return max(wanted, 0), 0.0
        granted, micros = self._acquire(
            keys=[self.key(provider)],
            args=[rate.count, math.ceil(rate.seconds * 1_000_000), wanted, uuid.uuid4().hex],
        )
        return int(granted), int(micros) / 1_000_000

    def reset(self, provider: str) -> None:
        """Forget every recorded send of `provider`."""
        self.client.delete(self.key(provider))
