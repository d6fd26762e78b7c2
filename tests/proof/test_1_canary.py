"""PII canary (fast variant, SQLite): no canary value in logs, databases, metrics, bodies."""

from __future__ import annotations

import pytest

from proof.canary import prove_no_leak
from proof.harness import ProofStack

pytestmark = pytest.mark.system


def test_no_canary_leaks_and_the_recipient_can_read_them(proof_stack: ProofStack) -> None:
    result = prove_no_leak(proof_stack)
    assert result.hits == [], result.hits
    assert result.scanned["log_lines"] > 0
    assert result.scanned["database_cells"] > 0
    assert result.error_bodies >= 4
    assert result.webhook_bodies > 0
    # Shared sections and the note open with the recipient's key; SOP-withheld ones never do.
    assert {"given_name", "phone", "condition", "note_text"} <= set(result.decrypted)
    assert "document_number" not in result.decrypted
