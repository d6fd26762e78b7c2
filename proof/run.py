"""`make proof`: run every proof check on real stacks and write reports/proof.json and .md.

    .venv/bin/python -m proof.run            # full: 25 minutes or more
    .venv/bin/python -m proof.run --quick    # same checks, shorter fuzzing and soak (~15 min)

Loopback only; every stack it starts is stopped and every database it creates is dropped.
Exit status 1 when any figure misses its target.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path
from typing import Any

from proof import authorisation, canary, faults, fuzz, promises, sealed, soak, tamper
from proof.harness import ProofStack, postgres_admin_url, running_stack

REPORTS = Path.cwd() / "reports"
ADVERSARIAL_TESTS = [
    "tests/shared/test_crypto.py",
    "tests/shared/test_webhooks.py",
    "tests/shared/test_errors_and_auth.py",
    "tests/gateway/test_token.py",
    "tests/proof/test_3_adversarial.py",
]


def adversarial() -> dict[str, Any]:
    """Run the token, JWE and webhook adversarial tests (and jwcrypto interop); count them."""
    junit = Path(tempfile.mkdtemp(prefix="refex-proof-")) / "adversarial.xml"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
         *ADVERSARIAL_TESTS],
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    root = ElementTree.parse(junit).getroot()  # noqa: S314 (our own file)
    per_file: dict[str, int] = {}
    failed = skipped = 0
    for case in root.iter("testcase"):
        module = (case.get("classname") or "").split(".")
        name = "/".join(module[:2]) if len(module) > 1 else module[0]
        per_file[name] = per_file.get(name, 0) + 1
        failed += any(True for _ in case.iter("failure")) or any(True for _ in case.iter("error"))
        skipped += any(True for _ in case.iter("skipped"))
    total = sum(per_file.values())
    interop = sum(1 for c in root.iter("testcase") if "jwcrypto" in (c.get("name") or ""))
    return {"cases": total, "passed": total - failed - skipped, "failed": failed,
            "skipped": skipped, "jwcrypto_interop_cases": interop, "by_module": per_file,
            "exit": done.returncode}  # fmt: skip


def _timed(results: dict[str, Any], name: str, check: Callable[[], Any]) -> None:
    print(f"== {name}", flush=True)
    started = time.monotonic()
    try:
        results[name] = check()
    except Exception as error:  # a check that crashes is reported, the others still run
        results[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
    results.setdefault("seconds", {})[name] = round(time.monotonic() - started, 1)


def _matrix(stack: ProofStack) -> dict[str, Any]:
    spec = stack.openapi()
    matrix = authorisation.load_matrix()
    missing = sorted(set(authorisation.operations(spec)) - set(matrix))
    cells = authorisation.execute(stack, spec, matrix, authorisation.build_objects(stack))
    return {
        "operations": len(matrix),
        "operations_without_entry": missing,
        "cells": len(cells),
        "mismatches": [
            f"{c['operation']} {c['role']} {c['column']}: {c['status']} != {c['expected']}"
            for c in authorisation.mismatches(cells)
        ],
        "cross_organisation": len(authorisation.cross_organisation(cells)),
    }


def _tamper(stack: ProofStack) -> dict[str, Any]:
    stack.stack.stop()  # PostgreSQL copies a database only while nobody is connected
    results, controls = tamper.run_cases(
        stack.database_urls, stack.env(), stack.workdir, stack.backend
    )
    return {
        "cases": len(results),
        "caught": sum(r.caught for r in results),
        "untouched_copies_verify": all(code == 0 for code in controls.values()),
        "missed": [
            f"{r.chain}: {r.case} (named {r.named_index}, expected {r.expected})"
            for r in results
            if not r.caught
        ],
    }


def run(quick: bool) -> dict[str, Any]:
    """Every check, in an order that keeps destructive ones last on each stack."""
    workdir = Path(tempfile.mkdtemp(prefix="refex-proof-"))
    backends = ["postgresql"] if postgres_admin_url() else []
    main_backend = backends[0] if backends else "sqlite"
    results: dict[str, Any] = {"mode": "quick" if quick else "full", "backend": main_backend}
    _timed(results, "adversarial", adversarial)
    _timed(results, "promises", promises.run)
    with running_stack(main_backend, workdir / "main") as stack:
        _timed(results, "canary", lambda: canary.prove_no_leak(stack).as_dict())
        _timed(results, "canary_sealed", lambda: sealed.prove_sealed(stack))
        _timed(results, "authorisation", lambda: _matrix(stack))
        seconds = 10 if quick else 40
        _timed(results, "fuzz", lambda: fuzz.summary(fuzz.fuzz(stack, seconds, REPORTS / "fuzz")))
        _timed(results, f"tamper_{main_backend}", lambda: _tamper(stack))
    if main_backend != "sqlite":
        with running_stack("sqlite", workdir / "sqlite") as stack:
            _timed(results, "canary_sqlite", lambda: canary.prove_no_leak(stack).as_dict())
            _timed(results, "tamper_sqlite", lambda: _tamper(stack))
    with running_stack(main_backend, workdir / "faults") as stack:
        _timed(results, "faults", lambda: faults.run_faults(stack))
    with running_stack(main_backend, workdir / "soak") as stack:
        _timed(results, "soak", lambda: soak.soak(stack, 1.0 if quick else 10.0))
    results["machine"] = {"python": platform.python_version(), "cpus": _cpus()}
    return results


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0


def main() -> None:
    """Run, write the reports, print the table; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description="Run the refex proof suite.")
    parser.add_argument("--quick", action="store_true", help="shorter fuzzing and soak")
    arguments = parser.parse_args()
    started = time.monotonic()
    results = run(arguments.quick)
    results["total_seconds"] = round(time.monotonic() - started, 1)
    from proof.report import markdown, rows

    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "proof.json").write_text(json.dumps(results, indent=2, default=str))
    text = markdown(results)
    (REPORTS / "proof.md").write_text(text)
    print(text)
    raise SystemExit(0 if all(row[3] for row in rows(results)) else 1)


if __name__ == "__main__":
    main()
