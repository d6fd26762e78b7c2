"""Cost-sharing rules of an agreement: who pays which share of which service category.

Within one service category the percentages add up to 100 at most and every rule uses one
currency, so a referral's cost can always be split without a guess (the split itself is the
referral service's, see services/referral/cost_split.py).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import repository
from services.directory import service as directory
from services.directory.changes import record_change
from services.directory.cost_schemas import CostShareCreate, CostShareUpdate, check_terms
from services.directory.errors import (
    AgreementNotFound,
    CostShareCurrencyMismatch,
    CostShareNotFound,
    InvalidReference,
    SharesOverAll,
)
from services.directory.models import Agreement, CostShare, Organisation
from services.directory.rows import unused_id
from shared.auth import Principal
from shared.errors import ValidationFailed
from shared.i18n import Message
from shared.ids import new_id

HUNDRED = Decimal(100)
# What a rule passes on to the next version of its agreement.
CARRIED = (
    "service_category",
    "payer_org_id",
    "basis",
    "percentage",
    "fixed_amount",
    "cap",
    "currency",
    "covers",
)


async def shares_of(
    *, session: AsyncSession, agreement_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[CostShare]]:
    """Return the rules of each agreement (all of them: for callers who may see the agreement)."""
    return await repository.cost_shares_of(session, agreement_ids)


async def _readable(
    session: AsyncSession, principal: Principal, agreement_id: uuid.UUID
) -> tuple[Agreement, uuid.UUID | None]:
    """The agreement and whose rules the caller sees: all (None) or only its own as payer."""
    agreement = await directory.get_agreement(session=session, agreement_id=agreement_id)
    try:
        await directory.visible_agreement(
            session=session, principal=principal, agreement_id=agreement_id
        )
        return agreement, None
    except AgreementNotFound:
        try:
            payer = uuid.UUID(principal.org_id)
        except ValueError:
            raise AgreementNotFound from None
        if await repository.cost_share_page(
            session, agreement_id=agreement_id, payer_org_id=payer, after=None, limit=1
        ):
            return agreement, payer
        raise


async def list_cost_shares(
    *,
    session: AsyncSession,
    principal: Principal,
    agreement_id: uuid.UUID,
    after: uuid.UUID | None,
    limit: int,
) -> list[CostShare]:
    """Return the agreement's rules to its parties and overseers, a payer's own to the payer."""
    _, payer = await _readable(session, principal, agreement_id)
    return await repository.cost_share_page(
        session, agreement_id=agreement_id, payer_org_id=payer, after=after, limit=limit
    )


async def get_cost_share(
    *, session: AsyncSession, principal: Principal, agreement_id: uuid.UUID, share_id: uuid.UUID
) -> CostShare:
    """Return one rule of the agreement to those who may read it; 404 otherwise."""
    _, payer = await _readable(session, principal, agreement_id)
    share = await repository.get(session, CostShare, share_id)
    if share is None or share.agreement_id != agreement_id:
        raise CostShareNotFound
    if payer is not None and share.payer_org_id != payer:
        raise CostShareNotFound
    return share


def _percent(value: Decimal) -> str:
    return format(value.normalize(), "f")


async def _check_category(
    session: AsyncSession, agreement: Agreement, rule: CostShare | CostShareCreate
) -> None:
    """Refuse a rule whose category's percentages would pass 100 or whose currency differs."""
    category = str(rule.service_category)
    if category not in agreement.service_categories:
        raise InvalidReference(
            Message(
                "The agreement does not cover service category '{category}'; it covers: "
                "{covered}. Name one of those.",
                category=category,
                covered=", ".join(agreement.service_categories),
            )
        )
    others = [
        other
        for other in await repository.category_shares(
            session, agreement_id=agreement.id, category=category
        )
        if other.id != rule.id
    ]
    currencies = sorted({other.currency for other in others} - {rule.currency})
    if currencies:
        raise CostShareCurrencyMismatch(
            Message(
                "The other shares of '{category}' under this agreement are in {currencies}; "
                "give this one in the same currency (or change theirs first). Nothing was "
                "stored.",
                category=category,
                currencies=", ".join(currencies),
            )
        )
    taken = sum((o.percentage for o in others if o.percentage is not None), Decimal(0))
    if rule.percentage is not None and taken + rule.percentage > HUNDRED:
        raise SharesOverAll(
            Message(
                "The shares of '{category}' would add up to {total} %; the other rules already "
                "take {taken} %, so this one may take {left} % at most. Lower it, or lower "
                "the others first. Nothing was stored.",
                category=category,
                total=_percent(taken + rule.percentage),
                taken=_percent(taken),
                left=_percent(HUNDRED - taken),
            ),
            taken=_percent(taken),
        )


async def _payer(session: AsyncSession, payer_org_id: uuid.UUID) -> Organisation:
    payer = await repository.get(session, Organisation, payer_org_id)
    if payer is None:
        raise InvalidReference(
            Message("'payer_org_id' names no organisation; check the id with GET /organisations.")
        )
    return payer


def _audit(
    session: AsyncSession,
    principal: Principal,
    request_id: str | None,
    action: str,
    share: CostShare,
    provider: Organisation,
) -> None:
    record_change(
        session,
        principal=principal,
        request_id=request_id,
        action=action,
        object_type="cost_share",
        object_id=share.id,
        organisation_id=provider.id,
        country=provider.country,
        details={
            "agreement_id": str(share.agreement_id),
            "service_category": share.service_category,
            "payer_org_id": str(share.payer_org_id),
            "basis": share.basis,
        },
    )


async def create_cost_share(
    *,
    session: AsyncSession,
    principal: Principal,
    request_id: str | None,
    agreement_id: uuid.UUID,
    share_in: CostShareCreate,
) -> CostShare:
    """Add a rule to the agreement, refusing shares over 100 % or in another currency."""
    agreement = await directory.get_agreement(session=session, agreement_id=agreement_id)
    await _payer(session, share_in.payer_org_id)
    share_id = await unused_id(session, CostShare, share_in.id)
    await _check_category(session, agreement, share_in)
    share = CostShare(
        id=share_id,
        agreement_id=agreement.id,
        service_category=str(share_in.service_category),
        payer_org_id=share_in.payer_org_id,
        basis=share_in.basis,
        percentage=share_in.percentage,
        fixed_amount=share_in.fixed_amount,
        cap=share_in.cap,
        currency=share_in.currency,
        covers=dict(share_in.covers),
        row_version=1,
    )
    session.add(share)
    provider = await directory.get_organisation(session=session, org_id=agreement.provider_org_id)
    _audit(session, principal, request_id, "cost_share.created", share, provider)
    await session.flush()
    return share


async def update_cost_share(
    *,
    session: AsyncSession,
    principal: Principal,
    request_id: str | None,
    agreement_id: uuid.UUID,
    share_id: uuid.UUID,
    share_in: CostShareUpdate,
    if_match: str | None,
) -> CostShare:
    """Correct a rule's terms, currency or what it covers; the checks of a new rule apply."""
    share = await get_cost_share(
        session=session, principal=principal, agreement_id=agreement_id, share_id=share_id
    )
    directory.check_if_match(share, if_match)
    changes = share_in.model_dump(exclude_unset=True)
    directory.refuse_nulls(share, changes)
    terms = {
        "percentage": share.percentage,
        "fixed_amount": share.fixed_amount,
        "cap": share.cap,
        "currency": share.currency,
    }
    terms.update({k: v for k, v in changes.items() if k in terms})
    try:
        check_terms(basis=share.basis, **terms)  # type: ignore[arg-type]
    except ValueError as error:
        raise ValidationFailed(
            Message("{reason}. Nothing was changed.", reason=error.args[0])
        ) from None
    for key, value in changes.items():
        setattr(share, key, value)
    agreement = await directory.get_agreement(session=session, agreement_id=agreement_id)
    await _check_category(session, agreement, share)
    directory.bump(share)
    provider = await directory.get_organisation(session=session, org_id=agreement.provider_org_id)
    _audit(session, principal, request_id, "cost_share.updated", share, provider)
    await session.flush()
    return share


async def carry_over(
    *, session: AsyncSession, principal: Principal, request_id: str | None, agreement: Agreement
) -> list[CostShare]:
    """Give a new version the rules of the version before it, for the categories it covers."""
    versions = await repository.agreement_series(session, agreement.series_id)
    earlier = [v for v in versions if v.version < agreement.version]
    if not earlier:
        return []
    previous = max(earlier, key=lambda v: v.version)
    rules = (await repository.cost_shares_of(session, [previous.id]))[previous.id]
    provider = await directory.get_organisation(session=session, org_id=agreement.provider_org_id)
    copies = []
    for rule in rules:
        if rule.service_category not in agreement.service_categories:
            continue
        copy = CostShare(
            id=new_id(),
            agreement_id=agreement.id,
            row_version=1,
            **{key: getattr(rule, key) for key in CARRIED},
        )
        copy.covers = dict(rule.covers)
        session.add(copy)
        _audit(session, principal, request_id, "cost_share.created", copy, provider)
        copies.append(copy)
    await session.flush()
    return copies
