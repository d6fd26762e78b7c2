"""The hash-chained audit trail: each row stores the previous row's hash and its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.models import AuditEvent, ChainHead
from shared.auth import Principal
from shared.canonical import canonical_json, sha256_hex
from shared.clock import utcnow
from shared.ids import new_id

GENESIS_HASH = "0" * 64
HEAD_ROW_ID = 1
VERIFY_BATCH = 2000


def audit_hash(row: AuditEvent) -> str:
    """Hash of a row's canonical content chained to its predecessor."""
    content = {
        "id": str(row.id),
        "referral_id": str(row.referral_id) if row.referral_id else None,
        "action": row.action,
        "actor_client_id": row.actor_client_id,
        "actor_org_id": row.actor_org_id,
        "actor_roles": sorted(row.actor_roles),
        "request_id": row.request_id,
        "details": row.details,
        "at": row.at.isoformat(),
        "prev_hash": row.prev_hash,
    }
    if row.actor_person_id is not None:  # rows from before people signed in hash as they did
        content["actor_person_id"] = str(row.actor_person_id)
    return sha256_hex(row.prev_hash.encode() + canonical_json(content))


async def _locked_head(session: AsyncSession) -> ChainHead:
    # FOR UPDATE serialises appenders on PostgreSQL; SQLite has a single writer anyway.
    head = await session.scalar(
        select(ChainHead).where(ChainHead.id == HEAD_ROW_ID).with_for_update()
    )
    if head is None:
        head = ChainHead(id=HEAD_ROW_ID, seq=0, hash=GENESIS_HASH)
        session.add(head)
    return head


async def append_audit(
    session: AsyncSession,
    *,
    action: str,
    actor: Principal | None,
    referral_id: uuid.UUID | None,
    request_id: str | None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit row in the caller's transaction."""
    head = await _locked_head(session)
    row = AuditEvent(
        id=new_id(),
        referral_id=referral_id,
        action=action,
        actor_client_id=actor.client_id if actor else "refex-referral",
        actor_org_id=actor.org_id if actor else "refex",
        actor_roles=sorted(actor.roles) if actor else ["service"],
        actor_person_id=actor.person_id if actor else None,
        request_id=request_id,
        details=details or {},
        at=utcnow(),
        prev_hash=head.hash,
    )
    row.hash = audit_hash(row)
    session.add(row)
    head.seq += 1
    head.hash = row.hash
    return row


@dataclass(frozen=True)
class ChainBreak:
    """Where the audit chain stops verifying, and why."""

    seq: int
    reason: str


class ChainChecker:
    """Recompute the chain one row at a time, in order, keeping only the last hash."""

    def __init__(self) -> None:
        self.previous = GENESIS_HASH
        self.last_seq = 0
        self.broken: ChainBreak | None = None

    def feed(self, row: AuditEvent) -> ChainBreak | None:
        """Check the next row; return the first break found so far."""
        if self.broken is not None:
            return self.broken
        if row.prev_hash != self.previous:
            self.broken = ChainBreak(
                row.seq, "does not follow the previous row (deleted, inserted or reordered rows)"
            )
        elif audit_hash(row) != row.hash:
            self.broken = ChainBreak(row.seq, "content does not match its hash (row edited)")
        else:
            self.previous, self.last_seq = row.hash, row.seq
        return self.broken

    def finish(self, head_hash: str | None) -> ChainBreak | None:
        """Compare the end of the chain with the stored head; return the first break."""
        if self.broken is None and head_hash is not None and head_hash != self.previous:
            self.broken = ChainBreak(
                self.last_seq + 1, "rows after this point are missing (chain truncated)"
            )
        return self.broken


def verify_chain(rows: Iterable[AuditEvent], head_hash: str | None = None) -> ChainBreak | None:
    """Recompute the chain in order; return the first bad row, or None when all verify."""
    checker = ChainChecker()
    for row in rows:
        if checker.feed(row) is not None:
            break
    return checker.finish(head_hash)


async def verify_stored_chain(
    session: AsyncSession,
    *,
    batch: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ChainBreak | None:
    """Verify the stored chain in keyset-paginated batches (memory stays flat)."""
    if session.get_bind().dialect.name == "postgresql":
        # One snapshot for the head and every batch, so concurrent appends do not count.
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    head = await session.get(ChainHead, HEAD_ROW_ID)
    total = head.seq if head else 0
    checker, after, read = ChainChecker(), 0, 0
    while checker.broken is None:
        query = select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq)
        rows = (await session.scalars(query.limit(batch or VERIFY_BATCH))).all()
        if not rows:
            break
        for row in rows:
            if checker.feed(row) is not None:
                break
        after, read = rows[-1].seq, read + len(rows)
        session.expunge_all()  # forget the batch: the identity map would keep every row
        if progress is not None:
            progress(read, max(total, read))
    return checker.finish(head.hash if head else None)
