"""PII canary in sealed mode: no canary in logs, databases, bodies or any service's memory."""

from __future__ import annotations

import pytest

from proof.harness import ProofStack
from proof.sealed import prove_sealed

pytestmark = pytest.mark.system


def test_sealed_canaries_are_nowhere_on_the_server_side(proof_stack: ProofStack) -> None:
    result = prove_sealed(proof_stack)
    assert result["hits"] == [], result["hits"]
    assert result["memory"]["dumps"] >= 5  # the referral process during creation, then all four
    assert result["memory"]["canaries_found"] == [], result["memory"]
    assert result["scanned"]["log_lines"] > 0
    assert result["scanned"]["database_cells"] > 0
    assert result["webhook_bodies"] > 0
    # The recipient opens the sealed sections and the sealed note with its own key.
    assert {"given_name", "phone", "condition", "note_text"} <= set(result["decrypted"])
    assert "document_number" not in result["decrypted"]  # not in the SOP: never sealed
    # The dump would see plaintext: in server mode the case file passes through refex's memory.
    assert result["server_mode_memory"]["canaries_found"], result["server_mode_memory"]
