"""HTTP routes of the ledger: tree heads, inclusion and consistency proofs, entries, key."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.consent import service
from services.consent.dependencies import Auditor, AuditorOrInternalCaller, LedgerReader, SignerDep
from services.consent.schemas import (
    ConsistencyProofRead,
    InclusionProofRead,
    LedgerEntryRead,
    PublicKeyRead,
    TreeHeadRead,
)
from services.consent.shaping import inclusion_proof_read, ledger_entry_read, tree_head_read
from shared.db import SessionDep
from shared.errors import problem_responses

router = APIRouter(prefix="/ledger", tags=["ledger"])


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
    return tree_head_read(await service.current_tree_head(session=session, signer=signer))


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
    return tree_head_read(await service.sign_tree_head(session=session, signer=signer))


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
    size, proof = await service.inclusion_proof(session=session, index=index, tree_size=tree_size)
    return inclusion_proof_read(index, size, proof)


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
    size, proof, first_root, second_root = await service.consistency_proof(
        session=session, first=first, second=second
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
        int | None,
        Query(
            ge=1,
            description=f"End index, exclusive (at most start+{service.MAX_LEDGER_ENTRIES}).",
        ),
    ] = None,
) -> list[LedgerEntryRead]:
    """Return entries [start, end) with leaf hashes and bodies (null once purged by retention)."""
    rows = await service.ledger_entries(session=session, start=start, end=end)
    return [ledger_entry_read(entry, leaf) for entry, leaf in rows]


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
