"""A referral's cost: the sender estimates it, the provider records it, payers settle shares.

The split follows the cost-share rules of the agreement the referral rests on, read from the
directory (services/referral/cost_split.py states the rounding). Only organisations and
amounts are stored, and the audit rows carry the same.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.referral import repository
from services.referral.audit import append_audit
from services.referral.cost_schemas import CostIn, Settlement, SettlementChange
from services.referral.cost_split import CostSplit, split_cost
from services.referral.errors import (
    CostCurrencyMismatch,
    CostLocked,
    CostNotRecorded,
    CostStepNotYours,
    CostTooEarly,
    IllegalSettlement,
    NoAgreement,
    NoShareOfPayer,
    ReferralChanged,
    ReferralNotFound,
)
from services.referral.lifecycle import Party, party_of
from services.referral.models import CostShareLine, Referral, ReferralCost
from services.referral.schemas import Status
from services.referral.service import Clients, Context
from shared.auth import Principal
from shared.clock import utcnow
from shared.contracts.directory import CostShareRead
from shared.i18n import N_, Message
from shared.ids import new_id
from shared.money import money_text
from shared.vocabulary import Role

# The provider records the actual cost of a referral it took on.
ACTUAL_STATUSES = frozenset(
    {Status.ACCEPTED, Status.IN_PROGRESS, Status.ON_HOLD, Status.COMPLETED, Status.FAILED}
)
# A referral that was never taken on has no cost to estimate.
NO_COST_STATUSES = frozenset({Status.REJECTED, Status.CANCELLED, Status.ENTERED_IN_ERROR})
# Who takes each settlement step: the provider invoices the payer, the payer pays.
STEPS: dict[tuple[Settlement, Settlement], str] = {
    (Settlement.PLEDGED, Settlement.INVOICED): "recipient",
    (Settlement.INVOICED, Settlement.PAID): "payer",
}
PAYER_ROLES = (Role.HOST_OFFICE, Role.PROVIDER, Role.COORDINATOR)


@dataclass(frozen=True)
class CostView:
    """A referral with its cost record and the payers' shares."""

    referral: Referral
    cost: ReferralCost
    lines: list[CostShareLine]


def _org(principal: Principal) -> uuid.UUID | None:
    try:
        return uuid.UUID(principal.org_id)
    except ValueError:
        return None


async def _visible(session: AsyncSession, principal: Principal, referral_id: uuid.UUID) -> Referral:
    """The referral, to its parties, its payers and auditors; 404 to everybody else."""
    referral = await repository.get(session, referral_id=referral_id)
    if referral is None:
        raise ReferralNotFound
    if party_of(referral, principal) is not None or principal.has_any_role(Role.AUDITOR):
        return referral
    org = _org(principal)
    if (
        org is not None
        and principal.has_any_role(*PAYER_ROLES)
        and await repository.is_payer(session, referral_id=referral_id, org_id=org)
    ):
        return referral
    raise ReferralNotFound


async def _view(session: AsyncSession, referral: Referral) -> CostView:
    cost = await repository.cost(session, referral_id=referral.id)
    if cost is None:
        raise CostNotRecorded
    return CostView(referral, cost, await repository.cost_lines(session, referral_id=referral.id))


async def read_cost(*, session: AsyncSession, context: Context, referral_id: uuid.UUID) -> CostView:
    """Return the referral's cost and split to its parties, payers and auditors."""
    referral = await _visible(session, context.principal, referral_id)
    return await _view(session, referral)


def _check_if_match(cost: ReferralCost | None, if_match: str | None) -> None:
    if if_match is None:
        return
    current = f'"{cost.version}"' if cost else '"0"'
    if current not in {tag.strip().removeprefix("W/") for tag in if_match.split(",")}:
        raise ReferralChanged(
            N_("The cost changed since you read it. Read it again (GET .../costs) and retry.")
        )


async def _rules(clients: Clients, referral: Referral, context: Context) -> list[CostShareRead]:
    agreement = await clients.directory.agreement(
        referral.agreement_id, request_id=context.request_id
    )
    if agreement is None:
        raise NoAgreement(
            N_(
                "The agreement this referral rests on is no longer in the directory, so its "
                "cost cannot be split. Ask the directory steward."
            )
        )
    return [r for r in agreement.cost_shares if r.service_category == referral.service_category]


def _check_currency(rules: list[CostShareRead], cost_in: CostIn, cost: ReferralCost | None) -> None:
    expected = {r.currency for r in rules} | ({cost.currency} if cost else set())
    if expected and expected != {cost_in.currency}:
        raise CostCurrencyMismatch(
            Message(
                "This referral's cost is kept in {expected} (its agreement's cost-share rules "
                "and any earlier estimate); give the amount in {expected}, not {given}. "
                "Nothing was stored.",
                expected=", ".join(sorted(expected)),
                given=cost_in.currency,
            ),
            currency=sorted(expected)[0],
        )


def _store_split(
    session: AsyncSession, referral: Referral, cost: ReferralCost, split: CostSplit
) -> list[CostShareLine]:
    now = utcnow()
    lines = [
        CostShareLine(
            id=new_id(),
            referral_id=referral.id,
            cost_share_id=share.cost_share_id,
            payer_org_id=share.payer_org_id,
            basis=share.basis,
            amount_minor=share.amount_minor,
            currency=cost.currency,
            status=Settlement.PLEDGED.value,
            updated_at=now,
        )
        for share in split.shares
    ]
    session.add_all(lines)
    cost.uncovered_minor = split.uncovered_minor
    return lines


def _details(cost_in: CostIn, split: CostSplit) -> dict[str, object]:
    return {
        "amount": money_text(cost_in.minor(), cost_in.currency),
        "shares": [
            {
                "cost_share_id": str(s.cost_share_id),
                "payer_org_id": str(s.payer_org_id),
                "amount": money_text(s.amount_minor, cost_in.currency),
            }
            for s in split.shares
        ],
        "uncovered": money_text(split.uncovered_minor, cost_in.currency),
    }


def _require_party(referral: Referral, principal: Principal, party: Party) -> None:
    if party_of(referral, principal) != party:
        raise CostStepNotYours(
            N_("Only the sending office estimates a referral's cost.")
            if party == Party.SENDER
            else N_("Only the provider that received the referral records its actual cost.")
        )


async def _locked_referral(
    session: AsyncSession, principal: Principal, referral_id: uuid.UUID
) -> Referral:
    referral = await repository.get(session, referral_id=referral_id, for_update=True)
    if referral is None:
        raise ReferralNotFound
    if party_of(referral, principal) is None:
        await _visible(session, principal, referral_id)  # a payer's, or 404
    return referral


async def set_cost(
    *,
    session: AsyncSession,
    context: Context,
    clients: Clients,
    referral_id: uuid.UUID,
    cost_in: CostIn,
    actual: bool,
    if_match: str | None,
) -> CostView:
    """Record the estimate (the sender) or the actual cost (the provider) and split it."""
    principal = context.principal
    referral = await _locked_referral(session, principal, referral_id)
    _require_party(referral, principal, Party.RECIPIENT if actual else Party.SENDER)
    cost = await repository.cost(session, referral_id=referral.id, for_update=True)
    _check_if_match(cost, if_match)
    lines = await repository.cost_lines(session, referral_id=referral.id)
    _check_moment(referral, cost, lines, actual=actual)
    rules = await _rules(clients, referral, context)
    _check_currency(rules, cost_in, cost)
    now = utcnow()
    if cost is None:
        cost = ReferralCost(
            referral_id=referral.id,
            currency=cost_in.currency,
            uncovered_minor=0,
            version=0,
            created_at=now,
        )
        session.add(cost)
    if actual:
        cost.actual_minor, cost.actual_at = cost_in.minor(), now
    else:
        cost.estimated_minor, cost.estimated_at = cost_in.minor(), now
    cost.version += 1
    cost.updated_at = now
    await repository.drop_cost_lines(session, referral_id=referral.id)
    split = split_cost(cost_in.minor(), cost_in.currency, rules)
    stored = _store_split(session, referral, cost, split)
    await append_audit(
        session,
        action="cost.actual-recorded" if actual else "cost.estimated",
        actor=principal,
        referral_id=referral.id,
        request_id=context.request_id,
        details=_details(cost_in, split),
    )
    await session.flush()
    return CostView(referral, cost, stored)


def _check_moment(
    referral: Referral, cost: ReferralCost | None, lines: list[CostShareLine], *, actual: bool
) -> None:
    """Refuse an estimate after the actual cost, an actual cost before acceptance or after
    invoicing."""
    if Status(referral.status) in NO_COST_STATUSES:
        raise CostLocked(
            Message(
                "A referral in status '{status}' was never taken on, so it has no cost to "
                "estimate or record.",
                status=referral.status,
            )
        )
    if not actual and cost is not None and cost.actual_minor is not None:
        raise CostLocked(
            N_(
                "The provider already recorded the actual cost; the estimate can no longer "
                "change. Read the split with GET .../costs."
            )
        )
    if actual and Status(referral.status) not in ACTUAL_STATUSES:
        raise CostTooEarly(
            Message(
                "A referral in status '{status}' has no actual cost yet; record it once you "
                "accepted the referral.",
                status=referral.status,
            )
        )
    if actual and any(line.status != Settlement.PLEDGED for line in lines):
        raise CostLocked(
            N_(
                "A share of this cost is already invoiced or paid, so the actual cost can no "
                "longer change. Settle a correction outside refex and note it."
            )
        )


def _who_may(step: str, referral: Referral, principal: Principal, payer: uuid.UUID) -> None:
    if step == "recipient" and party_of(referral, principal) != Party.RECIPIENT:
        raise CostStepNotYours(N_("Only the provider that received the referral invoices."))
    if step == "payer" and not (principal.has_any_role(*PAYER_ROLES) and _org(principal) == payer):
        raise CostStepNotYours(N_("Only the paying organisation marks its share paid."))


async def settle(
    *,
    session: AsyncSession,
    context: Context,
    referral_id: uuid.UUID,
    change: SettlementChange,
) -> CostView:
    """Move one payer's share on: pledged → invoiced (the provider) → paid (the payer)."""
    principal = context.principal
    referral = await _locked_referral(session, principal, referral_id)
    view = await _view(session, referral)
    mine = [line for line in view.lines if line.payer_org_id == change.payer_org_id]
    if not mine:
        raise NoShareOfPayer
    current = Settlement(mine[0].status)
    target = Settlement(change.status)
    step = STEPS.get((current, target))
    if step is None:
        allowed = [str(to) for (start, to) in STEPS if start == current]
        raise IllegalSettlement(
            Message(
                "A share that is '{status}' cannot become '{target}'. Next step: {allowed}.",
                status=current,
                target=target,
                allowed=", ".join(allowed) or Message("none (it is paid)"),
            ),
            allowed=allowed,
        )
    _who_may(step, referral, principal, change.payer_org_id)
    if target == Settlement.INVOICED and view.cost.actual_minor is None:
        raise CostTooEarly(
            N_("Record the actual cost (PUT .../costs/actual) before invoicing a share of it.")
        )
    now = utcnow()
    for line in mine:
        line.status = target.value
        line.updated_at = now
        if target == Settlement.INVOICED:
            line.invoiced_at = now
        else:
            line.paid_at = now
    view.cost.version += 1
    view.cost.updated_at = now
    await append_audit(
        session,
        action=f"cost.{target.value}",
        actor=principal,
        referral_id=referral.id,
        request_id=context.request_id,
        details={
            "payer_org_id": str(change.payer_org_id),
            "amount": money_text(sum(line.amount_minor for line in mine), view.cost.currency),
        },
    )
    await session.flush()
    return view
