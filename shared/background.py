"""One background runtime per app: periodic loops with jitter, started and stopped in lifespan.

Every service used to write its own `while True` loop and its own task cancellation; this is the
one copy. A loop that reports work done runs again at once (a backlog drains without waiting),
otherwise it sleeps its interval, spread by jitter so replicas do not poll in lock-step. A failing
round is logged and retried; it never ends the loop. Each loop's last success is kept and
exported, so an operator can alert on a worker that stopped making progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge

logger = logging.getLogger("refex.background")

# A job returns how much it did (truthy: run again now) or None when there is no notion of it.
Job = Callable[[], Awaitable[int | bool | None]]


@dataclass
class Loop:
    """A job run every `interval_s` seconds (± `jitter` of it) until the runtime stops."""

    name: str
    interval_s: float
    job: Job
    jitter: float = 0.1
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_success_at: float | None = None

    def next_sleep(self) -> float:
        """Seconds to wait before the next round."""
        spread = self.interval_s * self.jitter
        return max(0.0, self.interval_s + random.uniform(-spread, spread))

    async def run_once(self) -> int | bool | None:
        """Run one round, record its success; failures are logged, never raised."""
        try:
            done = await self.job()
        except Exception:
            logger.exception("background job failed", extra={"event": self.name})
            return None
        self.last_success_at = time.time()
        return done

    async def run_forever(self, on_success: Callable[[Loop], None]) -> None:
        """Repeat until cancelled; `wake` cuts a sleep short."""
        while True:
            done = await self.run_once()
            if self.last_success_at is not None:
                on_success(self)
            if done:
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.next_sleep())


class BackgroundRuntime:
    """The loops of one app: built with the app, loops registered and run in its lifespan."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.loops: dict[str, Loop] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._last_success = Gauge(
            "refex_background_last_success_timestamp_seconds",
            "Unix time at which each background loop last finished a round without error.",
            ["service", "loop"],
            registry=registry,
        )

    def run_every(self, name: str, interval_s: float, job: Job, *, jitter: float = 0.1) -> Loop:
        """Register `job` to run every `interval_s` seconds once the runtime starts."""
        if name in self.loops:
            raise ValueError(f"a background loop named {name!r} is already registered")
        loop = Loop(name=name, interval_s=interval_s, job=job, jitter=jitter)
        self.loops[name] = loop
        return loop

    def _record(self, loop: Loop) -> None:
        if loop.last_success_at is not None:
            self._last_success.labels(self.service, loop.name).set(loop.last_success_at)

    async def start(self) -> None:
        """Start every registered loop as a task."""
        for loop in self.loops.values():
            task = asyncio.create_task(loop.run_forever(self._record), name=f"refex-{loop.name}")
            self._tasks.append(task)

    async def stop(self) -> None:
        """Cancel every loop, wait until each has ended, and forget them (a lifespan's own)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.loops.clear()

    @contextlib.asynccontextmanager
    async def running(self, *, enabled: bool = True) -> AsyncIterator[BackgroundRuntime]:
        """Run the loops (when `enabled`) for the duration of the block."""
        if enabled:
            await self.start()
        try:
            yield self
        finally:
            await self.stop()
