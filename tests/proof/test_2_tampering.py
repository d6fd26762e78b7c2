"""Tampering (fast variant, SQLite): every edit, deletion, reordering and insertion is caught."""

from __future__ import annotations

import pytest

from proof.canary import prove_no_leak
from proof.harness import ProofStack
from proof.tamper import AUDIT_CASES, LEDGER_CASES, run_cases

pytestmark = pytest.mark.system


def test_every_tampered_ledger_and_audit_row_is_named(proof_stack: ProofStack) -> None:
    if len(proof_stack.seen) < 10:  # the chains need a few entries: run a journey first
        prove_no_leak(proof_stack)
    results, controls = run_cases(
        proof_stack.database_urls, proof_stack.env(), proof_stack.workdir, "sqlite"
    )
    assert controls == {"ledger": 0, "audit": 0}
    assert len(results) == len(LEDGER_CASES) + len(AUDIT_CASES)
    missed = [(r.chain, r.case, r.expected, r.exit_code, r.named_index)
              for r in results if not r.caught]  # fmt: skip
    assert missed == []
