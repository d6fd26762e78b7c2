"""PII canary in sealed mode: the sender's system encrypts, so no server process holds a canary.

The journey is the partner SDK's (refex_client): preview, seal every permitted section locally,
send, read, work the referral, add a sealed note. While referrals are being created, a thread
reads the referral process's whole memory (`/proc/<pid>/mem`, every readable mapping) again
and again; afterwards every service process is dumped once more. Logs, databases, /metrics,
every response and webhook body are scanned as in the server-side canary.

For contrast the same dump is taken around one server-mode referral with its own canaries: there
refex minimises and encrypts on receipt, so the plaintext passes through the referral process (and
the gateway, which proxies the body) and can stay in freed memory. That row documents honestly
where plaintext passes in server mode.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from proof.canary import (
    ALL_CATEGORIES,
    CanaryResult,
    canaries,
    canary_casefile,
    register_webhooks,
    scan_databases,
    scan_logs,
    scan_metrics,
    scan_responses,
    scan_webhooks,
    wait_for_webhooks,
)
from proof.harness import ProofStack, RecordingTransport, WebhookReceiver
from refex_client import RefexClient, open_note, open_referral
from shared.demo import DEMO_HEALTH_SERVICE, HEALTH_PROVIDER_ORG, HOST_OFFICE_ORG

SEALED_REFERRALS = 3
MAPPING = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+)")


@dataclass
class MemoryScan:
    """How much process memory was read and which canaries it held."""

    dumps: int = 0
    bytes_read: int = 0
    unreadable_regions: int = 0
    hits: set[str] = field(default_factory=set)
    where: set[str] = field(default_factory=set)


def dump_process(pid: int, needles: dict[str, bytes], scan: MemoryScan, label: str) -> None:
    """Read every readable mapping of `pid` and record which needles it holds."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as memory:
        for line in maps:
            match = MAPPING.match(line)
            if not match or "r" not in match.group(3) or "[vvar" in line or "[vsyscall" in line:
                continue
            start, end = int(match.group(1), 16), int(match.group(2), 16)
            try:
                memory.seek(start)
                chunk = memory.read(end - start)
            except (OSError, ValueError, OverflowError):
                scan.unreadable_regions += 1
                continue
            scan.bytes_read += len(chunk)
            for name, needle in needles.items():
                if needle in chunk:
                    scan.hits.add(name)
                    scan.where.add(label)
    scan.dumps += 1


def _needles(c: dict[str, str]) -> dict[str, bytes]:
    # Long free-text canaries only: dates and the phone number are too short to be telling.
    return {name: value.encode() for name, value in c.items() if value.startswith(("Cnry", "cnry"))}


class Dumper:
    """Dump one process in a loop on a thread until stopped."""

    def __init__(self, pid: int, needles: dict[str, bytes], scan: MemoryScan, label: str) -> None:
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=self._loop, args=(pid, needles, scan, label), daemon=True
        )

    def _loop(self, pid: int, needles: dict[str, bytes], scan: MemoryScan, label: str) -> None:
        while not self.stop_event.is_set():
            dump_process(pid, needles, scan, label)

    def __enter__(self) -> Dumper:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop_event.set()
        self.thread.join()


def sdk_client(stack: ProofStack, role: str) -> RefexClient:
    """A partner SDK client whose responses land in `stack.seen` for the response scan."""
    creds = stack.credentials()[role]
    return RefexClient(
        stack.base_url,
        creds["client_id"],
        creds["client_secret"],
        transport=RecordingTransport(stack.seen),
    )


def _consent(host: RefexClient, subject: str) -> None:
    until = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    host.request("POST", "consents", json_body={
        "subject_ref": subject, "grantor": "self",
        "grantee": {"kind": "organisation", "org_id": str(HEALTH_PROVIDER_ORG)},
        "purpose": "referral", "categories": ALL_CATEGORIES, "valid_until": until,
        "language": "ha", "evidence": {"method": "written", "form_sha256": secrets.token_hex(32)},
    })  # fmt: skip


def _send_sealed(host: RefexClient, casefile: dict[str, Any]) -> dict[str, Any]:
    subject = f"proof-sealed-{secrets.token_hex(8)}"
    _consent(host, subject)
    sent = host.send_sealed(
        casefile=casefile,
        service_id=str(DEMO_HEALTH_SERVICE),
        subject_ref=subject,
        requested_categories=ALL_CATEGORIES,
    )
    return dict(sent)


def sealed_journey(stack: ProofStack, c: dict[str, str], memory: MemoryScan) -> list[str]:
    """Send sealed referrals while the referral process is dumped; work one; return what opens."""
    casefile = canary_casefile(c)
    referral_pid = stack.stack.processes["referral"].pid
    seen: list[str] = []
    with sdk_client(stack, "host_office") as host, sdk_client(stack, "provider") as provider:
        with Dumper(referral_pid, _needles(c), memory, "referral (during creation)"):
            sent = [_send_sealed(host, casefile) for _ in range(SEALED_REFERRALS)]
        first = sent[0]
        seen.append(str(open_referral(provider.referral(first["id"]), stack.private_key(
            HEALTH_PROVIDER_ORG))))  # fmt: skip
        for status in ("received", "accepted", "in-progress"):
            provider.set_status(first["id"], status)
        provider.add_note(first["id"], c["note_text"])
        note = host.notes(first["id"])[0]
        seen.append(open_note(note, stack.private_key(HOST_OFFICE_ORG)))
    return seen


def server_mode_control(stack: ProofStack) -> MemoryScan:
    """One server-mode referral with its own canaries, dumped the same way: where plaintext is."""
    c = canaries()
    scan = MemoryScan()
    referral_pid = stack.stack.processes["referral"].pid
    with sdk_client(stack, "host_office") as host:
        subject = f"proof-server-{secrets.token_hex(8)}"
        _consent(host, subject)
        with Dumper(referral_pid, _needles(c), scan, "referral (during creation)"):
            body = {
                "service_id": str(DEMO_HEALTH_SERVICE),
                "subject_ref": subject,
                "requested_categories": ALL_CATEGORIES,
                "casefile": canary_casefile(c),
            }
            host.request("POST", "referrals", json_body=body)
            time.sleep(0.5)
    _dump_services(stack, _needles(c), scan)
    return scan


def _dump_services(stack: ProofStack, needles: dict[str, bytes], scan: MemoryScan) -> None:
    for name, process in stack.stack.processes.items():
        dump_process(process.pid, needles, scan, name)


def prove_sealed(stack: ProofStack) -> dict[str, Any]:
    """Run the sealed canary journey and scan everything, process memory included."""
    receiver = WebhookReceiver()
    receiver.start()
    try:
        register_webhooks(stack, receiver.url)
        c = canaries()
        memory = MemoryScan()
        decrypted = sealed_journey(stack, c, memory)
        wait_for_webhooks(receiver, minimum=SEALED_REFERRALS)
        time.sleep(1.0)  # let the last log lines and deliveries land
        _dump_services(stack, _needles(c), memory)
        result = CanaryResult(canaries=len(c))
        scan_logs(stack, c, result)
        scan_metrics(stack, c, result)
        scan_responses(stack, c, result)
        scan_webhooks(receiver, c, result)
        scan_databases(stack, c, result)
        plain = " ".join(decrypted).lower()
        result.decrypted = sorted(name for name, v in c.items() if v.lower() in plain)
    finally:
        receiver.stop()
    control = server_mode_control(stack)
    return {
        **result.as_dict(),
        "decrypted": result.decrypted,
        "memory": _memory_summary(memory),
        "server_mode_memory": _memory_summary(control),
    }


def _memory_summary(scan: MemoryScan) -> dict[str, Any]:
    return {
        "dumps": scan.dumps,
        "megabytes_read": round(scan.bytes_read / 1e6, 1),
        "unreadable_regions": scan.unreadable_regions,
        "canaries_found": sorted(scan.hits),
        "found_in": sorted(scan.where),
    }
