"""HTTP routes of the ledger: tree heads, inclusion and consistency proofs, entries, key."""

from __future__ import annotations

import base64
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from services.consent import ledger
from services.consent.dependencies import Auditor, AuditorOrInternalCaller, LedgerReader, SignerDep
from services.consent.errors import LedgerRangeInvalid
from services.consent.models import LedgerEntry, LedgerNode, TreeHead
from services.consent.schemas import (
    ConsistencyProofRead,
    InclusionProofRead,
    LedgerEntryRead,
    PublicKeyRead,
    TreeHeadRead,
)
from services.consent.signing import tree_head_message
from shared.db import SessionDep
from shared.errors import problem_responses

router = APIRouter(prefix="/ledger", tags=["ledger"])
MAX_ENTRIES = 1000


def tree_head_read(head: TreeHead) -> TreeHeadRead:
    """Shape a tree head for the API."""
    return TreeHeadRead(
        tree_size=head.tree_size,
        root_hash=head.root_hash.hex(),
        timestamp_ms=head.timestamp_ms,
        key_id=head.key_id,
        signature=base64.b64encode(head.signature).decode(),
        signed_statement=tree_head_message(
            tree_size=head.tree_size, root_hash=head.root_hash, timestamp_ms=head.timestamp_ms
        ).decode(),
    )


@router.get(
    "/tree-head",
    name="ledger.getTreeHead",
    summary="Latest signed tree head",
    responses=problem_responses(),
)
async def get_tree_head(
    session: SessionDep, principal: LedgerReader, signer: SignerDep
) -> TreeHeadRead:
    """Return the newest signed tree head (signing the first one if none exists yet)."""
    head = await ledger.latest_tree_head(session)
    if head is None:
        head = await ledger.sign_tree_head(session, signer=signer, only_if_grown=False)
    assert head is not None
    return tree_head_read(head)


@router.post(
    "/tree-head",
    name="ledger.signTreeHead",
    status_code=201,
    summary="Sign a tree head now",
    responses=problem_responses(),
)
async def sign_tree_head(
    session: SessionDep, principal: AuditorOrInternalCaller, signer: SignerDep
) -> TreeHeadRead:
    """Sign the ledger's current size and root now (auditors, services; also done each minute)."""
    head = await ledger.sign_tree_head(session, signer=signer, only_if_grown=False)
    assert head is not None
    return tree_head_read(head)


async def _size_or_current(session: SessionDep, size: int | None) -> tuple[int, int]:
    current = await ledger.ledger_size(session)
    return (current if size is None else size), current


@router.get(
    "/entries/{index}/proof",
    name="ledger.getInclusionProof",
    summary="Inclusion proof of an entry",
    responses=problem_responses(422),
)
async def get_inclusion_proof(
    index: Annotated[int, Path(ge=0)],
    session: SessionDep,
    principal: LedgerReader,
    tree_size: Annotated[
        int | None, Query(ge=1, description="Tree size to prove against (default: current).")
    ] = None,
) -> InclusionProofRead:
    """Return the RFC 9162 audit path from entry `index` to the root of the tree of `tree_size`."""
    size, current = await _size_or_current(session, tree_size)
    if size > current or index >= size:
        raise LedgerRangeInvalid(
            f"Entry {index} in a tree of {size} entries does not exist; the ledger holds "
            f"{current} entries. Use an index below tree_size and a tree_size up to {current}."
        )
    proof = await ledger.inclusion_proof(session, index=index, tree_size=size)
    return InclusionProofRead(
        index=index,
        tree_size=size,
        leaf_hash=proof.leaf_hash.hex(),
        audit_path=[h.hex() for h in proof.path],
        root_hash=proof.root_hash.hex(),
    )


@router.get(
    "/consistency",
    name="ledger.getConsistencyProof",
    summary="Consistency proof between two tree sizes",
    responses=problem_responses(422),
)
async def get_consistency_proof(
    session: SessionDep,
    principal: LedgerReader,
    first: Annotated[int, Query(ge=1, description="The older tree size.")],
    second: Annotated[
        int | None, Query(ge=1, description="The newer tree size (default: current).")
    ] = None,
) -> ConsistencyProofRead:
    """Prove that the tree of size `first` is a prefix of the tree of size `second`."""
    size, current = await _size_or_current(session, second)
    if not first <= size <= current:
        raise LedgerRangeInvalid(
            f"Need 1 <= first <= second <= {current} (the current size); "
            f"got first={first}, second={size}."
        )
    proof, first_root, second_root = await ledger.consistency_proof(
        session, first=first, second=size
    )
    return ConsistencyProofRead(
        first=first,
        second=size,
        first_root=first_root.hex(),
        second_root=second_root.hex(),
        proof=[h.hex() for h in proof],
    )


@router.get(
    "/entries",
    name="ledger.listEntries",
    summary="Read ledger entries",
    responses=problem_responses(422),
)
async def list_entries(
    session: SessionDep,
    principal: Auditor,
    start: Annotated[int, Query(ge=0, description="First index.")] = 0,
    end: Annotated[
        int | None, Query(ge=1, description=f"End index, exclusive (at most start+{MAX_ENTRIES}).")
    ] = None,
) -> list[LedgerEntryRead]:
    """Return entries [start, end) with leaf hashes and bodies (null once purged by retention)."""
    stop = start + 100 if end is None else end
    if stop <= start or stop - start > MAX_ENTRIES:
        raise LedgerRangeInvalid(
            f"Ask for 1 to {MAX_ENTRIES} entries: end must be above start and at most "
            f"start+{MAX_ENTRIES}."
        )
    rows = await session.execute(
        select(LedgerEntry, LedgerNode.hash)
        .join(LedgerNode, (LedgerNode.level == 0) & (LedgerNode.position == LedgerEntry.index))
        .where(LedgerEntry.index >= start, LedgerEntry.index < stop)
        .order_by(LedgerEntry.index)
    )
    return [
        LedgerEntryRead(
            index=entry.index,
            event_type=entry.event_type,
            appended_at=entry.appended_at,
            leaf_hash=leaf.hex(),
            body=orjson.loads(entry.body) if entry.body is not None else None,
            purged_at=entry.purged_at,
        )
        for entry, leaf in rows.all()
    ]


@router.get(
    "/public-key",
    name="ledger.getPublicKey",
    summary="Tree-head verification key",
    responses=problem_responses(),
)
async def get_public_key(principal: LedgerReader, signer: SignerDep) -> PublicKeyRead:
    """Return the Ed25519 public key that verifies this ledger's tree heads."""
    raw = signer.public_key
    x = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return PublicKeyRead(
        key_id=signer.key_id,
        public_key=base64.b64encode(raw).decode(),
        jwk={"kty": "OKP", "crv": "Ed25519", "x": x, "kid": signer.key_id},
    )
