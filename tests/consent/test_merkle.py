"""The RFC 9162 tree: published vectors, and stored-node proofs against a naive recomputation."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.consent import merkle
from shared.i18n import use_language
from tests.standards import VENDORED_STANDARDS

VECTORS = json.loads((VENDORED_STANDARDS / "merkle" / "rfc9162-vectors.json").read_text())
TREE = [bytes.fromhex(leaf) for leaf in VECTORS["tree"]["leaves_hex"]]


def b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def stored_tree(leaves: list[bytes]) -> tuple[merkle.CompactRange, dict[merkle.NodeId, bytes]]:
    """Build the tree the way the ledger stores it: appended leaf by leaf, nodes kept."""
    tree = merkle.CompactRange()
    nodes: dict[merkle.NodeId, bytes] = {}
    for leaf in leaves:
        for level, position, value in tree.append(merkle.leaf_hash(leaf)):
            nodes[(level, position)] = value
    return tree, nodes


# Naive reference: the RFC's recursive definitions over the raw leaves.
def naive_path(index: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) <= 1:
        return []
    k = merkle.split_point(len(leaves))
    if index < k:
        return [*naive_path(index, leaves[:k]), merkle.tree_hash(leaves[k:])]
    return [*naive_path(index - k, leaves[k:]), merkle.tree_hash(leaves[:k])]


def naive_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [merkle.tree_hash(leaves)]
    k = merkle.split_point(n)
    if m <= k:
        return [*naive_subproof(m, leaves[:k], complete), merkle.tree_hash(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), merkle.tree_hash(leaves[:k])]


class TestPublishedVectors:
    @pytest.mark.parametrize("vector", VECTORS["hash_vectors"], ids=lambda v: v["desc"])
    def test_hashes(self, vector: dict[str, Any]) -> None:
        if vector["kind"] == "empty_root":
            got = merkle.EMPTY_ROOT
        elif vector["kind"] == "leaf":
            got = merkle.leaf_hash(bytes.fromhex(vector["input_hex"]))
        else:
            got = merkle.node_hash(
                bytes.fromhex(vector["left_hex"]), bytes.fromhex(vector["right_hex"])
            )
        assert got.hex() == vector["want"]

    def test_roots_of_every_prefix_of_the_standard_tree(self) -> None:
        for size, want in enumerate(VECTORS["tree"]["roots_by_size_hex"]):
            assert merkle.tree_hash(TREE[:size]).hex() == want
            assert stored_tree(TREE[:size])[0].root().hex() == want

    def test_stored_nodes_by_level(self) -> None:
        _, nodes = stored_tree(TREE)
        for level, hashes in enumerate(VECTORS["tree"]["node_hashes_by_level_hex"]):
            assert [nodes[(level, p)].hex() for p in range(len(hashes))] == hashes

    @pytest.mark.parametrize("vector", VECTORS["inclusion_proofs"]["vectors"])
    def test_inclusion_proofs(self, vector: dict[str, Any]) -> None:
        _, nodes = stored_tree(TREE)
        ranges = merkle.inclusion_ranges(vector["leaf_index"], vector["tree_size"])
        assert [h.hex() for h in merkle.hashes_for(ranges, nodes)] == vector["proof"]

    @pytest.mark.parametrize("vector", VECTORS["consistency_proofs"]["vectors"])
    def test_consistency_proofs(self, vector: dict[str, Any]) -> None:
        _, nodes = stored_tree(TREE)
        ranges = merkle.consistency_ranges(vector["size1"], vector["size2"])
        assert [h.hex() for h in merkle.hashes_for(ranges, nodes)] == vector["proof"]

    @pytest.mark.parametrize(
        "probe", VECTORS["inclusion_probes"]["probes"], ids=lambda p: p["file"]
    )
    def test_inclusion_probes(self, probe: dict[str, Any]) -> None:
        def check() -> None:
            merkle.verify_inclusion(
                index=probe["leafIdx"],
                size=probe["treeSize"],
                leaf=b64(probe["leafHash"]),
                proof=[b64(p) for p in probe["proof"] or []],
                root=b64(probe["root"]),
            )

        if probe["wantErr"]:
            with pytest.raises(merkle.ProofError):
                check()
        else:
            check()

    @pytest.mark.parametrize(
        "probe", VECTORS["consistency_probes"]["probes"], ids=lambda p: p["file"]
    )
    def test_consistency_probes(self, probe: dict[str, Any]) -> None:
        def check() -> None:
            merkle.verify_consistency(
                first=probe["size1"],
                second=probe["size2"],
                proof=[b64(p) for p in probe["proof"] or []],
                first_root=b64(probe["root1"]),
                second_root=b64(probe["root2"]),
            )

        if probe["wantErr"]:
            with pytest.raises(merkle.ProofError):
                check()
        else:
            check()

    def test_rolling_subtree_hashes_up_to_130(self) -> None:
        import hashlib

        data = [bytes([i]) for i in range(VECTORS["accumulated"]["max_size"])]
        rolling = hashlib.sha256()
        for end in range(len(data) + 1):
            for start in range(end + 1):
                width = end - start
                ceiling = 1 << (width - 1).bit_length() if width else 1
                if start == 0 or start == end or start % ceiling == 0:
                    _, nodes = stored_tree(data[:end])
                    got = merkle.fold([nodes[n] for n in merkle.range_nodes(start, end)])
                    assert got == merkle.tree_hash(data[start:end])
                    rolling.update(f"[{start}, {end}) {got.hex()}\n".encode())
        assert rolling.hexdigest() == VECTORS["accumulated"]["subtree_hashes_sha256"]


SIZES = st.integers(min_value=1, max_value=300)


class TestAgainstNaiveRecomputation:
    @settings(max_examples=60, deadline=None)
    @given(size=SIZES, data=st.data())
    def test_root_and_inclusion_proofs(self, size: int, data: st.DataObject) -> None:
        leaves = [f"event {i}".encode() for i in range(size)]
        tree, nodes = stored_tree(leaves)
        assert tree.root() == merkle.tree_hash(leaves)
        index = data.draw(st.integers(0, size - 1))
        tree_size = data.draw(st.integers(index + 1, size))
        proof = merkle.hashes_for(merkle.inclusion_ranges(index, tree_size), nodes)
        assert proof == naive_path(index, leaves[:tree_size])
        root = merkle.tree_hash(leaves[:tree_size])
        merkle.verify_inclusion(
            index=index,
            size=tree_size,
            leaf=merkle.leaf_hash(leaves[index]),
            proof=proof,
            root=root,
        )
        if proof:
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion(
                    index=index,
                    size=tree_size,
                    leaf=merkle.leaf_hash(b"forged"),
                    proof=proof,
                    root=root,
                )

    @settings(max_examples=60, deadline=None)
    @given(size=SIZES, data=st.data())
    def test_consistency_proofs(self, size: int, data: st.DataObject) -> None:
        leaves = [f"event {i}".encode() for i in range(size)]
        _, nodes = stored_tree(leaves)
        first = data.draw(st.integers(1, size))
        proof = merkle.hashes_for(merkle.consistency_ranges(first, size), nodes)
        assert proof == naive_subproof(first, leaves, True)
        merkle.verify_consistency(
            first=first,
            second=size,
            proof=proof,
            first_root=merkle.tree_hash(leaves[:first]),
            second_root=merkle.tree_hash(leaves),
        )
        if first < size:
            with pytest.raises(merkle.ProofError):
                merkle.verify_consistency(
                    first=first,
                    second=size,
                    proof=proof,
                    first_root=merkle.tree_hash([b"other", *leaves[1:first]]),
                    second_root=merkle.tree_hash(leaves),
                )

    def test_every_size_up_to_300_matches_the_naive_tree(self) -> None:
        leaves = [f"event {i}".encode() for i in range(300)]
        tree, nodes = stored_tree(leaves)
        for size in range(1, 301):
            prefix = leaves[:size]
            assert merkle.fold([nodes[n] for n in tree.frontier(size)]) == merkle.tree_hash(prefix)
            for index in {0, size // 2, size - 1}:
                ranges = merkle.inclusion_ranges(index, size)
                assert merkle.hashes_for(ranges, nodes) == naive_path(index, prefix)
            first = size // 2 + 1
            ranges = merkle.consistency_ranges(first, size)
            assert merkle.hashes_for(ranges, nodes) == naive_subproof(first, prefix, True)

    def test_proofs_read_only_a_logarithmic_number_of_nodes(self) -> None:
        for size in (1000, 1_000_000, 2**40 + 12345):
            index = size // 3
            needed = merkle.nodes_for(merkle.inclusion_ranges(index, size))
            assert len(needed) <= 2 * size.bit_length()
            needed = merkle.nodes_for(merkle.consistency_ranges(index, size))
            assert len(needed) <= 2 * size.bit_length()


class TestProofErrorsInTheReadersLanguage:
    def test_a_failed_proof_says_why_in_french_and_in_english(self) -> None:
        with pytest.raises(merkle.ProofError) as failed:
            merkle.verify_consistency(
                first=5, second=3, proof=[], first_root=b"\x00" * 32, second_root=b"\x00" * 32
            )
        with use_language("fr"):
            assert str(failed.value) == "la taille 5 est plus grande que la taille 3"
        assert str(failed.value) == "size 5 is larger than size 3"
