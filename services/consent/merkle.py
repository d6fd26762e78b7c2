"""RFC 9162 Merkle tree hashing, proof shapes and proof verification (pure, no storage).

A tree over n leaves is stored as its complete subtrees: node (level, position) is the hash of
leaves [position * 2**level, (position + 1) * 2**level). Every hash a proof needs is either such
a node or the hash of a right-edge range, which is a fold of a few such nodes; so a proof costs
O(log n) node reads and the tree is never rebuilt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.i18n import Message

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeId = tuple[int, int]  # (level, position)
Range = tuple[int, int]  # leaves [start, end)


class ProofError(ValueError):
    """A proof does not verify; the message says why (in the reader's language)."""

    def __init__(self, message: Message) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message.render()


def leaf_hash(data: bytes) -> bytes:
    """Return SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split_point(size: int) -> int:
    """Return the largest power of two strictly smaller than `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[NodeId]:
    """Decompose [start, end) into complete subtrees, largest first.

    Valid for the ranges proofs use: start is a multiple of the bit-ceiling of end - start.
    """
    nodes: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start % (1 << level):
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """Combine the hashes of a range's complete subtrees (largest first) into its MTH."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """Return the ranges whose hashes form PATH(index, D[0:size]), leaf side first."""
    if not 0 <= index < size:
        raise ProofError(
            Message("leaf {index} is not in a tree of {size} leaves", index=index, size=size)
        )
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[Range]:
    """Return the ranges whose hashes form PROOF(first, D[0:second]) (RFC 9162 2.1.4.1)."""
    if not 0 < first <= second:
        raise ProofError(
            Message(
                "no consistency proof from size {first} to size {second}",
                first=first,
                second=second,
            )
        )
    ranges: list[Range] = []
    start, end, m, complete = 0, second, first, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def nodes_for(ranges: Sequence[Range]) -> list[NodeId]:
    """Return every stored node the given ranges need, without duplicates."""
    needed: dict[NodeId, None] = {}
    for start, end in ranges:
        needed.update(dict.fromkeys(range_nodes(start, end)))
    return list(needed)


def hashes_for(ranges: Sequence[Range], nodes: dict[NodeId, bytes]) -> list[bytes]:
    """Turn ranges into their hashes from the stored nodes."""
    return [fold([nodes[node] for node in range_nodes(start, end)]) for start, end in ranges]


def verify_inclusion(
    *, index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof (RFC 9162 2.1.3.2); raise ProofError when it fails."""
    if not 0 <= index < size:
        raise ProofError(
            Message("leaf index {index} is outside a tree of {size} leaves", index=index, size=size)
        )
    _check_hashes([leaf, root, *proof])
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError(Message("the proof is longer than the tree is deep"))
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(Message("the proof is shorter than the tree is deep"))
    if r != root:
        raise ProofError(Message("the proof leads to a different root"))


def verify_consistency(
    *, first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes
) -> None:
    """Check a consistency proof (RFC 9162 2.1.4.2); raise ProofError when it fails."""
    if first > second:
        raise ProofError(
            Message("size {first} is larger than size {second}", first=first, second=second)
        )
    if first == 0:
        raise ProofError(Message("a consistency proof from the empty tree proves nothing"))
    if first == second:
        if proof:
            raise ProofError(Message("equal sizes need an empty proof"))
        if first_root != second_root:
            raise ProofError(Message("equal sizes but different roots"))
        return
    if not proof:
        raise ProofError(Message("the proof is empty"))
    _check_hashes([first_root, second_root, *proof])
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(Message("the proof is longer than the tree is deep"))
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(Message("the proof is shorter than the tree is deep"))
    if fr != first_root:
        raise ProofError(Message("the proof does not lead to the first root"))
    if sr != second_root:
        raise ProofError(Message("the proof does not lead to the second root"))


def _check_hashes(hashes: Sequence[bytes]) -> None:
    if any(len(h) != HASH_SIZE for h in hashes):
        raise ProofError(Message("every hash must be {size} bytes", size=HASH_SIZE))


@dataclass
class CompactRange:
    """The right edge of a growing tree: the complete subtrees covering [0, size)."""

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    @classmethod
    def frontier(cls, size: int) -> list[NodeId]:
        """Return the nodes that make up the compact range of a tree of `size` leaves."""
        return range_nodes(0, size)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return every node it completes as (level, position, hash)."""
        created = [(0, self.size, leaf)]
        current, level, position = leaf, 0, self.size
        while position & 1:
            current = node_hash(self.hashes.pop(), current)
            level, position = level + 1, position >> 1
            created.append((level, position, current))
        self.hashes.append(current)
        self.size += 1
        return created

    def root(self) -> bytes:
        """Return the Merkle tree hash of the leaves appended so far."""
        return fold(self.hashes)


def tree_hash(leaves: Sequence[bytes]) -> bytes:
    """Return MTH(D) of raw leaf data by the RFC's recursive definition (reference use)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = split_point(len(leaves))
    return node_hash(tree_hash(leaves[:k]), tree_hash(leaves[k:]))
