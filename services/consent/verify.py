"""Recompute the whole ledger from the database and name the first entry that does not add up.

Leaf hashes (ledger_node level 0) are the tree; records (ledger_entry) are kept apart so retention
can purge bodies. Checks, in index order: every record and leaf exists, every body hashes to its
leaf (purged bodies count by their stored hash), every stored tree node equals the recomputed
one, every signed tree head's root equals the recomputed root at its size; then signatures and
the consistency proof between consecutive tree heads.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import itertools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
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


Fetch = Callable[[str], Awaitable[Sequence[Sequence[Any]]]]


async def _fetcher(connection: AsyncConnection) -> Fetch:
    """Return a raw row reader: asyncpg directly on PostgreSQL (verification reads every row)."""
    one_at_a_time = asyncio.Lock()  # the prefetch and the slow paths share one connection
    if connection.dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection

        async def through_asyncpg(sql: str) -> Sequence[Sequence[Any]]:
            async with one_at_a_time:
                rows: Sequence[Sequence[Any]] = await driver.fetch(sql)
            return rows

        return through_asyncpg

    async def through_sqlalchemy(sql: str) -> Sequence[Sequence[Any]]:
        async with one_at_a_time:
            return (await connection.exec_driver_sql(sql)).all()

    return through_sqlalchemy


# Only integers computed here are formatted into these statements, never input.
LEAVES_SQL = (
    'SELECT n.position, n.hash, e."index" IS NOT NULL, e.body, e.purged_at IS NOT NULL, '
    "e.purged_at < e.retain_until "
    'FROM ledger_node n LEFT JOIN ledger_entry e ON e."index" = n.position '
    'AND e."index" >= {start} AND e."index" < {end} '
    "WHERE n.level = 0 AND n.position >= {start} AND n.position < {end} ORDER BY n.position"
)
BODY_SQL = 'SELECT body FROM ledger_entry WHERE "index" = {index}'
NODES_SQL = "SELECT {columns} FROM ledger_node WHERE {ranges} ORDER BY level, position"


def _leaves_sql(start: int, end: int) -> str:
    return LEAVES_SQL.format(start=int(start), end=int(end))


def _nodes_sql(start: int, end: int, columns: str = "hash") -> str:
    """Select the interior nodes completed by leaves [start, end), by level and position."""
    ranges = " OR ".join(
        f"(level = {level} AND position BETWEEN {low} AND {high})"
        for level, low, high in _node_ranges(start, end)
    )
    return NODES_SQL.format(columns=columns, ranges=ranges or "false")


class _Tree:
    """The right edge of the recomputed tree and, per level, the interior nodes of a chunk."""

    def __init__(self) -> None:
        self.stack: list[bytes] = []
        self.created: list[list[bytes]] = []

    def push(self, leaf: bytes, index: int) -> None:
        level = 0
        while index & 1:
            leaf = hashlib.sha256(b"\x01" + self.stack.pop() + leaf).digest()
            level += 1
            if level > len(self.created):
                self.created.append([])
            self.created[level - 1].append(leaf)
            index >>= 1
        self.stack.append(leaf)

    def root(self) -> bytes:
        return merkle.fold(self.stack)

    def take_created(self) -> list[bytes]:
        """Return this chunk's interior nodes ordered by (level, position), and forget them."""
        made = [value for level in self.created for value in level]
        self.created = []
        return made


async def _walk(
    connection: AsyncConnection, size: int, heads: list[Head], report: Report
) -> merkle.CompactRange:
    fetch = await _fetcher(connection)
    by_size: dict[int, list[Head]] = defaultdict(list)
    for head in heads:
        by_size[head.tree_size].append(head)
    tree = _Tree()
    previous_head = 0
    starts = range(0, size, CHUNK)
    pending = _prefetch(fetch, starts, 0, size)
    for number, start in enumerate(starts):
        end = min(size, start + CHUNK)
        rows, stored_nodes = await pending
        pending = _prefetch(fetch, starts, number + 1, size)
        expected = start
        for position, leaf, recorded, body, purged, early in rows:
            while expected < position:
                tree.push(await _missing_leaf(fetch, expected, report), expected)
                expected += 1
            if body is not None:
                if hashlib.sha256(b"\x00" + body).digest() != leaf:
                    report.add(position, _mismatch_reason(position, bytes(body)))
            else:
                _check_bodiless(position, bool(recorded), bool(purged), bool(early), report)
            tree.push(bytes(leaf), position)
            expected += 1
            if position + 1 in by_size:
                _check_heads(by_size[position + 1], tree.root(), previous_head, report)
                previous_head = position + 1
        while expected < end:
            tree.push(await _missing_leaf(fetch, expected, report), expected)
            expected += 1
        made = tree.take_created()
        if stored_nodes != made:
            await _locate_bad_nodes(fetch, start, end, made, report)
    await pending
    return merkle.CompactRange(size, tree.stack)


def _prefetch(
    fetch: Fetch, starts: range, number: int, size: int
) -> asyncio.Future[tuple[Sequence[Sequence[Any]], list[bytes]]]:
    """Start reading chunk `number` while the previous one is being hashed."""

    async def read() -> tuple[Sequence[Sequence[Any]], list[bytes]]:
        if number >= len(starts):
            return [], []
        start = starts[number]
        end = min(size, start + CHUNK)
        rows = await fetch(_leaves_sql(start, end))
        nodes = [bytes(row[0]) for row in await fetch(_nodes_sql(start, end))]
        return rows, nodes

    return asyncio.ensure_future(read())


def _check_heads(heads: list[Head], root: bytes, previous: int, report: Report) -> None:
    for head in heads:
        if head.root_hash != root:
            last = head.tree_size - 1
            report.add(
                previous,
                f"{head.source} (size {head.tree_size}) does not match the entries: "
                f"something in entries {previous}-{last} changed after signing",
                last=last,
            )


async def _missing_leaf(fetch: Fetch, index: int, report: Report) -> bytes:
    """Report a missing leaf hash; carry on with the record's hash if the record exists."""
    report.add(index, f"entry {index}: its leaf hash is missing from the tree")
    rows = await fetch(BODY_SQL.format(index=int(index)))
    body = rows[0][0] if rows else None
    return merkle.leaf_hash(bytes(body)) if body is not None else merkle.EMPTY_ROOT


def _check_bodiless(index: int, recorded: bool, purged: bool, early: bool, report: Report) -> None:
    if not recorded:
        report.add(index, f"entry {index}: its record is missing (deleted)")
    elif not purged:
        report.add(index, f"entry {index}: its body was removed without a retention purge")
    else:
        report.purged += 1
        if early:
            report.add(index, f"entry {index}: its body was purged before its retention ended")


def _node_ranges(start: int, end: int) -> list[tuple[int, int, int]]:
    """Return (level, first, last position) of the interior nodes completed by [start, end)."""
    ranges = []
    for level in range(1, end.bit_length() + 1):
        # node (level, p) is completed by leaf (p + 1) * 2**level - 1
        low, high = ((start + (1 << level)) >> level) - 1, (end >> level) - 1
        if low <= high:
            ranges.append((level, low, high))
    return ranges


async def _locate_bad_nodes(
    fetch: Fetch, start: int, end: int, made: list[bytes], report: Report
) -> None:
    """Name the stored interior nodes of a chunk that differ from the recomputed ones."""
    stored = await fetch(_nodes_sql(start, end, "level, position, hash"))
    found = {(int(level), int(position)): bytes(value) for level, position, value in stored}
    ids = [(lv, p) for lv, low, high in _node_ranges(start, end) for p in range(low, high + 1)]
    for (level, position), value in zip(ids, made, strict=True):
        if found.get((level, position)) != value:
            first, last = position << level, ((position + 1) << level) - 1
            report.add(
                first,
                f"entries {first}-{last}: the stored tree node (level {level}) differs "
                "from the recomputed one: a leaf hash or tree node was rewritten",
                last=last,
            )


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
