"""Authorisation matrix on a real stack: every operation has an entry; 0 cross-organisation access.

Runs last among the proof tests (file order): the 'own' column's writes change the callers'
own objects.
"""

from __future__ import annotations

from typing import Any

import pytest

from proof.authorisation import (
    ROLES,
    build_objects,
    cross_organisation,
    execute,
    load_matrix,
    mismatches,
    operations,
    skeleton,
)
from proof.harness import ProofStack

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def spec(proof_stack: ProofStack) -> dict[str, Any]:
    return proof_stack.openapi()


def test_every_operation_of_the_gateway_has_a_reviewed_entry(spec: dict[str, Any]) -> None:
    matrix = load_matrix()
    assert sorted(operations(spec)) == sorted(matrix)
    empty = [op for op, entry in matrix.items() for role in ROLES
             for status in entry["expect"][role].values() if status is None]  # fmt: skip
    assert empty == []


def test_a_new_operation_without_an_entry_is_found(spec: dict[str, Any]) -> None:
    spec["paths"]["/api/v1/new-thing"] = {"get": {}}
    grown = skeleton(spec, load_matrix())
    assert grown["GET /api/v1/new-thing"]["expect"]["auditor"] == {"any": None}


def test_the_matrix_holds_and_nobody_reaches_another_organisations_objects(
    proof_stack: ProofStack, spec: dict[str, Any]
) -> None:
    matrix = load_matrix()
    cells = execute(proof_stack, spec, matrix, build_objects(proof_stack))
    assert len(cells) == sum(len(e["expect"][r]) for e in matrix.values() for r in ROLES)
    assert cross_organisation(cells) == []
    assert [(c["operation"], c["role"], c["column"], c["status"]) for c in mismatches(cells)] == []
