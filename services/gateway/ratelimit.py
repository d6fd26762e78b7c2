"""Token buckets per key (source address, client): in memory for one process, in Redis when
REFEX_REDIS_URL is set."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import coredis
from starlette.requests import Request

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
    """Token buckets in this process (one gateway replica), at most `capacity` of them.

    Buckets are kept in least-recently-used order: one untouched long enough to be full again
    is forgotten (a full bucket and no bucket mean the same), and beyond `capacity` the least
    recently used goes, so memory stays bounded whatever keys callers invent.
    """

    def __init__(
        self,
        *,
        rate_per_s: float,
        burst: int,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._refill_s = burst / rate_per_s
        self._capacity = capacity
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    async def take(self, key: str) -> float:
        now = self._clock()
        self._forget_full(now)
        tokens, last = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self._rate
        self._buckets[key] = (tokens - 1 if tokens >= 1 else tokens, now)
        while len(self._buckets) > self._capacity:
            self._buckets.popitem(last=False)
        return wait

    def _forget_full(self, now: float) -> None:
        while self._buckets:
            _, last = next(iter(self._buckets.values()))
            if now - last < self._refill_s:
                return
            self._buckets.popitem(last=False)

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
    *,
    redis_url: str | None,
    rate_per_s: float,
    burst: int,
    prefix: str = "refex:rl:",
    capacity: int = 10_000,
) -> RateLimiter:
    """Return the Redis limiter when a URL is configured, else the in-memory one."""
    if redis_url:
        return RedisRateLimiter(redis_url, rate_per_s=rate_per_s, burst=burst, prefix=prefix)
    return MemoryRateLimiter(rate_per_s=rate_per_s, burst=burst, capacity=capacity)


def source_address(peer: str | None, forwarded_for: Sequence[str], trusted_proxies: int) -> str:
    """Return the address a request came from, as a rate-limit key.

    With `trusted_proxies` proxies in front, the entry the outermost of them appended to
    X-Forwarded-For is the caller; entries left of it are the caller's own claims. IPv6
    callers are keyed by their /64, which one host usually holds whole.
    """
    address = peer or "unknown"
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    if trusted_proxies and hops:
        address = hops[-min(trusted_proxies, len(hops))]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return peer or "unknown"
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def request_address(request: Request, trusted_proxies: int) -> str:
    """Return the rate-limit key of the address `request` came from (see `source_address`)."""
    peer = request.client.host if request.client else None
    return source_address(peer, request.headers.getlist("x-forwarded-for"), trusted_proxies)
