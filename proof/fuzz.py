"""Contract fuzzing: schemathesis against the gateway's merged OpenAPI, once per role.

Each role runs the examples, coverage, fuzzing and stateful phases (stateful follows the links
schemathesis infers from the document and Location headers) bounded by `--max-time`. The checks:
no server error, every answer's status documented and its body conforming, schema-violating
requests rejected, undeclared methods answered 405 with an `Allow` naming exactly the documented
ones. Roles run in an order that keeps the admin (who may delete directory objects) last.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from proof.harness import ProofStack

FUZZ_ROLES = ("auditor", "provider", "coordinator", "mental_health_professional", "host_office",
              "admin")  # fmt: skip
CHECKS = ",".join((
    "not_a_server_error", "status_code_conformance", "response_schema_conformance",
    "negative_data_rejection", "unsupported_method", "allow_header_conformance",
))  # fmt: skip
# The failure kinds the report counts, by schemathesis's failure code.
KINDS = {
    "ST101": "server_errors",
    "ST103": "undocumented_statuses",
    "ST108": "schema_violations",
    "ST201": "accepted_invalid_requests",
    "ST204": "undeclared_methods_not_405",
    "ST205": "allow_mismatches",
}
# Operations fuzzing must not call: they would end the run rather than test it.
EXCLUDED_PATH_REGEX = r"^/admin/signing-keys/rotate$|^/admin/clients/.*/(disable|secret)$"


def schemathesis_command(stack: ProofStack, role: str, seconds: int, report: Path) -> list[str]:
    """The command line for one role's run."""
    with stack.client(role) as client:
        token = client.token()
    return [
        str(Path(sys.executable).with_name("schemathesis")), "run",
        f"{stack.base_url}/openapi.json", "--header", f"Authorization: Bearer {token}",
        "--checks", CHECKS, "--phases", "examples,coverage,fuzzing,stateful",
        "--max-time", str(seconds), "--max-examples", "25", "--workers", "1",
        "--request-timeout", "20", "--exclude-path-regex", EXCLUDED_PATH_REGEX,
        "--report", "junit", "--report-junit-path", str(report), "--no-color",
        "--suppress-health-check", "all", "--seed", "20261125",
    ]  # fmt: skip


def _failures(report: Path) -> tuple[int, list[str]]:
    """(test cases, failure messages) from schemathesis's JUnit report."""
    if not report.exists():
        return 0, ["schemathesis wrote no report"]
    root = ElementTree.parse(report).getroot()  # noqa: S314 (our own file)
    cases = root.iter("testcase")
    total, failures = 0, []
    for case in cases:
        total += 1
        for failure in [*case.iter("failure"), *case.iter("error")]:
            first = (failure.get("message") or failure.text or "").strip().splitlines()
            failures.append(f"{case.get('name')}: {first[0] if first else 'failed'}"[:300])
    return total, failures


def fuzz(stack: ProofStack, seconds_per_role: int, out_dir: Path) -> dict[str, Any]:
    """Fuzz the gateway as each role; return operations tested and failures per role."""
    stack.openapi()  # wait until the merged document is complete
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for role in FUZZ_ROLES:
        report = out_dir / f"schemathesis-{role}.xml"
        command = schemathesis_command(stack, role, seconds_per_role, report)
        done = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=seconds_per_role * 3 + 120,
            check=False, env={"PATH": "/usr/bin:/bin", "HOME": str(out_dir), "NO_COLOR": "1"},
        )  # fmt: skip
        (out_dir / f"schemathesis-{role}.log").write_text(done.stdout + done.stderr)
        operations, failures = _failures(report)
        results[role] = {"operations": operations, "failures": failures, "exit": done.returncode}
    return results


def kind_counts(failures: list[str]) -> dict[str, int]:
    """Failures of one role counted by kind (every kind present, 0 when none)."""
    counts = dict.fromkeys([*KINDS.values(), "other"], 0)
    for failure in failures:
        code = failure.rsplit(": ", 1)[-1].split()[0] if ": " in failure else ""
        counts[KINDS.get(code, "other")] += 1
    return counts


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """Totals over roles, and each role's failures by kind."""
    return {
        "roles": len(results),
        "operations_tested": sum(r["operations"] for r in results.values()),
        "failures": sum(len(r["failures"]) for r in results.values()),
        "by_role": {role: len(r["failures"]) for role, r in results.items()},
        "kinds_by_role": {role: kind_counts(r["failures"]) for role, r in results.items()},
        "messages": [f"{role}: {m}" for role, r in results.items() for m in r["failures"]][:30],
    }
