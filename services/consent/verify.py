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
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from services.consent import merkle
from services.consent.ledger import STATE_ROW, consistency_proof, split_frontier
from services.consent.models import LedgerEntry, LedgerNode, LedgerState, TreeHead
from services.consent.signing import key_id_of, signature_is_valid
from shared.i18n import Message

CHUNK = 1 << 14  # a power of two: chunks are aligned subtrees, hashed level by level
MAX_PROBLEMS = 100
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Problem:
    """One thing that does not add up, about entries `index` to `last`."""

    index: int
    message: Message
    last: int

    @property
    def reason(self) -> str:
        """What does not add up, in the reader's language."""
        return self.message.render()

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
    source: Message


@dataclass
class Report:
    """What verification found."""

    size: int = 0
    purged: int = 0
    tree_heads: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[Message] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return True when nothing is wrong."""
        return not self.problems

    def add(self, index: int, reason: Message, *, last: int | None = None) -> None:
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
            source=Message("the saved tree head"),
        )
        key_id = str(data["key_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error):
        raise SavedHeadError(
            Message(
                "the file is not a tree head saved from GET /ledger/tree-head "
                "(needs tree_size, root_hash, timestamp_ms, key_id, signature)"
            )
        ) from None
    key = public_key or next((h.public_key for h in stored if _key_id(h) == key_id), b"")
    return Head(**{**head.__dict__, "public_key": key})


def _key_id(head: Head) -> str:
    return key_id_of(head.public_key)


async def verify_ledger(
    engine: AsyncEngine,
    *,
    trusted_key: bytes | None,
    saved: bytes | None = None,
    progress: Progress | None = None,
) -> Report:
    """Verify everything; `trusted_key` is the configured public key, `saved` a head file.

    Reads in chunks of CHUNK entries, so memory stays flat; `progress(done, total)` after each.
    """
    report = Report()
    async with engine.connect() as connection:
        size, frontier = await _state(connection)
        heads = await _stored_heads(connection)
        if saved is not None:
            heads.append(saved_head(saved, public_key=trusted_key, stored=heads))
        report.size, report.tree_heads = size, len(heads)
        _check_signatures(heads, trusted_key, report)
        computed = await _walk(connection, size, heads, report, progress)
        if computed.hashes != split_frontier(frontier):
            report.add(
                size, Message("the ledger's stored right edge differs from the recomputed tree")
            )
        await _check_beyond(connection, size, report)
    if not report.problems:
        await _check_consistency(engine, heads, report)
    if trusted_key is None:
        report.notes.append(
            Message(
                "no signing key configured: signatures were checked against the public key "
                "stored with each tree head; pass a saved tree head or configure the key for "
                "full trust"
            )
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
            source=Message("tree head #{id}", id=row.id),
        )
        for row in rows
    ]


def _check_signatures(heads: list[Head], trusted_key: bytes | None, report: Report) -> None:
    for head in heads:
        index = min(head.tree_size, report.size)
        if trusted_key is not None and head.public_key != trusted_key:
            report.add(
                index,
                Message("{source} is signed by a key other than the ledger's", source=head.source),
            )
        elif not signature_is_valid(
            public_key=head.public_key,
            signature=head.signature,
            tree_size=head.tree_size,
            root_hash=head.root_hash,
            timestamp_ms=head.timestamp_ms,
        ):
            report.add(index, Message("{source} has an invalid signature", source=head.source))
        if head.tree_size > report.size:
            report.add(
                report.size,
                Message(
                    "{source} covers {covered} entries but the ledger holds {size}: "
                    "entries were removed",
                    source=head.source,
                    covered=head.tree_size,
                    size=report.size,
                ),
            )
        if head.tree_size == 0 and head.root_hash != merkle.EMPTY_ROOT:
            report.add(
                0, Message("{source} of the empty tree has a wrong root", source=head.source)
            )


class _Reader:
    """Raw reads: asyncpg directly on PostgreSQL (verification reads every row)."""

    def __init__(self, connection: AsyncConnection, driver: Any) -> None:
        self._connection = connection
        self._driver = driver
        self._one_at_a_time = asyncio.Lock()  # the prefetch and the slow paths share it

    @classmethod
    async def of(cls, connection: AsyncConnection) -> _Reader:
        """Return a reader on this connection."""
        if connection.dialect.name != "postgresql":
            return cls(connection, None)
        raw = await connection.get_raw_connection()
        return cls(connection, raw.driver_connection)

    async def rows(self, sql: str) -> Sequence[Sequence[Any]]:
        """Return every row of a statement."""
        async with self._one_at_a_time:
            if self._driver is not None:
                found: Sequence[Sequence[Any]] = await self._driver.fetch(sql)
                return found
            return (await self._connection.exec_driver_sql(sql)).all()

    async def column(self, column: str, source: str, order: str) -> list[Any]:
        """Return one column in order; one array on PostgreSQL (no per-row records to build)."""
        if self._driver is None:
            return [row[0] for row in await self.rows(f"SELECT {column} {source} ORDER BY {order}")]
        async with self._one_at_a_time:
            values = await self._driver.fetchval(
                f"SELECT array_agg({column} ORDER BY {order}) {source}"
            )
        return list(values or [])


# Only integers computed here are formatted into these statements, never input.
LEAVES_SQL = (
    'SELECT n.position, n.hash, e."index" IS NOT NULL, e.body, e.purged_at IS NOT NULL, '
    "e.purged_at < e.retain_until "
    'FROM ledger_node n LEFT JOIN ledger_entry e ON e."index" = n.position '
    'AND e."index" >= {start} AND e."index" < {end} '
    "WHERE n.level = 0 AND n.position >= {start} AND n.position < {end} ORDER BY n.position"
)
LEAF_SOURCE = "FROM ledger_node WHERE level = 0 AND position >= {start} AND position < {end}"
BODIES_SQL = (
    'SELECT body FROM ledger_entry WHERE "index" >= {start} AND "index" < {end} ORDER BY "index"'
)
BODILESS_SQL = (
    'SELECT "index", purged_at IS NOT NULL, purged_at < retain_until FROM ledger_entry '
    'WHERE "index" >= {start} AND "index" < {end} AND body IS NULL ORDER BY "index"'
)
BODY_SQL = 'SELECT body FROM ledger_entry WHERE "index" = {index}'
NODES_SOURCE = "FROM ledger_node WHERE {ranges}"


def _leaves_sql(start: int, end: int) -> str:
    return LEAVES_SQL.format(start=int(start), end=int(end))


def _nodes_source(start: int, end: int) -> str:
    """Select the interior nodes completed by leaves [start, end), by level and position."""
    ranges = " OR ".join(
        f"(level = {level} AND position BETWEEN {low} AND {high})"
        for level, low, high in _node_ranges(start, end)
    )
    return NODES_SOURCE.format(ranges=ranges or "false")


@dataclass
class _Chunk:
    """What one chunk of entries [start, end) holds, read in three ordered queries."""

    start: int
    end: int
    leaves: list[bytes]
    bodies: list[bytes | None]
    nodes: list[bytes]

    @property
    def complete(self) -> bool:
        """Return True when every leaf and every record of the range exists (keys are unique)."""
        count = self.end - self.start
        return len(self.leaves) == count and len(self.bodies) == count


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Hash a chunk's leaves level by level; level k holds its complete subtrees of 2**k."""
    sha256, prefix = hashlib.sha256, merkle.NODE_PREFIX
    levels = [leaves]
    while len(levels[-1]) > 1:
        below = levels[-1]  # with an odd count the last one waits for its right sibling
        pairs = zip(below[::2], below[1::2], strict=False)
        levels.append([sha256(prefix + left + right).digest() for left, right in pairs])
    return levels


class _Edge:
    """The right edge of the recomputed tree, advanced one aligned chunk at a time."""

    def __init__(self) -> None:
        self.hashes: list[bytes] = []

    def root_within(self, levels: list[list[bytes]], start: int, size: int) -> bytes:
        """Return the root at `size`, which lies in the chunk starting at `start`."""
        inside = [levels[lv][p - (start >> lv)] for lv, p in merkle.range_nodes(start, size)]
        return merkle.fold(self.hashes + inside)

    def advance(self, levels: list[list[bytes]], start: int, end: int) -> list[bytes]:
        """Take in the chunk; return the interior nodes it completes by (level, position)."""
        made = [value for level in levels[1:] for value in level]
        if end - start < CHUNK:  # the last, partial chunk: only its complete subtrees remain
            self.hashes += [
                levels[lv][p - (start >> lv)] for lv, p in merkle.range_nodes(start, end)
            ]
            return made
        top, position = levels[-1][0], start >> (len(levels) - 1)
        while position & 1:
            top = merkle.node_hash(self.hashes.pop(), top)
            made.append(top)
            position >>= 1
        self.hashes.append(top)
        return made


async def _walk(
    connection: AsyncConnection,
    size: int,
    heads: list[Head],
    report: Report,
    progress: Progress | None,
) -> merkle.CompactRange:
    reader = await _Reader.of(connection)
    head_sizes = sorted({h.tree_size for h in heads if 0 < h.tree_size <= size})
    by_size: dict[int, list[Head]] = defaultdict(list)
    for head in heads:
        by_size[head.tree_size].append(head)
    edge, previous_head = _Edge(), 0
    starts = range(0, size, CHUNK)
    pending = _prefetch(reader, starts, 0, size)
    for number, start in enumerate(starts):
        chunk = await pending
        pending = _prefetch(reader, starts, number + 1, size)
        await asyncio.sleep(0)  # let the prefetch send its first query before hashing starts
        if chunk.complete:
            leaves = await _check_records(reader, chunk, report)
        else:
            leaves = await _check_rows(reader, chunk.start, chunk.end, report)
        levels = _levels(leaves)
        for head_size in head_sizes[bisect_right(head_sizes, start) :]:
            if head_size > chunk.end:
                break
            root = edge.root_within(levels, start, head_size)
            _check_heads(by_size[head_size], root, previous_head, report)
            previous_head = head_size
        made = edge.advance(levels, start, chunk.end)
        if chunk.nodes != made:
            await _locate_bad_nodes(reader, start, chunk.end, made, report)
        if progress is not None:
            progress(chunk.end, size)
    await pending
    return merkle.CompactRange(size, edge.hashes)


def _prefetch(reader: _Reader, starts: range, number: int, size: int) -> asyncio.Future[_Chunk]:
    """Start reading chunk `number` while the previous one is being hashed."""

    async def read() -> _Chunk:
        if number >= len(starts):
            return _Chunk(0, 0, [], [], [])
        start = starts[number]
        end = min(size, start + CHUNK)
        # Bodies first: the largest answer streams in while the previous chunk is hashed.
        bodies = [row[0] for row in await reader.rows(BODIES_SQL.format(start=start, end=end))]
        leaves = await reader.column("hash", LEAF_SOURCE.format(start=start, end=end), "position")
        nodes = await reader.column("hash", _nodes_source(start, end), "level, position")
        return _Chunk(start, end, leaves, bodies, nodes)

    return asyncio.ensure_future(read())


async def _check_records(reader: _Reader, chunk: _Chunk, report: Report) -> list[bytes]:
    """Check a chunk whose leaves and records all exist; return its leaf hashes."""
    sha256, prefix, start = hashlib.sha256, merkle.LEAF_PREFIX, chunk.start
    leaves = [bytes(leaf) for leaf in chunk.leaves]
    bodiless = False
    for offset, (leaf, body) in enumerate(zip(leaves, chunk.bodies, strict=True)):
        if body is None:
            bodiless = True
        elif sha256(prefix + body).digest() != leaf:
            report.add(start + offset, _mismatch_reason(start + offset, bytes(body)))
    if bodiless:
        flags = await reader.rows(BODILESS_SQL.format(start=start, end=chunk.end))
        for index, purged, early in flags:
            _check_bodiless(int(index), True, bool(purged), bool(early), report)
    return leaves


async def _check_rows(reader: _Reader, start: int, end: int, report: Report) -> list[bytes]:
    """Check a chunk row by row, naming missing leaves and records; return its leaf hashes."""
    leaves: list[bytes] = []
    for position, leaf, recorded, body, purged, early in await reader.rows(_leaves_sql(start, end)):
        while start + len(leaves) < position:
            leaves.append(await _missing_leaf(reader, start + len(leaves), report))
        if body is not None:
            if hashlib.sha256(b"\x00" + body).digest() != leaf:
                report.add(position, _mismatch_reason(position, bytes(body)))
        else:
            _check_bodiless(position, bool(recorded), bool(purged), bool(early), report)
        leaves.append(bytes(leaf))
    while start + len(leaves) < end:
        leaves.append(await _missing_leaf(reader, start + len(leaves), report))
    return leaves


def _check_heads(heads: list[Head], root: bytes, previous: int, report: Report) -> None:
    for head in heads:
        if head.root_hash != root:
            last = head.tree_size - 1
            report.add(
                previous,
                Message(
                    "{source} (size {size}) does not match the entries: something in entries "
                    "{first}-{last} changed after signing",
                    source=head.source,
                    size=head.tree_size,
                    first=previous,
                    last=last,
                ),
                last=last,
            )


async def _missing_leaf(reader: _Reader, index: int, report: Report) -> bytes:
    """Report a missing leaf hash; carry on with the record's hash if the record exists."""
    report.add(index, Message("entry {index}: its leaf hash is missing from the tree", index=index))
    rows = await reader.rows(BODY_SQL.format(index=int(index)))
    body = rows[0][0] if rows else None
    return merkle.leaf_hash(bytes(body)) if body is not None else merkle.EMPTY_ROOT


def _check_bodiless(index: int, recorded: bool, purged: bool, early: bool, report: Report) -> None:
    if not recorded:
        report.add(index, Message("entry {index}: its record is missing (deleted)", index=index))
    elif not purged:
        report.add(
            index,
            Message("entry {index}: its body was removed without a retention purge", index=index),
        )
    else:
        report.purged += 1
        if early:
            report.add(
                index,
                Message(
                    "entry {index}: its body was purged before its retention ended", index=index
                ),
            )


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
    reader: _Reader, start: int, end: int, made: list[bytes], report: Report
) -> None:
    """Name the stored interior nodes of a chunk that differ from the recomputed ones."""
    stored = await reader.rows(f"SELECT level, position, hash {_nodes_source(start, end)}")
    found = {(int(level), int(position)): bytes(value) for level, position, value in stored}
    ids = [(lv, p) for lv, low, high in _node_ranges(start, end) for p in range(low, high + 1)]
    for (level, position), value in zip(ids, made, strict=True):
        if found.get((level, position)) != value:
            first, last = position << level, ((position + 1) << level) - 1
            report.add(
                first,
                Message(
                    "entries {first}-{last}: the stored tree node (level {level}) differs from "
                    "the recomputed one: a leaf hash or tree node was rewritten",
                    first=first,
                    last=last,
                    level=level,
                ),
                last=last,
            )


def _mismatch_reason(index: int, body: bytes) -> Message:
    try:
        claimed = orjson.loads(body).get("index")
    except (orjson.JSONDecodeError, AttributeError):
        claimed = None
    if isinstance(claimed, int) and claimed != index:
        return Message(
            "entry {index}: holds the record of entry {claimed} (rows moved or inserted)",
            index=index,
            claimed=claimed,
        )
    return Message("entry {index}: its record does not match its leaf hash (edited)", index=index)


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
            report.add(
                int(extra),
                Message("entry {index}: lies beyond the ledger's size (inserted)", index=extra),
            )


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
                    Message(
                        "{older} and {newer} are not consistent: {error}",
                        older=older.source,
                        newer=newer.source,
                        error=error.message,
                    ),
                )
