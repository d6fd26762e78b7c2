"""One seeded SQLite stack shared by the fast proof checks (the full runner is `make proof`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proof.harness import ProofStack, running_stack


@pytest.fixture(scope="session")
def proof_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProofStack]:
    """The four services on SQLite in their own working directory."""
    with running_stack("sqlite", tmp_path_factory.mktemp("proof-stack")) as stack:
        yield stack
