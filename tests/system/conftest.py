"""The four services as real processes on free ports, seeded with the demo data."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from proof.harness import stack_env
from services.cli import _with_service_clients
from services.registry import SERVICE_NAMES, WITH_DEMO_DATA, WITH_MIGRATIONS, load_settings
from services.stack import Stack, free_port
from tests.conftest import DatabaseFactory


@dataclass
class RunningStack:
    """A started stack and where its gateway listens."""

    stack: Stack
    base_url: str
    workdir: Path
    database_urls: dict[str, str]


def _seed(env: dict[str, str]) -> None:
    """Run every demo seeder against the stack's databases (in a thread: no running loop)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        for entry in WITH_DEMO_DATA:
            seeding = entry.seeder()(load_settings(entry.name))
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(asyncio.run, seeding).result()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def running_stack(
    request: pytest.FixtureRequest,
    database_factory: DatabaseFactory,
    postgres_admin_url: str | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningStack]:
    """Start the stack once per module and backend; always stop it, even when tests fail."""
    if request.param == "postgresql" and postgres_admin_url is None:
        pytest.skip("PostgreSQL not available")
    workdir = tmp_path_factory.mktemp(f"stack-{request.param}")
    previous = Path.cwd()
    os.chdir(workdir)  # demo keys, clients and dev secrets land in this stack's own var/
    urls = {
        entry.name: database_factory.fresh(entry.name, request.param, keep=True)
        for entry in WITH_MIGRATIONS
    }
    env = stack_env(urls)
    stack = Stack(ports={n: free_port() for n in SERVICE_NAMES}, env=env, log_dir=workdir / "logs")
    try:
        _seed(env)
        stack.env = _with_service_clients(env)
        stack.start()
        stack.wait_ready(90)
        yield RunningStack(stack, f"http://127.0.0.1:{stack.ports['gateway']}", workdir, urls)
    finally:
        stack.stop()
        os.chdir(previous)
        for url in urls.values():
            database_factory.release(url)
