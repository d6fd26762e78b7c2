"""The consent ledger on the database: serialised appends, O(log n) proofs, signed tree heads."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, insert, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.consent import merkle
from services.consent.models import LedgerEntry, LedgerNode, LedgerState, TreeHead
from services.consent.signing import TreeHeadSigner

STATE_ROW = 1
ENTRY_ARRAYS = {
    "index": "indexes",
    "event_type": "event_types",
    "appended_at": "appended_ats",
    "retain_until": "retain_untils",
    "body": "bodies",
}
LEDGER_KEY = "refex.ledger"  # session.info key of the ledger a group commit locked
# One round trip for any number of appends on PostgreSQL (the hot statement of every write).
APPEND_POSTGRESQL = text(
    """
    WITH new_nodes AS (
        INSERT INTO ledger_node (level, position, hash)
        SELECT * FROM unnest(
            CAST(:levels AS integer[]), CAST(:positions AS bigint[]), CAST(:hashes AS bytea[])
        )
    ), new_entries AS (
        INSERT INTO ledger_entry ("index", event_type, appended_at, retain_until, body)
        SELECT * FROM unnest(
            CAST(:indexes AS bigint[]), CAST(:event_types AS text[]),
            CAST(:appended_ats AS timestamptz[]), CAST(:retain_untils AS timestamptz[]),
            CAST(:bodies AS bytea[])
        )
    )
    UPDATE ledger_state SET size = :size, frontier = :frontier WHERE id = 1
    """
)


def canonical_json(value: Any) -> bytes:
    """Serialise with sorted keys, no whitespace, UTF-8 (RFC 8785 for our value types)."""
    # default=str: driver UUID types (asyncpg's) serialise like uuid.UUID does.
    return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)


def event_body(
    *, index: int, event_type: str, occurred_at: datetime, data: dict[str, Any]
) -> bytes:
    """Return the canonical record of one ledger event; its leaf hash is what the tree holds."""
    return canonical_json(
        {"index": index, "type": event_type, "occurred_at": occurred_at, "data": data}
    )


def split_frontier(frontier: bytes) -> list[bytes]:
    """Split the stored right edge into its 32-byte hashes."""
    size = merkle.HASH_SIZE
    return [frontier[i : i + size] for i in range(0, len(frontier), size)]


class Ledger:
    """The ledger locked for one transaction: appends here cannot fork or leave gaps.

    Appends are written at once, or, in a group commit (`deferred`), kept until `flush` writes
    every append of the batch in one statement just before the commit.
    """

    def __init__(
        self, session: AsyncSession, *, size: int, frontier: bytes, deferred: bool = False
    ) -> None:
        self._session = session
        self._start = (size, frontier)
        self._range = merkle.CompactRange(size, split_frontier(frontier))
        self._deferred = deferred
        self._entries: list[dict[str, Any]] = []
        self._nodes: list[tuple[int, int, bytes]] = []

    @classmethod
    async def lock(cls, session: AsyncSession, *, deferred: bool = False) -> Ledger:
        """Lock the ledger until the transaction ends (row lock on PostgreSQL).

        Inside a group commit, return the ledger the batch already holds.
        """
        held: Ledger | None = session.info.get(LEDGER_KEY)
        if held is not None:
            return held
        row = (
            await session.execute(
                select(LedgerState.size, LedgerState.frontier)
                .where(LedgerState.id == STATE_ROW)
                .with_for_update()
            )
        ).one()
        ledger = cls(session, size=row.size, frontier=row.frontier, deferred=deferred)
        if deferred:
            session.info[LEDGER_KEY] = ledger
        return ledger

    @property
    def size(self) -> int:
        """Return the number of entries including those appended in this transaction."""
        return self._range.size

    def root(self) -> bytes:
        """Return the root over every entry so far."""
        return self._range.root()

    async def append(
        self, *, event_type: str, data: dict[str, Any], at: datetime, retain_days: int
    ) -> int:
        """Append one event; return its index."""
        index = self._range.size
        body = event_body(index=index, event_type=event_type, occurred_at=at, data=data)
        self._nodes += self._range.append(merkle.leaf_hash(body))
        self._entries.append(
            {
                "index": index,
                "event_type": event_type,
                "appended_at": at,
                "retain_until": at + timedelta(days=retain_days),
                "body": body,
            }
        )
        if not self._deferred:
            await self.flush()
        return index

    def rewind(self) -> None:
        """Drop the appends not yet written (a group commit retries without a failed write)."""
        size, frontier = self._start
        self._range = merkle.CompactRange(size, split_frontier(frontier))
        self._entries, self._nodes = [], []

    async def flush(self) -> None:
        """Write the appends not yet written, with the new size and right edge."""
        if not self._entries:
            return
        size, frontier = self._range.size, b"".join(self._range.hashes)
        self._start = (size, frontier)
        state = {"size": size, "frontier": frontier}
        if self._session.get_bind().dialect.name == "postgresql":
            await self._session.execute(APPEND_POSTGRESQL, {**state, **self._columns()})
        else:
            await self._write(state)
        self._entries, self._nodes = [], []

    def _columns(self) -> dict[str, list[Any]]:
        entries, nodes = self._entries, self._nodes
        return {
            "levels": [lv for lv, _, _ in nodes],
            "positions": [pos for _, pos, _ in nodes],
            "hashes": [h for _, _, h in nodes],
            **{plural: [entry[key] for entry in entries] for key, plural in ENTRY_ARRAYS.items()},
        }

    async def _write(self, state: dict[str, Any]) -> None:
        session = self._session
        await session.execute(
            insert(LedgerNode),
            [{"level": lv, "position": pos, "hash": h} for lv, pos, h in self._nodes],
        )
        await session.execute(insert(LedgerEntry), self._entries)
        await session.execute(
            update(LedgerState).where(LedgerState.id == STATE_ROW).values(**state)
        )


def release(session: AsyncSession) -> Ledger | None:
    """Forget the ledger a group commit held in this session; return it."""
    held: Ledger | None = session.info.pop(LEDGER_KEY, None)
    return held


async def ledger_size(session: AsyncSession) -> int:
    """Return the number of entries committed so far."""
    size = await session.scalar(select(LedgerState.size).where(LedgerState.id == STATE_ROW))
    return int(size or 0)


async def read_nodes(
    session: AsyncSession, nodes: list[merkle.NodeId]
) -> dict[merkle.NodeId, bytes]:
    """Read the given stored nodes in one query."""
    if not nodes:
        return {}
    rows = await session.execute(
        select(LedgerNode.level, LedgerNode.position, LedgerNode.hash).where(
            tuple_(LedgerNode.level, LedgerNode.position).in_(nodes)
        )
    )
    found = {(row.level, row.position): row.hash for row in rows}
    missing = [node for node in nodes if node not in found]
    if missing:
        raise LedgerCorrupt(f"stored tree node {missing[0]} is missing; run `refex ledger verify`")
    return found


class LedgerCorrupt(RuntimeError):
    """Stored tree data needed to answer is missing."""


async def root_at(session: AsyncSession, size: int) -> bytes:
    """Return the root of the tree of the first `size` entries (O(log n) reads)."""
    frontier = merkle.CompactRange.frontier(size)
    nodes = await read_nodes(session, frontier)
    return merkle.fold([nodes[node] for node in frontier])


async def ranges_hashes(session: AsyncSession, ranges: list[merkle.Range]) -> list[bytes]:
    """Return the hash of each range from the stored nodes, in one query."""
    return merkle.hashes_for(ranges, await read_nodes(session, merkle.nodes_for(ranges)))


@dataclass(frozen=True)
class InclusionProof:
    """A leaf, its audit path and the root it leads to."""

    index: int
    tree_size: int
    leaf_hash: bytes
    path: list[bytes]
    root_hash: bytes


async def inclusion_proof(session: AsyncSession, *, index: int, tree_size: int) -> InclusionProof:
    """Return the inclusion proof of entry `index` in the tree of `tree_size` entries."""
    ranges = merkle.inclusion_ranges(index, tree_size)
    frontier = merkle.CompactRange.frontier(tree_size)
    nodes = await read_nodes(session, merkle.nodes_for([*ranges, (index, index + 1)]) + frontier)
    return InclusionProof(
        index=index,
        tree_size=tree_size,
        leaf_hash=nodes[(0, index)],
        path=merkle.hashes_for(ranges, nodes),
        root_hash=merkle.fold([nodes[node] for node in frontier]),
    )


async def consistency_proof(
    session: AsyncSession, *, first: int, second: int
) -> tuple[list[bytes], bytes, bytes]:
    """Return (proof, first root, second root) between two tree sizes."""
    ranges = merkle.consistency_ranges(first, second)
    first_nodes = merkle.CompactRange.frontier(first)
    second_nodes = merkle.CompactRange.frontier(second)
    nodes = await read_nodes(
        session, list(dict.fromkeys(merkle.nodes_for(ranges) + first_nodes + second_nodes))
    )
    return (
        merkle.hashes_for(ranges, nodes),
        merkle.fold([nodes[n] for n in first_nodes]),
        merkle.fold([nodes[n] for n in second_nodes]),
    )


async def latest_tree_head(session: AsyncSession) -> TreeHead | None:
    """Return the newest signed tree head."""
    return await session.scalar(
        select(TreeHead).order_by(TreeHead.tree_size.desc(), TreeHead.id.desc()).limit(1)
    )


async def sign_tree_head(
    session: AsyncSession, *, signer: TreeHeadSigner, only_if_grown: bool
) -> TreeHead | None:
    """Sign the current size and root; with `only_if_grown`, only when entries were added."""
    ledger = await Ledger.lock(session)
    if only_if_grown:
        latest = await session.scalar(select(func.max(TreeHead.tree_size)))
        if latest is not None and latest >= ledger.size:
            return None
    timestamp_ms = int(time.time() * 1000)
    root = ledger.root()
    head = TreeHead(
        tree_size=ledger.size,
        root_hash=root,
        timestamp_ms=timestamp_ms,
        key_id=signer.key_id,
        public_key=signer.public_key,
        signature=signer.sign(tree_size=ledger.size, root_hash=root, timestamp_ms=timestamp_ms),
    )
    session.add(head)
    await session.flush()
    return head


async def purge_expired_bodies(session: AsyncSession, *, now: datetime) -> int:
    """Delete event bodies past their retention; leaf hashes stay, so the tree still verifies."""
    result = await session.execute(
        update(LedgerEntry)
        .where(LedgerEntry.retain_until <= now, LedgerEntry.body.is_not(None))
        .values(body=None, purged_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
