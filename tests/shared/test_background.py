"""The background runtime: loops repeat, survive failures, record success, stop cleanly."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from shared.background import BackgroundRuntime, Loop


class TestLoops:
    async def test_a_failing_round_is_retried_and_success_is_recorded(self) -> None:
        registry = CollectorRegistry()
        runtime = BackgroundRuntime("consent", registry)
        rounds: list[int] = []
        finished = asyncio.Event()

        async def job() -> int:
            rounds.append(len(rounds))
            if len(rounds) == 1:
                raise RuntimeError("first round fails")
            if len(rounds) == 3:
                finished.set()
            return 0

        loop = runtime.run_every("flaky", 0.001, job, jitter=0)
        async with runtime.running():
            await finished.wait()
        assert len(rounds) >= 3 and loop.last_success_at is not None
        metrics = generate_latest(registry).decode()
        assert 'refex_background_last_success_timestamp_seconds{loop="flaky"' in metrics

    async def test_a_loop_that_did_work_runs_again_without_sleeping(self) -> None:
        runtime = BackgroundRuntime("referral")
        backlog = [3, 2, 1, 0]
        drained = asyncio.Event()

        async def job() -> int:
            left = backlog.pop(0)
            if not left:
                drained.set()
            return left

        runtime.run_every("drain", 3600.0, job)  # an hour's sleep would hang the test
        async with runtime.running():
            await drained.wait()
        assert backlog == []

    async def test_stop_cancels_every_loop_and_forgets_them(self) -> None:
        runtime = BackgroundRuntime("referral")
        started = asyncio.Event()

        async def forever() -> int:
            started.set()
            await asyncio.Event().wait()
            return 0

        runtime.run_every("a", 1.0, forever)
        async with runtime.running():
            await started.wait()
        assert runtime.loops == {}
        runtime.run_every("a", 1.0, forever)  # a new lifespan may register it again

    async def test_disabled_runtime_runs_nothing(self) -> None:
        runtime = BackgroundRuntime("referral")
        ran: list[int] = []

        async def job() -> int:
            ran.append(1)
            return 0

        runtime.run_every("never", 0.001, job)
        async with runtime.running(enabled=False):
            await asyncio.sleep(0)
        assert ran == []

    def test_names_are_unique(self) -> None:
        runtime = BackgroundRuntime("referral")

        async def job() -> int:
            return 0

        runtime.run_every("x", 1.0, job)
        with pytest.raises(ValueError, match="already registered"):
            runtime.run_every("x", 1.0, job)


def test_jitter_spreads_the_interval_within_its_bound() -> None:
    async def job() -> int:
        return 0

    loop = Loop(name="x", interval_s=10.0, job=job, jitter=0.2)
    sleeps = {loop.next_sleep() for _ in range(50)}
    assert all(8.0 <= s <= 12.0 for s in sleeps) and len(sleeps) > 1
