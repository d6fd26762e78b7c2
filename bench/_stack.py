"""The four services as processes on fresh databases (SQLite files or PostgreSQL), for benches.

Everything runs on loopback in a temporary directory; `running_stack` stops the processes and
drops the PostgreSQL databases it created, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.profiles import Profiler
from bench.referral_create import ADMIN_URL, _admin, _database_url, _ping_up, start_ping
from services.registry import SERVICE_NAMES, WITH_DEMO_DATA, WITH_MIGRATIONS, load_settings
from services.stack import Stack, free_port
from shared.demo import DEMO_CLIENTS_FILE
from shared.migrations import upgrade


@dataclass
class RunningStack:
    """Where the services and the ping app listen, their processes, the demo credentials."""

    ports: dict[str, int]
    ping_port: int
    pids: dict[str, int]
    credentials: dict[str, dict[str, str]]

    def url(self, service: str) -> str:
        """Base URL of `service` (`gateway`, `directory`, ... or `ping`)."""
        port = self.ping_port if service == "ping" else self.ports[service]
        return f"http://127.0.0.1:{port}"


MIGRATED = tuple(entry.name for entry in WITH_MIGRATIONS)  # the services with a database


def _prepare(backend: str, run_id: str, workdir: Path) -> dict[str, str]:
    """Create, migrate and seed one database per service; return the REFEX_* URL variables."""
    env: dict[str, str] = {}
    for service in MIGRATED:
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{workdir / service}.db"
        else:
            name = f"refex_bench_{run_id}_{service}"
            asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
            url = _database_url(name)
        env[f"REFEX_{service.upper()}_DATABASE_URL"] = url
        os.environ[f"REFEX_{service.upper()}_DATABASE_URL"] = url
        upgrade(service, url)
    for entry in WITH_DEMO_DATA:
        asyncio.run(entry.seeder()(load_settings(entry.name)))
    return env


def _drop(backend: str, run_id: str) -> None:
    if backend != "postgresql":
        return
    for service in MIGRATED:
        name = f"refex_bench_{run_id}_{service}"
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def running_stack(bench: str, backend: str, *, profile: bool = False) -> Iterator[RunningStack]:
    """Start gateway, directory, consent and referral on `backend`, plus a bare ping app."""
    run_id = secrets.token_hex(4)
    workdir = Path(tempfile.mkdtemp(prefix=f"refex-{bench}-"))
    previous_dir = Path.cwd()
    os.chdir(workdir)  # demo keys and clients land here, not in the developer's var/
    env = {
        **os.environ,
        "REFEX_ENVIRONMENT": "development",
        "REFEX_GATEWAY_RATE_LIMIT_PER_S": "1000000",
        "REFEX_GATEWAY_RATE_LIMIT_BURST": "1000000",
    }
    profiler = Profiler(f"{bench}-{backend}", enabled=profile)
    env.update(profiler.env())
    stack = ping = None
    try:
        env.update(_prepare(backend, run_id, workdir))
        from services.cli import _with_service_clients

        ports = {name: free_port() for name in SERVICE_NAMES}
        stack = Stack(ports=ports, env=_with_service_clients(env), log_dir=workdir / "logs")
        stack.start()
        stack.wait_ready(180)  # a shared machine can take a while
        ping_port = free_port()
        ping = start_ping(ping_port)
        while not _ping_up(ping_port):
            time.sleep(0.1)
        pids = {name: process.pid for name, process in stack.processes.items()}
        for name, pid in pids.items():
            profiler.attach(name, pid)
        credentials = orjson.loads(DEMO_CLIENTS_FILE.read_bytes())
        yield RunningStack(ports, ping_port, pids, credentials)
    finally:
        if ping is not None:
            ping.terminate()
            ping.wait(10)
        if stack is not None:
            stack.stop()
        _drop(backend, run_id)
        for path in profiler.finish():
            print(f"profile: {path}")
        os.chdir(previous_dir)


def postgres_reachable() -> bool:
    """Whether the PostgreSQL server the benches use answers."""
    try:
        asyncio.run(_admin("SELECT 1"))
    except (OSError, Exception):
        return False
    return True


__all__ = ["ADMIN_URL", "RunningStack", "postgres_reachable", "running_stack"]
