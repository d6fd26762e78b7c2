"""Faults (fast variant): a referral service killed with SIGKILL loses nothing and duplicates
nothing; the gateway's /readyz/upstreams says so while it is down, its own /readyz stays 200.
The full scenario is `make proof`."""

from __future__ import annotations

import time

import httpx
import pytest

from proof.faults import _consented_subject, _send
from proof.harness import ProofStack
from services.stack import is_ready
from shared.client import RefexClient

pytestmark = pytest.mark.system


def test_a_killed_referral_service_loses_nothing_and_replays_the_same_referral(
    proof_stack: ProofStack,
) -> None:
    ports = proof_stack.stack.ports
    with proof_stack.client("host_office") as host:
        subject = _consented_subject(host, time.monotonic() + 30)
        assert subject is not None
        created = _send(host, subject, "fault-key-1").json()
        before = _sent_ids(host)
        proof_stack.stack.kill("referral")
        deadline = time.monotonic() + 10
        while _upstreams(ports["gateway"]) == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _upstreams(ports["gateway"]) == 503  # the gateway reports referral down
        assert is_ready(ports["gateway"])  # and still issues tokens
        assert is_ready(ports["directory"])
        proof_stack.restart("referral")
        proof_stack.stack.wait_ready(60)
        replayed = _send(host, subject, "fault-key-1")
        assert replayed.json()["id"] == created["id"]
        assert host.get(f"referrals/{created['id']}")["id"] == created["id"]
        assert created["id"] in before
        assert _sent_ids(host) == before


def _sent_ids(host: RefexClient) -> list[str]:
    ids, params = [], {"box": "sent", "limit": 200}
    while True:
        page = host.get("referrals", **params)
        ids += [item["id"] for item in page["items"]]
        if not page.get("next_cursor"):
            return sorted(ids)
        params["cursor"] = page["next_cursor"]


def _upstreams(port: int) -> int:
    """Return the status of the gateway's /readyz/upstreams."""
    return httpx.get(f"http://127.0.0.1:{port}/readyz/upstreams", timeout=5).status_code
