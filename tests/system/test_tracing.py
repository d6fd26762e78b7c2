"""One referral creation is one trace across gateway, referral, directory and consent."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from proof.harness import ProofStack, consent_and_refer, running_stack
from services.registry import SERVICE_NAMES, WITH_MIGRATIONS
from shared.telemetry import KEPT_ATTRIBUTES

pytestmark = pytest.mark.system
# The services an API call passes through (the workspace is a client of the gateway, not on it).
ON_THE_API_PATH = {entry.name for entry in WITH_MIGRATIONS}


@pytest.fixture(scope="module")
def traced_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProofStack]:
    workdir = tmp_path_factory.mktemp("traced")
    extra = {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with running_stack("sqlite", workdir, extra_env=extra) as stack:
        yield stack


def _spans(log_dir: Path) -> dict[str, list[dict[str, Any]]]:
    spans: dict[str, list[dict[str, Any]]] = {}
    for service in SERVICE_NAMES:
        for line in (log_dir / f"{service}.log").read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            if "context" in record and "trace_id" in record["context"]:
                spans.setdefault(service, []).append(record)
    return spans


def _create_referral(stack: ProofStack, subject: str) -> str:
    with stack.client("host_office") as host:
        return str(consent_and_refer(host, subject, "Traced")["id"])


def _trace_of_creation(spans: dict[str, list[dict[str, Any]]]) -> str | None:
    for span in spans.get("gateway", []):
        if span["kind"] == "SpanKind.SERVER" and span["name"] == "POST /api/v1/referrals":
            return str(span["context"]["trace_id"])
    return None


def test_one_referral_creation_is_one_trace_across_the_four_services(
    traced_stack: ProofStack,
) -> None:
    subject = f"trace-{secrets.token_hex(8)}"
    _create_referral(traced_stack, subject)
    log_dir = traced_stack.workdir / "logs"
    deadline = time.monotonic() + 15
    trace_id = None
    while time.monotonic() < deadline:
        spans = _spans(log_dir)
        trace_id = _trace_of_creation(spans)
        in_trace = {
            service
            for service, found in spans.items()
            if any(s["context"]["trace_id"] == trace_id for s in found)
        }
        if trace_id and in_trace == ON_THE_API_PATH:
            break
        time.sleep(0.3)
    assert trace_id is not None, "the gateway exported no span for POST /referrals"
    assert in_trace == ON_THE_API_PATH
    every = [s for found in spans.values() for s in found]
    assert all(set(s["attributes"]) <= KEPT_ATTRIBUTES for s in every)
    assert not any(subject in json.dumps(s) for s in every), "a pseudonym reached a span"


def test_log_lines_and_problems_carry_the_trace_id(traced_stack: ProofStack) -> None:
    with traced_stack.client("host_office") as host:
        token = host.token()

    answer = httpx.post(
        f"{traced_stack.base_url}/api/v1/referrals",
        json={"service_id": "not-a-uuid"},
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
    )
    assert answer.status_code == 422
    trace_id = answer.json()["trace_id"]
    assert len(trace_id) == 32
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        logged = (traced_stack.workdir / "logs" / "referral.log").read_text(errors="replace")
        if f'"trace_id":"{trace_id}"' in logged:
            break
        time.sleep(0.3)
    assert f'"trace_id":"{trace_id}"' in logged
