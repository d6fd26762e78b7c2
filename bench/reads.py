"""One authenticated single-row read, straight at the service and through the gateway.

For each backend (SQLite files, then PostgreSQL when reachable) the four services are started
on fresh databases with the demo data; then, alternately and repeated, a bare FastAPI ping,
`GET /services/{id}` straight at the directory with the demo host office's token, and the same
read through the gateway (`/api/v1/directory/services/{id}`), 16 concurrent each. Reported: the
direct read's ratio to ping, the gateway's ratio to direct, and the directory's CPU per read.

    .venv/bin/python bench/reads.py [--quick] [--profile]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import LoadResult, Target, get_request, median_of, parse_args, report, run_load
from bench._stack import RunningStack, postgres_reachable, running_stack
from bench.profiles import CpuWindow
from bench.referral_create import token
from shared.demo import DEMO_HEALTH_SERVICE

CONCURRENCY = 16
GOALS = {"sqlite": 0.15, "postgresql": 0.25}
GATEWAY_GOAL = 0.8


async def measure(stack: RunningStack, seconds: float, repeats: int) -> dict[str, Any]:
    async with aiohttp.ClientSession(trust_env=False) as session:
        bearer = await token(session, stack.url("gateway"), stack.credentials["host_office"])
    auth = {"Authorization": f"Bearer {bearer}"}
    path = f"/services/{DEMO_HEALTH_SERVICE}"
    requests = {
        "ping": get_request(f"{stack.url('ping')}/ping"),
        "direct": get_request(f"{stack.url('directory')}{path}", auth),
        "gateway": get_request(f"{stack.url('gateway')}/api/v1/directory{path}", auth),
    }
    cpu = CpuWindow({"directory": stack.pids["directory"]})
    runs: dict[str, list[LoadResult]] = {name: [] for name in requests}
    for _ in range(repeats):
        for name, request in requests.items():
            window = cpu if name == "direct" else None
            runs[name].append(
                await run_load(request, concurrency=CONCURRENCY, seconds=seconds, window=window)
            )
    reads = sum(run.requests for run in runs["direct"])
    return {
        **{name: median_of(results) for name, results in runs.items()},
        "directory_cpu_ms_per_read": cpu.per_operation_ms(max(reads, 1))["directory"],
    }


def rows_and_targets(backend: str, result: dict[str, Any]) -> tuple[list[Any], list[Target]]:
    direct = result["direct"]["rps"] / result["ping"]["rps"]
    through = result["gateway"]["rps"] / result["direct"]["rps"]
    rows = [
        {"backend": backend, "what": name, **result[name]} for name in ("ping", "direct", "gateway")
    ]
    rows[1]["directory_cpu_ms_per_read"] = result["directory_cpu_ms_per_read"]
    targets = [
        Target(f"{backend}: direct read / ping", round(direct, 4), GOALS[backend], ">=", "x"),
        Target(f"{backend}: gateway / direct", round(through, 4), GATEWAY_GOAL, ">=", "x"),
    ]
    return rows, targets


def main() -> None:
    args = parse_args(__doc__ or "")
    seconds, repeats = (3.0, 2) if args.quick else (8.0, 3)
    backends = ["sqlite"] + (["postgresql"] if postgres_reachable() else [])
    rows: list[Any] = []
    targets: list[Target] = []
    for backend in backends:
        with running_stack("reads", backend, profile=args.profile) as stack:
            result = asyncio.run(measure(stack, seconds, repeats))
        backend_rows, backend_targets = rows_and_targets(backend, result)
        rows += backend_rows
        targets += backend_targets
    report(
        "reads",
        targets,
        rows,
        notes=[
            f"median of {repeats} runs of {seconds:.0f} s, {CONCURRENCY} concurrent, ping, direct "
            "and gateway alternating; 2 shared cores; aiohttp client (asks for gzip)",
            "directory_cpu_ms_per_read: /proc utime+stime of the directory over the direct runs",
            *([] if "postgresql" in backends else ["PostgreSQL unreachable: not measured"]),
        ],
    )


if __name__ == "__main__":
    main()
