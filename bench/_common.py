"""What every benchmark shares: a bare ping app, a bounded load generator, results output.

Figures are compared within one run (ratio to the ping measured in the same run) because these
machines are shared and noisy; each measurement is repeated and the median reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from rich.console import Console
from rich.table import Table

RESULTS_DIR = Path(__file__).resolve().parent / "results"
console = Console()


def parse_args(description: str) -> argparse.Namespace:
    """Common flags: --quick for a run under a minute, --profile to profile the services."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="short run (under a minute)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile each service process it starts (py-spy, else cProfile) into "
        "bench/results/profiles/<bench>/",
    )
    return parser.parse_args()


def ping_app() -> Any:
    """A bare FastAPI app answering GET /ping: the reference every ratio divides by."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


@dataclass
class LoadResult:
    """Throughput and latency of one bounded load run."""

    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> dict[str, float]:
        return {
            "rps": round(self.rps, 1),
            "p50_ms": round(self.percentile(50), 3),
            "p99_ms": round(self.percentile(99), 3),
            "errors": self.errors,
            "requests": self.requests,
        }


RequestFn = Callable[[aiohttp.ClientSession, int], Awaitable[bool]]


class Window(Protocol):
    """Something measured over exactly the timed part of a load run (e.g. CPU per process)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


async def run_load(
    request: RequestFn,
    *,
    concurrency: int,
    seconds: float,
    warmup_s: float = 0.5,
    window: Window | None = None,
) -> LoadResult:
    """Run `request` from `concurrency` workers for `seconds`; it returns True on success.

    `window`, when given, is started after the warm-up and stopped when the last worker ends.
    """
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    latencies: list[float] = []
    errors = 0
    counter = 0
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        warm_until = time.perf_counter() + warmup_s
        while time.perf_counter() < warm_until:
            await request(session, -1)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors, counter
            while time.perf_counter() < deadline:
                counter += 1
                started = time.perf_counter()
                ok = await request(session, counter)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += 0 if ok else 1

        if window is not None:
            window.start()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        if window is not None:
            window.stop()
    return LoadResult(len(latencies), errors, elapsed, latencies)


def get_request(url: str, headers: dict[str, str] | None = None) -> RequestFn:
    """A RequestFn doing GET `url` and expecting 200."""

    async def request(session: aiohttp.ClientSession, _n: int) -> bool:
        async with session.get(url, headers=headers) as response:
            await response.read()
            return response.status == 200

    return request


def median_of(runs: list[LoadResult]) -> dict[str, float]:
    """Median rps, p50 and p99 over repeated runs."""
    return {
        "rps": round(statistics.median(r.rps for r in runs), 1),
        "p50_ms": round(statistics.median(r.percentile(50) for r in runs), 3),
        "p99_ms": round(statistics.median(r.percentile(99) for r in runs), 3),
        "errors": sum(r.errors for r in runs),
    }


@dataclass
class Target:
    """One goal a benchmark checks."""

    name: str
    value: float
    goal: float
    op: str  # ">=" or "<="
    unit: str

    @property
    def met(self) -> bool:
        return self.value >= self.goal if self.op == ">=" else self.value <= self.goal


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """Print rows of one shape as a table whose columns are the first row's keys."""
    table = Table(title=title)
    columns = list(rows[0]) if rows else []
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    console.print(table)


def report(
    name: str,
    targets: list[Target],
    measurements: list[dict[str, Any]],
    notes: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Print the tables and write bench/results/<name>.json (with `extra`'s keys added)."""
    print_table(f"{name}: measurements", measurements)
    goals = Table(title=f"{name}: targets")
    for column in ("target", "value", "goal", "met"):
        goals.add_column(column)
    for target in targets:
        goals.add_row(
            target.name,
            f"{target.value:.4g} {target.unit}",
            f"{target.op} {target.goal:g} {target.unit}",
            "yes" if target.met else "NO",
        )
    console.print(goals)
    for note in notes or []:
        console.print(f"note: {note}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(
        json.dumps(
            {
                "targets": [{**asdict(t), "met": t.met} for t in targets],
                "measurements": measurements,
                "notes": notes or [],
                **(extra or {}),
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
        )
    )
    return path
