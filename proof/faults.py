"""Faults under load: referral creations with idempotency keys while services die and restart.

Two client threads create referrals, each with its own Idempotency-Key, retrying a failed request
with the same key. Meanwhile each service in turn is killed with SIGKILL and restarted, and (on
PostgreSQL) every service connection is terminated with pg_terminate_backend. The providers'
webhook receiver is down for the whole load. Afterwards: every 201 seen is readable, replaying
every key creates nothing new, the database holds exactly one referral per key, and the receiver,
once back, gets an event for every referral.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

from proof.canary import register_webhooks
from proof.harness import ProofStack, WebhookReceiver
from services.registry import SERVICE_NAMES
from services.stack import is_ready
from shared.client import RefexClient, RefexError
from shared.demo import DEMO_HEALTH_SERVICE, HEALTH_PROVIDER_ORG

# The services whose /readyz checks others: it must report not ready while one of those is down.
# The gateway's /readyz is its own (database, signing keys): it reports upstreams at
# /readyz/upstreams.
READINESS_UPSTREAMS: dict[str, set[str]] = {
    "referral": {"directory", "consent"},
}
RETRY_PAUSE_S = 0.3
KEY_RETRY_S = 60.0


@dataclass
class LoadState:
    """What the clients saw."""

    created: dict[str, str] = field(default_factory=dict)  # idempotency key -> referral id
    subject_of: dict[str, str] = field(default_factory=dict)  # idempotency key -> subject sent
    attempts: int = 0
    failures: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def _consented_subject(client: RefexClient, give_up_at: float) -> str | None:
    """A new subject with consent to the clinic (one open referral per subject and service)."""
    until = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    subject = f"load-{secrets.token_hex(10)}"
    while time.monotonic() < give_up_at:
        try:
            client.post("consents", {
                "subject_ref": subject, "grantor": "self",
                "grantee": {"kind": "organisation", "org_id": str(HEALTH_PROVIDER_ORG)},
                "purpose": "referral", "categories": ["identity.basic", "contact"],
                "valid_until": until, "language": "en",
                "evidence": {"method": "written", "form_sha256": "b" * 64}})  # fmt: skip
            return subject
        except (RefexError, httpx.HTTPError):
            time.sleep(RETRY_PAUSE_S)
    return None


def referral_body(subject: str) -> dict[str, Any]:
    """A small referral."""
    return {
        "service_id": str(DEMO_HEALTH_SERVICE), "subject_ref": subject,
        "requested_categories": ["identity.basic", "contact"],
        "casefile": {"identity_basic": {"given_name": "Load"}, "contact": {"phone": "+1 555 0100"}},
    }  # fmt: skip


def _send(client: RefexClient, subject: str, key: str) -> httpx.Response:
    return client.request(
        "POST", "referrals", json=referral_body(subject), headers={"Idempotency-Key": key}
    )


def _worker(stack: ProofStack, state: LoadState, pause_s: float) -> None:
    with stack.client("host_office") as client:
        while not state.stop.is_set():
            give_up_at = time.monotonic() + KEY_RETRY_S
            subject = _consented_subject(client, give_up_at)
            key = str(uuid.uuid4())
            # The same key until it is created (even past the stop signal), within KEY_RETRY_S.
            while subject is not None and time.monotonic() < give_up_at:
                with state.lock:
                    state.attempts += 1
                try:
                    response = _send(client, subject, key)
                    with state.lock:
                        state.created[key] = response.json()["id"]
                        state.subject_of[key] = subject
                        state.statuses[201] = state.statuses.get(201, 0) + 1
                    break
                except (RefexError, httpx.HTTPError) as error:
                    status = error.status if isinstance(error, RefexError) else 0
                    with state.lock:
                        state.failures += 1
                        state.statuses[status] = state.statuses.get(status, 0) + 1
                    time.sleep(RETRY_PAUSE_S)
            time.sleep(pause_s)


def _readiness(stack: ProofStack, down: str) -> tuple[int, int]:
    """(truthful probes, probes) of the other services while `down` is down."""
    truthful = probes = 0
    for name in SERVICE_NAMES:
        if name == down:
            continue
        probes += 1
        ready = is_ready(stack.stack.ports[name])
        truthful += ready == (down not in READINESS_UPSTREAMS.get(name, set()))
    return truthful, probes


def _wait_ready(stack: ProofStack, name: str, timeout_s: float = 60) -> float:
    started = time.monotonic()
    while not is_ready(stack.stack.ports[name]):
        if time.monotonic() - started > timeout_s:
            return float("inf")
        time.sleep(0.05)
    return time.monotonic() - started


def kill_and_restart(stack: ProofStack, name: str, down_s: float) -> dict[str, Any]:
    """SIGKILL one service, probe the others' readiness, restart it and time its readiness."""
    stack.stack.kill(name)
    time.sleep(min(down_s, 1.5))  # let dependents notice (their checks are live probes)
    truthful, probes = _readiness(stack, name)
    time.sleep(max(0.0, down_s - 1.5))
    started = time.monotonic()
    stack.restart(name)
    ready_s = _wait_ready(stack, name)
    everyone_s = max(_wait_ready(stack, other) for other in SERVICE_NAMES)
    return {
        "service": name,
        "restart_ready_s": round(ready_s, 2),
        "all_ready_s": round(max(ready_s, time.monotonic() - started - ready_s + everyone_s), 2),
        "readyz_truthful": f"{truthful}/{probes}",
        "readyz_truthful_ok": truthful == probes,
    }


async def _terminate(urls: dict[str, str]) -> int:
    killed = 0
    for url in urls.values():
        plain = url.replace("+asyncpg", "")
        database = plain.rsplit("/", 1)[1]
        connection = await asyncpg.connect(plain.rsplit("/", 1)[0] + "/postgres")
        try:
            rows = await connection.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
            killed += len(rows)
        finally:
            await connection.close()
    return killed


def terminate_connections(stack: ProofStack) -> dict[str, Any]:
    """pg_terminate_backend every connection of the services; time until all are ready."""
    killed = asyncio.run(_terminate(stack.database_urls))
    started = time.monotonic()
    ready = max(_wait_ready(stack, name) for name in SERVICE_NAMES)
    return {"service": "postgresql connections", "terminated": killed,
            "all_ready_s": round(max(ready, time.monotonic() - started), 2)}  # fmt: skip


def _replay_all(stack: ProofStack, state: LoadState) -> int:
    """Send every created key again; return how many answered with a different referral."""
    different = 0
    with stack.client("host_office") as client:
        for key, referral_id in state.created.items():
            if _send(client, state.subject_of[key], key).json()["id"] != referral_id:
                different += 1
    return different


def _stored_referrals(stack: ProofStack) -> int:
    with stack.client("host_office") as client:
        total, params = 0, {"box": "sent", "limit": 200}
        while True:
            page = client.get("referrals", **params)
            total += len(page["items"])
            if not page.get("next_cursor"):
                return total
            params["cursor"] = page["next_cursor"]


def _all_readable(stack: ProofStack, state: LoadState) -> int:
    missing = 0
    with stack.client("host_office") as client:
        for referral_id in state.created.values():
            try:
                client.get(f"referrals/{referral_id}")
            except RefexError:
                missing += 1
    return missing


def run_faults(stack: ProofStack, *, down_s: float = 2.0, pause_s: float = 0.2,
               webhook_wait_s: float = 90) -> dict[str, Any]:  # fmt: skip
    """The whole scenario; returns its figures."""
    receiver = WebhookReceiver()  # registered but not listening: down for the whole load
    register_webhooks(stack, receiver.url)
    state = LoadState()
    workers = [threading.Thread(target=_worker, args=(stack, state, pause_s))
               for _ in range(2)]  # fmt: skip
    started = time.monotonic()
    for worker in workers:
        worker.start()
    faults: list[dict[str, Any]] = []
    try:
        time.sleep(2)
        for name in SERVICE_NAMES:
            faults.append(kill_and_restart(stack, name, down_s))
            time.sleep(1)
        if stack.backend == "postgresql":
            faults.append(terminate_connections(stack))
            time.sleep(1)
    finally:
        state.stop.set()
        for worker in workers:
            worker.join(timeout=120)
    load_s = time.monotonic() - started
    different = _replay_all(stack, state)
    stored = _stored_referrals(stack)
    receiver.start()
    try:
        delivered = _wait_webhooks(receiver, set(state.created.values()), webhook_wait_s)
    finally:
        receiver.stop()
    return {
        "backend": stack.backend,
        "load_s": round(load_s, 1),
        "requests": state.attempts,
        "failed_attempts_retried": state.failures,
        "statuses": {str(k): v for k, v in sorted(state.statuses.items())},
        "created_201": len(state.created),
        "missing_after": _all_readable(stack, state),
        "replays_with_other_id": different,
        "stored_referrals": stored,
        "duplicates": stored - len(state.created),
        "webhook_events_for_referrals": f"{delivered}/{len(state.created)}",
        "webhooks_complete": delivered == len(state.created),
        "faults": faults,
        "max_ready_s": max(f["all_ready_s"] for f in faults),
    }


def _wait_webhooks(receiver: WebhookReceiver, referral_ids: set[str], timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen = {str(event.get("referral_id")) for event in receiver.events()}
        if referral_ids <= seen:
            break
        time.sleep(0.5)
    return len(referral_ids & seen)
