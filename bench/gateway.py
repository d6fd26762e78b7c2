"""Gateway proxy overhead: the same authenticated GET directly and through the gateway.

One run compares three proxy clients (httpx default transport, httpx over AiohttpTransport,
bare aiohttp) at 1 and 32 connections. The upstream is a small service built like ours
(`build_service_app`, a `require_roles` route verifying the gateway's ES256 token against its
JWKS) answering a ~1.5 KB directory-like read. Everything listens on loopback only.

    .venv/bin/python bench/gateway.py [--quick]
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Annotated, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi import Depends

from bench._common import Target, get_request, median_of, parse_args, ping_app, report, run_load
from shared.auth import Principal, require_roles

VARIANTS = ("httpx", "httpx-aiohttp", "aiohttp")
CHOSEN = "aiohttp"
ORG = "0192f000-0000-7000-8000-000000000001"
PATH = f"/organisations/{ORG}"


def _payload() -> dict[str, Any]:
    services = [
        {
            "id": f"0192f000-0000-7000-9000-{n:012d}",
            "name": f"Service {n}",
            "category": "health",
            "languages": ["en", "yo"],
            "accepting_referrals": True,
            "admin_area": "NG-LA",
        }
        for n in range(8)
    ]
    return {"id": ORG, "name": "Lagos clinic", "country": "NG", "services": services}


def upstream_app(database_url: str, jwks_url: str) -> Any:
    """A service like ours: shared app factory, token verified, one read route."""
    from services.directory.settings import DirectorySettings
    from shared.app import build_service_app

    settings = DirectorySettings(
        environment="development",
        database_url=database_url,
        jwks_url=jwks_url,
        log_level="WARNING",
    )
    app = build_service_app(title="bench upstream", description="bench", settings=settings)
    payload = _payload()

    @app.get("/organisations/{org_id}")
    async def read(
        org_id: str, principal: Annotated[Principal, Depends(require_roles("host_office"))]
    ) -> dict[str, Any]:
        return payload

    return app


def gateway_app(database_url: str, kek: str, upstream_url: str, variant: str) -> Any:
    """The real gateway with one proxy client variant."""
    from services.gateway.app import create_app
    from services.gateway.settings import GatewaySettings

    settings = GatewaySettings(
        environment="development",
        database_url=database_url,
        key_encryption_key=kek,
        directory_url=upstream_url,
        proxy_client=variant,
        log_level="WARNING",
        rate_limit_per_s=1e9,
        rate_limit_burst=10**9,
        openapi_retry_interval_s=600,
    )
    return create_app(settings)


def _serve(factory: str, port: int, args: tuple[Any, ...]) -> None:
    import uvicorn

    app = ping_app() if factory == "ping" else globals()[factory](*args)
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, log_level="warning"
    )


def start(factory: str, port: int, *args: Any) -> multiprocessing.Process:
    """Start one server process and wait until it answers."""
    process = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(factory, port, args), daemon=True
    )
    process.start()
    deadline = time.monotonic() + 30
    probe = "/ping" if factory == "ping" else "/healthz"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{factory} did not start on port {port}")


def stop(process: multiprocessing.Process) -> None:
    process.terminate()
    process.join(10)
    if process.is_alive():
        process.kill()


async def register_client(database_url: str) -> tuple[str, str]:
    """Register a host-office client in the gateway database."""
    import uuid

    from services.gateway import service as registry
    from services.gateway.schemas import ClientCreate
    from shared.db import Database

    database = Database(database_url, pool_size=1)
    try:
        async with database.sessionmaker.begin() as session:
            client, secret = await registry.create_client(
                session=session,
                client_in=ClientCreate(name="bench", org_id=uuid.UUID(ORG), roles=["host_office"]),
            )
        return client.client_id, secret
    finally:
        await database.dispose()


async def get_token(gateway_url: str, client_id: str, secret: str) -> str:
    import httpx

    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.post(
            f"{gateway_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure_pair(
    urls: dict[str, str],
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
    repeats: int,
    gateway_pid: int,
) -> dict[str, dict[str, Any]]:
    """Alternate short runs of each path so that load from elsewhere hits both alike."""
    runs: dict[str, list[Any]] = {label: [] for label in urls}
    gateway_cpu = 0.0
    for _ in range(repeats):
        for label, url in urls.items():
            before = cpu_seconds(gateway_pid)
            result = await run_load(
                get_request(url, headers), concurrency=concurrency, seconds=seconds
            )
            if label == "gateway":
                gateway_cpu += cpu_seconds(gateway_pid) - before
            runs[label].append(result)
    summary: dict[str, dict[str, Any]] = {label: median_of(r) for label, r in runs.items()}
    # Includes the warm-up requests, which run_load does not count: an upper bound.
    served = sum(r.requests for r in runs["gateway"])
    summary["gateway"]["gateway_cpu_ms_per_req"] = round(1000 * gateway_cpu / served, 3)
    return summary


def main() -> None:
    from services.gateway.keys import new_kek_text
    from services.stack import free_port
    from shared.migrations import upgrade

    args = parse_args(__doc__ or "")
    seconds, repeats = (1.0, 2) if args.quick else (2.0, 6)
    workdir = Path(tempfile.mkdtemp(prefix="refex-bench-gateway-"))
    gateway_db = f"sqlite+aiosqlite:///{workdir / 'gateway.db'}"
    upgrade("gateway", gateway_db)
    client_id, secret = asyncio.run(register_client(gateway_db))
    kek = new_kek_text()
    ports = {"gateway": free_port(), "upstream": free_port(), "ping": free_port()}
    gateway_url = f"http://127.0.0.1:{ports['gateway']}"
    upstream_url = f"http://127.0.0.1:{ports['upstream']}"
    rows: list[dict[str, Any]] = []
    processes = [start("ping", ports["ping"])]
    try:
        gateway = start("gateway_app", ports["gateway"], gateway_db, kek, upstream_url, CHOSEN)
        processes.append(gateway)
        processes.append(
            start(
                "upstream_app",
                ports["upstream"],
                f"sqlite+aiosqlite:///{workdir / 'upstream.db'}",
                f"{gateway_url}/.well-known/jwks.json",
            )
        )
        token = asyncio.run(get_token(gateway_url, client_id, secret))
        headers = {"Authorization": f"Bearer {token}"}
        ping_url = f"http://127.0.0.1:{ports['ping']}/ping"
        ping_run = asyncio.run(run_load(get_request(ping_url), concurrency=32, seconds=seconds))
        ping = median_of([ping_run])
        rows.append({"client": "-", "path": "ping", "connections": 32, **ping})
        for variant in VARIANTS:
            stop(gateway)
            processes.remove(gateway)
            gateway = start("gateway_app", ports["gateway"], gateway_db, kek, upstream_url, variant)
            processes.append(gateway)
            rows.extend(
                asyncio.run(
                    compare(
                        variant, upstream_url, gateway_url, headers, seconds, repeats, gateway.pid
                    )
                )
            )
    finally:
        for process in processes:
            stop(process)
    for row in rows:
        row.setdefault("gateway_cpu_ms_per_req", "-")
    targets, notes = summarise(rows)
    path = report("gateway", targets, rows, notes)
    print(f"wrote {path}")


async def compare(
    variant: str,
    upstream_url: str,
    gateway_url: str,
    headers: dict[str, str],
    seconds: float,
    repeats: int,
    gateway_pid: int,
) -> list[dict[str, Any]]:
    """Direct and through-gateway at 1 and 32 connections, interleaved run by run."""
    urls = {"direct": f"{upstream_url}{PATH}", "gateway": f"{gateway_url}/api/v1/directory{PATH}"}
    rows = []
    for connections in (1, 32):
        pair = await measure_pair(urls, headers, connections, seconds, repeats, gateway_pid)
        for label, result in pair.items():
            if result["errors"]:
                raise RuntimeError(f"{variant} {label}: {result['errors']} failed requests")
            rows.append({"client": variant, "path": label, "connections": connections, **result})
    return rows


def summarise(rows: list[dict[str, Any]]) -> tuple[list[Target], list[str]]:
    """Ratios per variant; targets apply to the chosen client."""

    def row(variant: str, path: str, connections: int) -> dict[str, Any]:
        return next(
            r
            for r in rows
            if r["client"] == variant and r["path"] == path and r["connections"] == connections
        )

    notes, targets = [], []
    for variant in VARIANTS:
        ratio = row(variant, "gateway", 32)["rps"] / row(variant, "direct", 32)["rps"]
        added = row(variant, "gateway", 1)["p50_ms"] - row(variant, "direct", 1)["p50_ms"]
        notes.append(
            f"{variant}: through-gateway {ratio:.2f}x direct rps at 32 connections, "
            f"+{added:.3f} ms p50 at 1 connection"
        )
        if variant == CHOSEN:
            targets.append(Target(f"{variant} rps ratio @32", ratio, 0.50, ">=", "x"))
            targets.append(Target(f"{variant} added p50 @1", added, 0.5, "<=", "ms"))
    return targets, notes


if __name__ == "__main__":
    main()
