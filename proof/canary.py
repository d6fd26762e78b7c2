"""PII canary: distinctive values in every free-text case-file field must leak nowhere.

A full journey runs with a case file whose every text field holds a unique canary; then every log
line, every column of every table of the four databases (and, on SQLite, the raw database files),
each service's /metrics, every response body the clients saw and every webhook body are searched.
The canaries may appear only in what the recipient decrypts with its own private key.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

from proof.harness import ProofStack, WebhookReceiver
from shared.client import RefexClient, RefexError, open_note, open_payload
from shared.demo import (
    DEMO_HEALTH_SERVICE,
    DEMO_MENTAL_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    MENTAL_HEALTH_ORG,
)
from shared.vocabulary import DataCategory

ALL_CATEGORIES = [str(c) for c in DataCategory]
# Fields that cannot hold a canary: enumerations, codes, small integers (not personal text).
NOT_SCANNABLE = (
    "sex, nationality, preferred_language, document_type, issuing_country, preferred_channel, "
    "accompanying_persons, household_size, relation, age, flags, languages"
)


def canaries() -> dict[str, str]:
    """One distinctive value per free-text field, unique to this run."""
    run = secrets.token_hex(3)
    names = [
        "given_name", "family_name", "document_number", "address_on_return", "point_of_entry",
        "vulnerability_notes", "condition", "medication", "disability", "psychosocial_need",
        "risk_assessment", "education_level", "work_experience", "certificate", "need",
        "needs_summary", "plan_item", "concern", "protection_notes", "note_text",
        "feedback_comment", "override_statement", "attestation_statement"
    ]  # fmt: skip
    values = {name: f"Cnry{run}{name.replace('_', '')[:10]}Zq" for name in names}
    values["email"] = f"cnry{run}.mail@canary-{run}.example"
    values["phone"] = f"+999 {int(run, 16) % 9000 + 1000} 7{int(run, 16) % 1000:03d} 31"
    values["date_of_birth"] = "1907-02-03"
    values["return_date"] = "2031-09-17"
    values["plan_due"] = "2032-04-19"
    return values


def canary_casefile(c: dict[str, str]) -> dict[str, Any]:
    """A case file with every section filled, every free-text field a canary."""
    return {
        "identity_basic": {
            "given_name": c["given_name"], "family_name": c["family_name"],
            "date_of_birth": c["date_of_birth"], "sex": "undisclosed", "nationality": "NG",
            "preferred_language": "ha",
        },
        "identity_documents": {"documents": [
            {"document_type": "passport", "number": c["document_number"],
             "issuing_country": "NG"}]},
        "contact": {"phone": c["phone"], "email": c["email"],
                    "address_on_return": c["address_on_return"], "preferred_channel": "sms"},
        "return_travel": {"return_date": c["return_date"], "point_of_entry": c["point_of_entry"],
                          "accompanying_persons": 2},
        "household": {"household_size": 3, "dependants": [{"relation": "child", "age": 4}]},
        "vulnerability": {"flags": ["single_parent"], "notes": c["vulnerability_notes"]},
        "health_physical": {"conditions": [c["condition"]], "medication": [c["medication"]],
                            "disability": c["disability"]},
        "health_mental": {"psychosocial_needs": [c["psychosocial_need"]],
                          "risk_assessment": c["risk_assessment"]},
        "skills": {"education_level": c["education_level"],
                   "work_experience": [c["work_experience"]], "languages": ["en"],
                   "certificates": [c["certificate"]]},
        "needs_assessment": {"needs": [c["need"]], "summary": c["needs_summary"]},
        "plan": {"items": [{"description": c["plan_item"], "due": c["plan_due"]}]},
        "protection": {"concerns": [c["concern"]], "notes": c["protection_notes"]},
    }  # fmt: skip


@dataclass
class CanaryResult:
    """What was scanned, what was found, and what the recipient could read."""

    canaries: int = 0
    hits: list[str] = field(default_factory=list)
    scanned: dict[str, int] = field(default_factory=dict)
    decrypted: list[str] = field(default_factory=list)
    webhook_bodies: int = 0
    error_bodies: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "canaries": self.canaries,
            "plaintext_hits": len(self.hits),
            "hits": self.hits[:20],
            "scanned": self.scanned,
            "canaries_seen_after_decryption": len(self.decrypted),
            "webhook_bodies": self.webhook_bodies,
            "error_bodies": self.error_bodies,
            "not_scannable_fields": NOT_SCANNABLE,
        }


def _consent(client: RefexClient, subject: str, org: object) -> dict[str, Any]:
    until = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    consent: dict[str, Any] = client.post("consents", {
        "subject_ref": subject, "grantor": "self",
        "grantee": {"kind": "organisation", "org_id": str(org)}, "purpose": "referral",
        "categories": ALL_CATEGORIES, "valid_until": until, "language": "ha",
        "evidence": {"method": "written", "form_sha256": secrets.token_hex(32)},
    })  # fmt: skip
    return consent


def register_webhooks(stack: ProofStack, url: str) -> None:
    """Each partner points its own organisation's webhook at `url` (self-service)."""
    orgs = {"provider": HEALTH_PROVIDER_ORG, "host_office": HOST_OFFICE_ORG}
    for role, org in orgs.items():
        with stack.client(role) as client:
            client.request("PATCH", f"directory/organisations/{org}", json={"webhook_url": url})


def _provoke_errors(client: RefexClient, c: dict[str, str], subject: str) -> None:
    """Requests that must fail without echoing the personal data they carry."""
    bad_bodies = [
        {"service_id": str(DEMO_HEALTH_SERVICE), "subject_ref": subject,
         "requested_categories": ["contact"],
         "casefile": {"contact": {"phone": c["given_name"], "email": c["family_name"]}}},
        {"service_id": str(DEMO_HEALTH_SERVICE), "subject_ref": subject,
         "requested_categories": ["identity.basic"],
         "casefile": {"identity_basic": {"given_name": c["given_name"], "x": c["concern"]}}},
        {"service_id": str(DEMO_HEALTH_SERVICE), "subject_ref": c["given_name"],
         "requested_categories": ["identity.basic"],
         "casefile": {"identity_basic": {"given_name": "x" * 300 + c["family_name"]}}},
    ]  # fmt: skip
    for body in bad_bodies:
        try:
            client.post("referrals", body)
        except RefexError:
            continue
        raise AssertionError("an invalid referral was accepted")


def run_journey(stack: ProofStack, c: dict[str, str]) -> list[str]:
    """Refer with the canary case file, work it, override, withdraw; return what decrypts."""
    host, provider = stack.client("host_office"), stack.client("provider")
    professional = stack.client("mental_health_professional")
    casefile = canary_casefile(c)
    seen: list[str] = []
    try:
        subject = f"proof-{secrets.token_hex(10)}"
        consent = _consent(host, subject, HEALTH_PROVIDER_ORG)
        referral = host.post("referrals", {
            "service_id": str(DEMO_HEALTH_SERVICE), "subject_ref": subject,
            "requested_categories": ALL_CATEGORIES, "casefile": casefile})  # fmt: skip
        full = provider.get(f"referrals/{referral['id']}")
        seen.append(str(open_payload(full, stack.private_key(HEALTH_PROVIDER_ORG))))
        for status in ("received", "accepted", "in-progress"):
            provider.set_status(referral["id"], status)
        provider.post(f"referrals/{referral['id']}/notes", {"text": c["note_text"]})
        notes = host.notes(referral["id"])
        seen.append(open_note(notes[0], stack.private_key(HOST_OFFICE_ORG)))
        provider.set_status(referral["id"], "completed", outcome="got-help",
                            feedback={"score": 4, "comment": c["feedback_comment"]})  # fmt: skip
        _emergency(stack, host, professional, casefile, c, seen)
        second = host.post("referrals", {
            "service_id": str(DEMO_HEALTH_SERVICE), "subject_ref": subject,
            "requested_categories": ["identity.basic", "contact"],
            "casefile": casefile})  # fmt: skip
        host.post(f"consents/{consent['id']}/withdraw", {"reason": "returnee_request"})
        _wait_cancelled(provider, second["id"])
        _provoke_errors(host, c, subject)
        _reads_that_fail(stack, referral["id"])
    finally:
        for client in (host, provider, professional):
            client.close()
    return seen


def _emergency(
    stack: ProofStack,
    host: RefexClient,
    professional: RefexClient,
    casefile: dict[str, Any],
    c: dict[str, str],
    seen: list[str],
) -> None:
    subject = f"proof-{secrets.token_hex(10)}"
    override = host.post("overrides", {
        "subject_ref": subject, "recipient_org_id": str(MENTAL_HEALTH_ORG),
        "service_id": str(DEMO_MENTAL_HEALTH_SERVICE),
        "categories": ["identity.basic", "contact", "health.mental"],
        "statement": c["override_statement"]})  # fmt: skip
    professional.post(f"overrides/{override['id']}/attest", {
        "registration_number": "MDCN/2019/44812", "duration_hours": 24,
        "statement": c["attestation_statement"]})  # fmt: skip
    referral = host.post("referrals", {
        "service_id": str(DEMO_MENTAL_HEALTH_SERVICE), "subject_ref": subject,
        "urgency": "urgent", "requested_categories": ["identity.basic", "contact", "health.mental"],
        "casefile": casefile})  # fmt: skip
    # No demo client reads for the psychosocial NGO; the sender's own key opens it too.
    full = host.get(f"referrals/{referral['id']}")
    seen.append(str(open_payload(full, stack.private_key(HOST_OFFICE_ORG))))


def _wait_cancelled(provider: RefexClient, referral_id: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if provider.get(f"referrals/{referral_id}")["status"] == "cancelled":
            return
        time.sleep(0.3)
    raise AssertionError("withdrawing consent did not cancel the open referral")


def _reads_that_fail(stack: ProofStack, referral_id: str) -> None:
    with stack.client("host_office_2") as foreign:
        try:
            foreign.get(f"referrals/{referral_id}")
        except RefexError:
            return
    raise AssertionError("a foreign host office could read a referral")


def _find(text: str, where: str, c: dict[str, str], result: CanaryResult) -> None:
    lowered = text.lower()
    for name, value in c.items():
        if value.lower() in lowered:
            result.hits.append(f"{where}: {name}")


def scan_logs(stack: ProofStack, c: dict[str, str], result: CanaryResult) -> None:
    """Every line every service wrote."""
    lines = 0
    for log in sorted((stack.workdir / "logs").glob("*.log")):
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            lines += 1
            _find(line, f"log {log.name}:{number}", c, result)
    result.scanned["log_lines"] = lines


def scan_metrics(stack: ProofStack, c: dict[str, str], result: CanaryResult) -> None:
    """Each service's Prometheus output."""
    for name in stack.stack.ports:
        text = httpx.get(f"{stack.service_url(name)}/metrics", trust_env=False).text
        _find(text, f"/metrics of {name}", c, result)
    result.scanned["metrics_pages"] = len(stack.stack.ports)


def scan_responses(stack: ProofStack, c: dict[str, str], result: CanaryResult) -> None:
    """Every response body the clients received (errors included)."""
    for number, response in enumerate(stack.seen):
        if response.status_code >= 400:
            result.error_bodies += 1
        _find(response.text, f"response {number} ({response.status_code})", c, result)
    result.scanned["response_bodies"] = len(stack.seen)


def scan_webhooks(receiver: WebhookReceiver, c: dict[str, str], result: CanaryResult) -> None:
    """Every notification body delivered to the partners."""
    for number, body in enumerate(receiver.bodies):
        _find(body.decode(errors="replace"), f"webhook body {number}", c, result)
    result.webhook_bodies = len(receiver.bodies)


def _cell_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    return str(value)


def scan_sqlite(path: Path, c: dict[str, str], result: CanaryResult) -> int:
    """Every column of every table, then the raw file bytes (free pages and WAL included)."""
    cells = 0
    with sqlite3.connect(path) as connection:
        tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master "
                                                   "WHERE type='table'")]  # fmt: skip
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):  # noqa: S608
                for value in row:
                    cells += 1
                    _find(_cell_text(value), f"{path.name} table {table}", c, result)
    for raw in (path, path.with_name(path.name + "-wal")):
        if raw.exists():
            _find(raw.read_bytes().decode("latin-1"), f"raw file {raw.name}", c, result)
    return cells


async def _scan_postgres(url: str, service: str, c: dict[str, str], result: CanaryResult) -> int:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    cells = 0
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
        for table in tables:
            for row in await connection.fetch(f'SELECT * FROM "{table["tablename"]}"'):  # noqa: S608
                for value in row.values():
                    cells += 1
                    _find(_cell_text(value), f"{service} table {table['tablename']}", c, result)
    finally:
        await connection.close()
    return cells


def scan_databases(stack: ProofStack, c: dict[str, str], result: CanaryResult) -> None:
    """All four databases, every table, every column."""
    cells = 0
    for service, url in stack.database_urls.items():
        if url.startswith("sqlite"):
            cells += scan_sqlite(Path(url.split("///", 1)[1]), c, result)
        else:
            cells += asyncio.run(_scan_postgres(url, service, c, result))
    result.scanned["database_cells"] = cells


def wait_for_webhooks(receiver: WebhookReceiver, minimum: int, timeout_s: float = 30) -> None:
    """Give the outbox time to deliver (it sweeps every 0.2 s in the proof stack)."""
    deadline = time.monotonic() + timeout_s
    while len(receiver.bodies) < minimum and time.monotonic() < deadline:
        time.sleep(0.2)


def prove_no_leak(stack: ProofStack) -> CanaryResult:
    """Run the canary journey on `stack` and scan everything it left behind."""
    receiver = WebhookReceiver()
    receiver.start()
    try:
        register_webhooks(stack, receiver.url)
        c = canaries()
        decrypted = run_journey(stack, c)
        wait_for_webhooks(receiver, minimum=6)
        time.sleep(1.0)  # let the last log lines and deliveries land
        result = CanaryResult(canaries=len(c))
        scan_logs(stack, c, result)
        scan_metrics(stack, c, result)
        scan_responses(stack, c, result)
        scan_webhooks(receiver, c, result)
        scan_databases(stack, c, result)
        plain = " ".join(decrypted).lower()
        result.decrypted = sorted(name for name, v in c.items() if v.lower() in plain)
        return result
    finally:
        receiver.stop()
