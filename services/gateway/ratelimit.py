"""Per-client token buckets: in memory for one process, in Redis when REFEX_REDIS_URL is set."""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import coredis

logger = logging.getLogger("refex.gateway.ratelimit")

# Atomic refill-and-take; Redis' own clock so that every gateway replica agrees.
TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RateLimiter(Protocol):
    """Takes one token from a client's bucket."""

    async def take(self, key: str) -> float:
        """Return 0 when allowed, else the seconds until a token is available."""
        ...

    async def ping(self) -> None:
        """Raise when the backing store is unreachable."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryRateLimiter:
    """Token buckets in this process (one gateway replica)."""

    def __init__(self, *, rate_per_s: float, burst: int) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take(self, key: str) -> float:
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self._rate

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class RedisRateLimiter:
    """Token buckets in Redis, shared by every gateway replica."""

    def __init__(
        self, url: str, *, rate_per_s: float, burst: int, prefix: str = "refex:rl:"
    ) -> None:
        self._redis: Any = coredis.Redis.from_url(url, decode_responses=True)
        self._script = self._redis.register_script(TAKE_SCRIPT)
        self._args: list[Any] = [self._rate_text(rate_per_s), str(burst)]
        self._prefix = prefix

    @staticmethod
    def _rate_text(rate: float) -> str:
        return repr(float(rate))

    async def take(self, key: str) -> float:
        try:
            wait = await self._script(keys=[self._prefix + key], args=self._args)
        except (coredis.exceptions.RedisError, OSError):
            # Failing open: an unreachable Redis must not take the whole API down.
            logger.warning("rate limit store unreachable; request allowed")
            return 0.0
        return float(str(wait))

    async def ping(self) -> None:
        await self._redis.ping()

    async def aclose(self) -> None:
        close = getattr(self._redis, "aclose", None) or getattr(self._redis, "close", None)
        if close is not None:
            result = close()
            if hasattr(result, "__await__"):
                await result


def build_rate_limiter(
    *, redis_url: str | None, rate_per_s: float, burst: int, prefix: str = "refex:rl:"
) -> RateLimiter:
    """Return the Redis limiter when a URL is configured, else the in-memory one."""
    if redis_url:
        return RedisRateLimiter(redis_url, rate_per_s=rate_per_s, burst=burst, prefix=prefix)
    return MemoryRateLimiter(rate_per_s=rate_per_s, burst=burst)
