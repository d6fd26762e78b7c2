"""A seeded stack of the four services in its own working directory, for the proof checks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson

from services.cli import _with_service_clients
from services.registry import SERVICE_NAMES, WITH_DEMO_DATA, WITH_MIGRATIONS, load_settings
from services.stack import Stack, free_port
from shared.client import RefexClient
from shared.demo import DEMO_HEALTH_SERVICE, HEALTH_PROVIDER_ORG
from shared.migrations import upgrade
from tests.postgres import asyncpg_url, create_database, drop_database, find_postgres, with_database

# A path of each service the gateway publishes (its merged OpenAPI is complete with all three).
UPSTREAM_MARKERS = ("/api/v1/directory/", "/api/v1/consents", "/api/v1/referrals")


@dataclass
class ProofStack:
    """A started stack: where it listens, its databases, logs and demo credentials."""

    stack: Stack
    backend: str
    workdir: Path
    database_urls: dict[str, str]
    seen: list[httpx.Response] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The gateway's base URL."""
        return f"http://127.0.0.1:{self.stack.ports['gateway']}"

    def service_url(self, name: str) -> str:
        """A service's own base URL (for /metrics and /readyz)."""
        return f"http://127.0.0.1:{self.stack.ports[name]}"

    def credentials(self) -> dict[str, dict[str, str]]:
        """The demo clients the gateway seed wrote, one per role."""
        creds: dict[str, dict[str, str]] = orjson.loads(
            (self.workdir / "var/demo/clients.json").read_bytes()
        )
        return creds

    def client(self, role: str) -> RefexClient:
        """A client for `role` whose every response is kept in `seen` (for leak scans)."""
        creds = self.credentials()[role]
        return RefexClient(
            self.base_url,
            creds["client_id"],
            creds["client_secret"],
            transport=RecordingTransport(self.seen),
        )

    def private_key(self, org: object) -> dict[str, Any]:
        """A demo organisation's private decryption key."""
        key: dict[str, Any] = orjson.loads((self.workdir / f"var/demo/keys/{org}.jwk").read_bytes())
        return key

    def openapi(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """The gateway's merged OpenAPI once it holds every service's operations.

        The gateway loads the services' documents in the background and may answer with a
        partial document for the first seconds after it is ready.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            spec: dict[str, Any] = httpx.get(
                f"{self.base_url}/openapi.json", trust_env=False, timeout=30
            ).json()
            paths = " ".join(spec.get("paths", {}))
            if all(marker in paths for marker in UPSTREAM_MARKERS):
                return spec
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway's OpenAPI lacks a service: {sorted(spec)}")
            time.sleep(0.5)

    def restart(self, name: str) -> None:
        """Start one service again (in the stack's working directory)."""
        with within(self.workdir):
            self.stack.start_one(name)

    def env(self) -> dict[str, str]:
        """The environment the services run with (for `refex` commands on their databases)."""
        return dict(self.stack.env)


@contextmanager
def within(directory: Path) -> Iterator[None]:
    """Run a block in `directory` (services and commands find var/ relative to it)."""
    previous = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(previous)


class RecordingTransport(httpx.HTTPTransport):
    """Keep every response (body read) so a scan can look at all of them afterwards."""

    def __init__(self, seen: list[httpx.Response]) -> None:
        super().__init__(trust_env=False)
        self._seen = seen

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request, read the whole answer and remember it."""
        response = super().handle_request(request)
        response.read()
        self._seen.append(response)
        return response


def postgres_admin_url() -> str | None:
    """The PostgreSQL server to use, or None when there is none."""
    return find_postgres()[0]


def _fresh_urls(backend: str, workdir: Path, admin_url: str | None) -> dict[str, str]:
    urls: dict[str, str] = {}
    tag = uuid.uuid4().hex[:10]
    for name in (entry.name for entry in WITH_MIGRATIONS):
        if backend == "sqlite":
            urls[name] = f"sqlite+aiosqlite:///{workdir / f'{name}.db'}"
        else:
            assert admin_url is not None
            database = f"refex_proof_{tag}_{name}"
            create_database(admin_url, database)
            urls[name] = asyncpg_url(with_database(admin_url, database))
    for entry in WITH_MIGRATIONS:
        _in_thread(lambda e=entry: upgrade(e.migrations, urls[e.name]))
    return urls


def _in_thread(work: Any) -> Any:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


def _seed(env: dict[str, str]) -> None:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        for entry in WITH_DEMO_DATA:
            _in_thread(lambda e=entry: asyncio.run(e.seeder()(load_settings(e.name))))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def stack_env(urls: dict[str, str], extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a development stack on these databases with fast outbox sweeps."""
    env = {**os.environ, "REFEX_ENVIRONMENT": "development", "REFEX_LOG_LEVEL": "INFO"}
    env.update({f"REFEX_{n.upper()}_DATABASE_URL": url for n, url in urls.items()})
    env["REFEX_REFERRAL_OUTBOX_POLL_INTERVAL_S"] = "0.2"
    env["REFEX_CONSENT_OUTBOX_POLL_INTERVAL_S"] = "0.2"
    # The stacks' webhook receivers listen on 127.0.0.1: allowed here, never by default.
    env.update({f"REFEX_{n.upper()}_PARTNER_URLS_ALLOW_PRIVATE": "true" for n in urls})
    env.update(extra or {})
    return env


@contextmanager
def running_stack(
    backend: str, workdir: Path, *, extra_env: dict[str, str] | None = None
) -> Iterator[ProofStack]:
    """Migrate and seed fresh databases, start the four services; stop and drop at the end."""
    admin_url = postgres_admin_url() if backend == "postgresql" else None
    if backend == "postgresql" and admin_url is None:
        raise RuntimeError("PostgreSQL is not available; set REFEX_TEST_POSTGRES_URL")
    workdir.mkdir(parents=True, exist_ok=True)
    urls = _fresh_urls(backend, workdir, admin_url)
    env = stack_env(urls, extra_env)
    stack = Stack(ports={n: free_port() for n in SERVICE_NAMES}, env=env, log_dir=workdir / "logs")
    try:
        # Demo keys, clients and dev secrets land in this stack's own var/, and the services
        # (started from here) resolve their relative paths against it; the caller's working
        # directory is left alone.
        with within(workdir):
            _seed(env)
            stack.env = _with_service_clients(env)
            stack.start()
        stack.wait_ready(120)
        yield ProofStack(stack, backend, workdir, urls)
    finally:
        stack.stop()
        if admin_url is not None:
            for url in urls.values():
                drop_database(admin_url, url.rsplit("/", 1)[1])


class WebhookReceiver:
    """A local HTTP endpoint that records every webhook body it is sent (can be paused)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """Where partners' webhooks point."""
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        """Listen (again) on the same port."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.bodies.append(body)
                    receiver.headers.append(dict(self.headers.items()))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop listening (deliveries then fail and are retried)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict[str, Any]]:
        """The JSON bodies received so far."""
        with self._lock:
            return [json.loads(body) for body in self.bodies]


def consent_and_refer(host: RefexClient, subject: str, given_name: str) -> dict[str, Any]:
    """As the demo host office, record a 30-day consent and send the demo clinic a referral."""
    until = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    host.post("consents", {
        "subject_ref": subject, "grantor": "self",
        "grantee": {"kind": "organisation", "org_id": str(HEALTH_PROVIDER_ORG)},
        "purpose": "referral", "categories": ["identity.basic"], "valid_until": until,
        "language": "en", "evidence": {"method": "written", "form_sha256": "a" * 64}})  # fmt: skip
    sent: dict[str, Any] = host.post("referrals", {
        "service_id": str(DEMO_HEALTH_SERVICE), "subject_ref": subject,
        "requested_categories": ["identity.basic"],
        "casefile": {"identity_basic": {"given_name": given_name}}})  # fmt: skip
    return sent
