"""Directory search at 1k, 10k and 100k services on SQLite and PostgreSQL.

Four query shapes (category + country + accepting, ranked free text, radius nearest-first, all
combined), each measured directly against a real directory process (uvicorn, loopback, one
worker, ES256 token verified on every request): requests/s at 16 concurrent clients with p50/p99,
and the unloaded p50 (one client). A bare FastAPI ping app is measured in the same run; ratios
divide by its requests/s. PostgreSQL: a bench database is created and dropped for each size.

    .venv/bin/python bench/directory_search.py [--quick]
"""

from __future__ import annotations

import asyncio
import multiprocessing
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import LoadResult, Target, median_of, parse_args, ping_app, report, run_load

SIZES = (1_000, 10_000, 100_000)
CONCURRENCY = 16
BASE_PARAMS = "limit=20"
# Each shape rotates through a few variants so no single cached plan or page is all we measure.
SHAPES: dict[str, list[str]] = {
    "category+country": [
        "category=health&country=NG&accepting=true",
        "category=tvet&country=SN&accepting=true",
        "category=legal&country=IQ&accepting=true",
        "category=housing&category=employment&country=GH&accepting=true",
    ],
    "text": ["q=counselling", "q=legal+aid", "q=vocational+training", "q=shelter+lagos"],
    "radius": [
        "near=6.52,3.38&radius_km=25",
        "near=14.72,-17.47&radius_km=25",
        "near=33.32,44.37&radius_km=25",
        "near=9.03,38.74&radius_km=25",
    ],
    "combined": [
        "q=clinic&category=health&country=NG&near=6.52,3.38&radius_km=50&accepting=true",
        "q=training&category=tvet&country=SN&near=14.72,-17.47&radius_km=50&accepting=true",
        "q=legal&category=legal&country=IQ&near=33.32,44.37&radius_km=50&accepting=true",
        "q=job&category=employment&country=GH&near=5.60,-0.19&radius_km=50&accepting=true",
    ],
}
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _serve(kind: str, port: int, database_url: str, jwks_file: str) -> None:
    import uvicorn

    if kind == "ping":
        app = ping_app()
    else:
        from services.directory.app import create_app
        from services.directory.settings import DirectorySettings

        settings = DirectorySettings(
            environment="development",
            database_url=database_url,
            jwks_file=Path(jwks_file),
            log_level="WARNING",
        )
        app = create_app(settings)
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, log_level="warning"
    )


def start(
    kind: str, port: int, database_url: str = "", jwks_file: str = ""
) -> multiprocessing.Process:
    """Start a server process and wait until it answers."""
    process = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(kind, port, database_url, jwks_file), daemon=True
    )
    process.start()
    probe = "/ping" if kind == "ping" else "/readyz"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{kind} did not start on port {port}")


def stop(process: multiprocessing.Process) -> None:
    process.terminate()
    process.join(10)
    if process.is_alive():
        process.kill()


def rotating_get(base: str, variants: list[str], headers: dict[str, str]) -> Any:
    """A RequestFn cycling through the variants of one shape."""

    async def request(session: aiohttp.ClientSession, n: int) -> bool:
        url = f"{base}/services/search?{BASE_PARAMS}&{variants[n % len(variants)]}"
        async with session.get(url, headers=headers) as response:
            body = await response.read()
            return response.status == 200 and b'"items":[' in body and body != b""

    return request


async def measure(request: Any, concurrency: int, seconds: float, repeats: int) -> dict[str, float]:
    runs: list[LoadResult] = [
        await run_load(request, concurrency=concurrency, seconds=seconds) for _ in range(repeats)
    ]
    return median_of(runs)


async def _ping(port: int, seconds: float, repeats: int) -> dict[str, float]:
    async def request(session: aiohttp.ClientSession, _n: int) -> bool:
        async with session.get(f"http://127.0.0.1:{port}/ping") as response:
            await response.read()
            return response.status == 200

    return await measure(request, CONCURRENCY, seconds, repeats)


def prepare(backend: str, size: int, workdir: Path) -> tuple[str, str | None]:
    """Create, migrate and fill a database; return its URL and (PostgreSQL) its name."""
    from services.directory.generator import load
    from shared.migrations import upgrade
    from tests.postgres import asyncpg_url, create_database, drop_database, with_database

    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / f'directory-{size}.db'}"
        name = None
    else:
        name = f"refex_bench_directory_{size}"
        drop_database(POSTGRES_ADMIN, name)
        create_database(POSTGRES_ADMIN, name)
        url = asyncpg_url(with_database(POSTGRES_ADMIN, name))
    upgrade("directory", url)
    asyncio.run(load(url, size, seed=42))
    return url, name


def postgres_available() -> bool:
    from tests.postgres import LOCAL_POSTGRES_URL, _reachable, run_sync

    return run_sync(lambda: _reachable(LOCAL_POSTGRES_URL))


def bench_one(
    backend: str,
    size: int,
    workdir: Path,
    jwks: Path,
    headers: dict[str, str],
    seconds: float,
    repeats: int,
) -> list[dict[str, Any]]:
    from services.stack import free_port
    from tests.postgres import drop_database

    started = time.perf_counter()
    url, name = prepare(backend, size, workdir)
    load_s = time.perf_counter() - started
    port = free_port()
    server = start("directory", port, url, str(jwks))
    rows = []
    try:
        base = f"http://127.0.0.1:{port}"
        for shape, variants in SHAPES.items():
            request = rotating_get(base, variants, headers)
            unloaded = asyncio.run(measure(request, 1, min(seconds, 2.0), 1))
            loaded = asyncio.run(measure(request, CONCURRENCY, seconds, repeats))
            rows.append(
                {
                    "backend": backend,
                    "services": size,
                    "shape": shape,
                    "rps": loaded["rps"],
                    "p50_ms": loaded["p50_ms"],
                    "p99_ms": loaded["p99_ms"],
                    "unloaded_p50_ms": unloaded["p50_ms"],
                    "errors": loaded["errors"] + unloaded["errors"],
                    "load_s": round(load_s, 1),
                }
            )
    finally:
        stop(server)
        if name:
            drop_database(POSTGRES_ADMIN, name)
    return rows


def summarise(rows: list[dict[str, Any]], ping_rps: float) -> tuple[list[Target], list[str]]:
    """The targets of docs/architecture.md ("Performance budget") at 100k on PostgreSQL."""

    def row(shape: str, size: int) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in rows
                if r["backend"] == "postgresql" and r["shape"] == shape and r["services"] == size
            ),
            None,
        )

    goals = {  # shape: (ratio, unloaded p50 ms, p50 100k / 1k or None)
        "category+country": (0.25, 1.0, 2.0),
        "text": (0.05, 3.0, None),
        "radius": (0.12, 2.0, 2.0),
        "combined": (0.04, 4.0, None),
    }
    targets: list[Target] = []
    for shape, (ratio, p50, growth) in goals.items():
        big, small = row(shape, 100_000), row(shape, 1_000)
        if big is None:
            continue
        targets.append(
            Target(f"{shape} 100k pg ratio to ping", big["rps"] / ping_rps, ratio, ">=", "x")
        )
        targets.append(
            Target(f"{shape} 100k pg unloaded p50", big["unloaded_p50_ms"], p50, "<=", "ms")
        )
        if growth and small:
            targets.append(
                Target(
                    f"{shape} p50 100k / 1k",
                    big["unloaded_p50_ms"] / small["unloaded_p50_ms"],
                    growth,
                    "<=",
                    "x",
                )
            )
        if shape == "text":
            targets.append(Target("text 100k pg p99 (16 clients)", big["p99_ms"], 30.0, "<=", "ms"))
    for r in rows:
        r["ratio_to_ping"] = round(r["rps"] / ping_rps, 3)
    notes = [
        f"ping: {ping_rps:.0f} requests/s at {CONCURRENCY} concurrent (same run, median)",
        "unloaded p50: one client; rps/p50/p99: 16 concurrent clients; limit=20 per page",
        "text: PostgreSQL ranks at most 1000 matches (services.directory.search.RANK_CAP)",
    ]
    return targets, notes


def main() -> None:
    from shared.testing import TokenMinter

    args = parse_args(__doc__ or "")
    seconds, repeats = (1.5, 1) if args.quick else (4.0, 3)
    workdir = Path(tempfile.mkdtemp(prefix="refex-bench-directory-"))
    minter = TokenMinter()
    jwks = minter.write_jwks(workdir / "jwks.json")
    token = minter.token(
        roles=["host_office"], org="0192f000-0000-7000-8000-000000000001", lifetime_s=3600
    )
    headers = {"Authorization": f"Bearer {token}"}
    from services.stack import free_port

    backends = ["sqlite"] + (["postgresql"] if postgres_available() else [])
    ping_port = free_port()
    ping = start("ping", ping_port)
    rows: list[dict[str, Any]] = []
    pings = []
    try:
        pings.append(asyncio.run(_ping(ping_port, seconds, repeats))["rps"])
        for backend in backends:
            for size in SIZES:
                rows += bench_one(backend, size, workdir, jwks, headers, seconds, repeats)
                print(f"measured {backend} {size}", flush=True)
        pings.append(asyncio.run(_ping(ping_port, seconds, repeats))["rps"])
    finally:
        stop(ping)
        shutil.rmtree(workdir, ignore_errors=True)
    ping_rps = sorted(pings)[len(pings) // 2]
    targets, notes = summarise(rows, ping_rps)
    if "postgresql" not in backends:
        notes.append("PostgreSQL not reachable at 127.0.0.1:5432: its rows and targets are missing")
    rows.insert(0, {"backend": "-", "services": 0, "shape": "ping", "rps": ping_rps})
    path = report("directory_search", targets, rows, notes)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
