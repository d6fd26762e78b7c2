"""Contract fuzzing on a real stack, every role: nothing undocumented, nothing invalid accepted.

Runs last among the proof tests (file order): the admin's run may delete directory objects.
Short runs (the full runner gives each role 40 s); the figures are per role and per kind.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proof import fuzz
from proof.harness import ProofStack

pytestmark = pytest.mark.system
SECONDS_PER_ROLE = 8


class TestKindCounts:
    def test_failures_are_counted_by_the_kind_their_code_names(self) -> None:
        counts = fuzz.kind_counts(
            [
                "GET /admin/signing-keys: ST103",
                "Stateful tests: ST103",
                "OPTIONS /api/v1/ledger/tree-head: ST205",
                "POST /api/v1/referrals/{referral_id}/notes: ST201",
                "GET /x: something new",
            ]
        )
        assert counts["undocumented_statuses"] == 2
        assert counts["allow_mismatches"] == 1
        assert counts["accepted_invalid_requests"] == 1
        assert counts["other"] == 1
        assert counts["server_errors"] == counts["schema_violations"] == 0


@pytest.mark.promise(10)
def test_every_role_fuzzes_clean(proof_stack: ProofStack, tmp_path: Path) -> None:
    results = fuzz.fuzz(proof_stack, SECONDS_PER_ROLE, tmp_path)
    summary = fuzz.summary(results)
    assert set(summary["by_role"]) == set(fuzz.FUZZ_ROLES)
    assert all(r["operations"] > 0 for r in results.values()), results
    assert summary["failures"] == 0, summary["messages"]
