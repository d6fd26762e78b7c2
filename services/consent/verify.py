"""Recompute the whole ledger from the database and name the first entry that does not add up.

Leaf hashes (ledger_node level 0) are the tree; records (ledger_entry) are kept apart so retention
can purge bodies. Checks, in index order: every record and leaf exists, every body hashes to its
leaf (purged bodies count by their stored hash), every stored tree node equals the recomputed
one, every signed tree head's root equals the recomputed root at its size; then signatures and
the consistency proof between consecutive tree heads.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from services.consent import merkle
from services.consent.ledger import STATE_ROW, consistency_proof, split_frontier
from services.consent.models import LedgerEntry, LedgerNode, LedgerState, TreeHead
from services.consent.signing import key_id_of, signature_is_valid

CHUNK = 1 << 14
MAX_PROBLEMS = 100


@dataclass(frozen=True)
class Problem:
    """One thing that does not add up, about entries `index` to `last`."""

    index: int
    reason: str
    last: int

    def rank(self) -> tuple[int, int]:
        """Order problems: the one that is located first and most precisely comes first."""
        return self.last, self.last - self.index


@dataclass(frozen=True)
class Head:
    """A tree head to check, from the database or from a saved file."""

    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    public_key: bytes
    signature: bytes
    source: str


@dataclass
class Report:
    """What verification found."""

    size: int = 0
    purged: int = 0
    tree_heads: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return True when nothing is wrong."""
        return not self.problems

    def add(self, index: int, reason: str, *, last: int | None = None) -> None:
        """Record a problem (the first MAX_PROBLEMS are kept)."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(index, reason, index if last is None else last))

    def first(self) -> Problem | None:
        """Return the earliest, most precisely located problem."""
        return min(self.problems, key=Problem.rank) if self.problems else None


class SavedHeadError(ValueError):
    """A saved tree-head file cannot be read; the message says what is wrong."""


def saved_head(document: bytes, *, public_key: bytes | None, stored: list[Head]) -> Head:
    """Parse a tree head saved from GET /ledger/tree-head."""
    try:
        data = orjson.loads(document)
        head = Head(
            tree_size=int(data["tree_size"]),
            root_hash=bytes.fromhex(data["root_hash"]),
            timestamp_ms=int(data["timestamp_ms"]),
            public_key=b"",
            signature=base64.b64decode(data["signature"], validate=True),
            source="the saved tree head",
        )
        key_id = str(data["key_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error):
        raise SavedHeadError(
            "the file is not a tree head saved from GET /ledger/tree-head "
            "(needs tree_size, root_hash, timestamp_ms, key_id, signature)"
        ) from None
    key = public_key or next((h.public_key for h in stored if _key_id(h) == key_id), b"")
    return Head(**{**head.__dict__, "public_key": key})


def _key_id(head: Head) -> str:
    return key_id_of(head.public_key)


async def verify_ledger(
    engine: AsyncEngine, *, trusted_key: bytes | None, saved: bytes | None = None
) -> Report:
    """Verify everything; `trusted_key` is the configured public key, `saved` a head file."""
    report = Report()
    async with engine.connect() as connection:
        size, frontier = await _state(connection)
        heads = await _stored_heads(connection)
        if saved is not None:
            heads.append(saved_head(saved, public_key=trusted_key, stored=heads))
        report.size, report.tree_heads = size, len(heads)
        _check_signatures(heads, trusted_key, report)
        computed = await _walk(connection, size, heads, report)
        if computed.hashes != split_frontier(frontier):
            report.add(size, "the ledger's stored right edge differs from the recomputed tree")
        await _check_beyond(connection, size, report)
    if not report.problems:
        await _check_consistency(engine, heads, report)
    if trusted_key is None:
        report.notes.append(
            "no signing key configured: signatures were checked against the public key stored "
            "with each tree head; pass a saved tree head or configure the key for full trust"
        )
    return report


async def _state(connection: AsyncConnection) -> tuple[int, bytes]:
    row = (
        await connection.execute(
            select(LedgerState.size, LedgerState.frontier).where(LedgerState.id == STATE_ROW)
        )
    ).one()
    return int(row.size), bytes(row.frontier)


async def _stored_heads(connection: AsyncConnection) -> list[Head]:
    rows = await connection.execute(select(TreeHead).order_by(TreeHead.tree_size, TreeHead.id))
    return [
        Head(
            tree_size=row.tree_size,
            root_hash=bytes(row.root_hash),
            timestamp_ms=row.timestamp_ms,
            public_key=bytes(row.public_key),
            signature=bytes(row.signature),
            source=f"tree head #{row.id}",
        )
        for row in rows
    ]


def _check_signatures(heads: list[Head], trusted_key: bytes | None, report: Report) -> None:
    for head in heads:
        index = min(head.tree_size, report.size)
        if trusted_key is not None and head.public_key != trusted_key:
            report.add(index, f"{head.source} is signed by a key other than the ledger's")
        elif not signature_is_valid(
            public_key=head.public_key,
            signature=head.signature,
            tree_size=head.tree_size,
            root_hash=head.root_hash,
            timestamp_ms=head.timestamp_ms,
        ):
            report.add(index, f"{head.source} has an invalid signature")
        if head.tree_size > report.size:
            report.add(
                report.size,
                f"{head.source} covers {head.tree_size} entries but the ledger holds "
                f"{report.size}: entries were removed",
            )
        if head.tree_size == 0 and head.root_hash != merkle.EMPTY_ROOT:
            report.add(0, f"{head.source} of the empty tree has a wrong root")


async def _walk(
    connection: AsyncConnection, size: int, heads: list[Head], report: Report
) -> merkle.CompactRange:
    by_size: dict[int, list[Head]] = defaultdict(list)
    for head in heads:
        by_size[head.tree_size].append(head)
    tree = merkle.CompactRange()
    previous_head = 0
    for start in range(0, size, CHUNK):
        end = min(size, start + CHUNK)
        leaves, entries, nodes = await _chunk(connection, start, end)
        for index in range(start, end):
            leaf = _check_entry(index, leaves.get(index), entries.get(index), report)
            for level, position, value in tree.append(leaf)[1:]:
                if nodes.get((level, position)) != value:
                    first, last = position << level, ((position + 1) << level) - 1
                    report.add(
                        first,
                        f"entries {first}-{last}: the stored tree node (level {level}) differs "
                        "from the recomputed one: a leaf hash or tree node was rewritten",
                        last=last,
                    )
            for head in by_size.get(index + 1, []):
                if head.root_hash != tree.root():
                    report.add(
                        previous_head,
                        f"{head.source} (size {head.tree_size}) does not match the entries: "
                        f"something in entries {previous_head}-{index} changed after signing",
                        last=index,
                    )
            if index + 1 in by_size:
                previous_head = index + 1
    return tree


async def _chunk(
    connection: AsyncConnection, start: int, end: int
) -> tuple[dict[int, bytes], dict[int, Any], dict[merkle.NodeId, bytes]]:
    leaf_rows = await connection.execute(
        select(LedgerNode.position, LedgerNode.hash).where(
            LedgerNode.level == 0, LedgerNode.position >= start, LedgerNode.position < end
        )
    )
    entry_rows = await connection.execute(
        select(
            LedgerEntry.index.label("position"),
            LedgerEntry.body,
            LedgerEntry.purged_at,
            LedgerEntry.retain_until,
        ).where(LedgerEntry.index >= start, LedgerEntry.index < end)
    )
    node_rows = await connection.execute(
        select(LedgerNode.level, LedgerNode.position, LedgerNode.hash).where(
            or_(*_completed_in(start, end))
        )
    )
    return (
        {row.position: bytes(row.hash) for row in leaf_rows},
        {row.position: row for row in entry_rows},
        {(row.level, row.position): bytes(row.hash) for row in node_rows},
    )


def _completed_in(start: int, end: int) -> list[Any]:
    """Conditions selecting the interior nodes completed by leaves [start, end)."""
    conditions = []
    for level in range(1, end.bit_length() + 1):
        # node (level, p) is completed by leaf (p + 1) * 2**level - 1
        low, high = ((start + (1 << level)) >> level) - 1, (end >> level) - 1
        if low <= high:
            conditions.append(
                and_(
                    LedgerNode.level == level,
                    LedgerNode.position >= low,
                    LedgerNode.position <= high,
                )
            )
    return conditions


def _check_entry(index: int, leaf: bytes | None, entry: Any, report: Report) -> bytes:
    """Check one entry; return the leaf hash to build the tree with."""
    if leaf is None:
        report.add(index, f"entry {index}: its leaf hash is missing from the tree")
    if entry is None:
        report.add(index, f"entry {index}: its record is missing (deleted)")
        return leaf or merkle.EMPTY_ROOT
    if entry.body is None:
        _check_purge(index, entry.purged_at, entry.retain_until, report)
        return leaf or merkle.EMPTY_ROOT
    recomputed = merkle.leaf_hash(bytes(entry.body))
    if leaf is not None and recomputed != leaf:
        report.add(index, _mismatch_reason(index, bytes(entry.body)))
    return leaf or recomputed


def _check_purge(
    index: int, purged_at: datetime | None, retain_until: datetime, report: Report
) -> None:
    if purged_at is None:
        report.add(index, f"entry {index}: its body was removed without a retention purge")
        return
    report.purged += 1
    if _aware(purged_at) < _aware(retain_until):
        report.add(index, f"entry {index}: its body was purged before its retention ended")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _mismatch_reason(index: int, body: bytes) -> str:
    try:
        claimed = orjson.loads(body).get("index")
    except (orjson.JSONDecodeError, AttributeError):
        claimed = None
    if isinstance(claimed, int) and claimed != index:
        return f"entry {index}: holds the record of entry {claimed} (rows moved or inserted)"
    return f"entry {index}: its record does not match its leaf hash (edited)"


async def _check_beyond(connection: AsyncConnection, size: int, report: Report) -> None:
    current, _ = await _state(connection)
    limit = max(size, current)
    extra_entry = await connection.scalar(
        select(LedgerEntry.index).where(LedgerEntry.index >= limit).limit(1)
    )
    extra_leaf = await connection.scalar(
        select(LedgerNode.position)
        .where(LedgerNode.level == 0, LedgerNode.position >= limit)
        .limit(1)
    )
    for extra in (extra_entry, extra_leaf):
        if extra is not None:
            report.add(int(extra), f"entry {extra}: lies beyond the ledger's size (inserted)")


async def _check_consistency(engine: AsyncEngine, heads: list[Head], report: Report) -> None:
    ordered = sorted((h for h in heads if h.tree_size > 0), key=lambda h: h.tree_size)
    async with AsyncSession(engine) as session:
        for older, newer in itertools.pairwise(ordered):
            proof, _, _ = await consistency_proof(
                session, first=older.tree_size, second=newer.tree_size
            )
            try:
                merkle.verify_consistency(
                    first=older.tree_size,
                    second=newer.tree_size,
                    proof=proof,
                    first_root=older.root_hash,
                    second_root=newer.root_hash,
                )
            except merkle.ProofError as error:
                report.add(
                    older.tree_size,
                    f"{older.source} and {newer.source} are not consistent: {error}",
                )
