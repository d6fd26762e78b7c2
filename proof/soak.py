"""Soak: minutes of mixed traffic while each service's resident memory is sampled every 10 s.

Growth is measured from the first sample after a warm-up minute fraction to the last one, so the
imports and caches filled by the first requests do not count as a leak.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from proof.faults import _consented_subject, referral_body
from proof.harness import ProofStack, running_stack
from shared.client import RefexClient, RefexError

SAMPLE_EVERY_S = 10.0
TARGET_GROWTH = 0.10
TARGET_RSS_MB = 150.0


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (psutil when installed, else /proc)."""
    try:
        import psutil  # type: ignore[import-untyped]

        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _one_round(host: RefexClient, provider: RefexClient, auditor: RefexClient) -> int:
    """A caseworker's mix: consent, refer, read, list; a provider reads; an auditor checks."""
    subject = _consented_subject(host, time.monotonic() + 10)
    if subject is None:
        return 0
    sent = host.post("referrals", referral_body(subject))
    provider.get(f"referrals/{sent['id']}")
    provider.set_status(sent["id"], "received")
    host.get("referrals", box="sent", limit=20)
    host.get("directory/services/search", category="health", country="NG", limit=5)
    auditor.get("ledger/tree-head")
    auditor.get("referrals/stats")
    return 8


def _traffic(stack: ProofStack, stop: threading.Event, counts: dict[str, int]) -> None:
    with (
        stack.client("host_office") as host,
        stack.client("provider") as provider,
        stack.client("auditor") as auditor,
    ):
        while not stop.is_set():
            try:
                counts["requests"] += _one_round(host, provider, auditor)
            except RefexError:
                counts["errors"] += 1
            time.sleep(0.05)


def soak(stack: ProofStack, minutes: float) -> dict[str, Any]:
    """Run the traffic for `minutes`; return RSS samples and growth per service."""
    stop = threading.Event()
    counts = {"requests": 0, "errors": 0}
    thread = threading.Thread(target=_traffic, args=(stack, stop, counts))
    pids = {name: process.pid for name, process in stack.stack.processes.items()}
    samples: dict[str, list[float]] = {name: [] for name in pids}
    started = time.monotonic()
    thread.start()
    try:
        while time.monotonic() - started < minutes * 60:
            for name, pid in pids.items():
                samples[name].append(round(rss_mb(pid), 1))
            time.sleep(SAMPLE_EVERY_S)
    finally:
        stop.set()
        thread.join(timeout=60)
    for name, pid in pids.items():
        samples[name].append(round(rss_mb(pid), 1))
    return {
        "minutes": minutes,
        "requests": counts["requests"],
        "errors": counts["errors"],
        "services": {name: _growth(values) for name, values in samples.items()},
    }


def _growth(values: list[float]) -> dict[str, Any]:
    warm = values[min(len(values) - 1, max(1, len(values) // 5))]
    last, peak = values[-1], max(values)
    growth = (last - warm) / warm if warm else 0.0
    return {
        "slope_mb_per_min": _slope_mb_per_min(values[len(values) // 3 :]),
        "samples": values,
        "after_warm_up_mb": warm,
        "last_mb": last,
        "peak_mb": peak,
        "growth": round(growth, 3),
        "flat_within_10pct": growth <= TARGET_GROWTH,
        "under_150_mb": peak <= TARGET_RSS_MB,
    }


def _slope_mb_per_min(values: list[float]) -> float:
    """Least-squares slope of RSS over the samples given (the last two thirds of the run)."""
    if len(values) < 2:
        return 0.0
    xs = [i * SAMPLE_EVERY_S / 60 for i in range(len(values))]
    mean_x, mean_y = sum(xs) / len(xs), sum(values) / len(values)
    spread = sum((x - mean_x) ** 2 for x in xs)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, values, strict=True))
    return round(covariance / spread, 3)


def main() -> None:
    """Run a soak of its own: `python -m proof.soak --minutes 5 --backend postgresql`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    args = parser.parse_args()
    with running_stack(args.backend, Path(tempfile.mkdtemp(prefix="refex-soak-"))) as stack:
        result = soak(stack, args.minutes)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
