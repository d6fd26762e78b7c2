"""What every referral use case shares: its clients, its caller, and who may see a referral."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import repository
from services.referral.audit import append_audit
from services.referral.clients import ConsentClient, DirectoryClient
from services.referral.errors import ReferralNotFound
from services.referral.lifecycle import party_of
from services.referral.models import Referral
from services.referral.schemas import ReferralRead
from services.referral.shaping import to_read
from shared.auth import Principal
from shared.contracts.directory import ResolvedService
from shared.vocabulary import Role


@dataclass
class Clients:
    """The upstream services a referral needs."""

    directory: DirectoryClient
    consent: ConsentClient
    # service id -> last known service summary; only lets the consent call start early (the
    # directory's answer is always re-checked). Per app, so test apps never share it.
    recipients: dict[uuid.UUID, ResolvedService] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """Who asks, under which request id, with which secrets."""

    principal: Principal
    request_id: str | None
    subject_key: bytes


def subject_digest(subject_ref: str, key: bytes) -> str:
    """Keyed digest of a pseudonym: finds a subject's referrals without storing the pseudonym."""
    return hmac.new(key, subject_ref.encode(), hashlib.sha256).hexdigest()


def etag(referral: Referral) -> str:
    """The ETag of the referral's current version."""
    return f'"{referral.version}"'


async def get_visible(
    session: AsyncSession, *, principal: Principal, referral_id: uuid.UUID, for_update: bool = False
) -> Referral:
    """Return the referral if the caller's organisation is a party (or the caller an auditor)."""
    referral = await repository.get(session, referral_id=referral_id, for_update=for_update)
    if referral is None:
        raise ReferralNotFound
    if party_of(referral, principal) is None and not principal.has_any_role(Role.AUDITOR):
        raise ReferralNotFound
    return referral


async def read(*, session: AsyncSession, context: Context, referral_id: uuid.UUID) -> ReferralRead:
    """Return one referral; a party's read of the payload is audited."""
    referral = await get_visible(session, principal=context.principal, referral_id=referral_id)
    action = "referral.read" if party_of(referral, context.principal) else "referral.metadata-read"
    await append_audit(
        session,
        action=action,
        actor=context.principal,
        referral_id=referral.id,
        request_id=context.request_id,
    )
    return to_read(referral, context.principal)
