"""Split one referral's cost between the payers the agreement's cost-share rules name.

The rule, exact to the currency's minor unit (amounts are integers of minor units here):
1. Fixed shares first, in rule order (by id): each pays its amount, at most what is left.
2. Percentage shares then divide what the fixed shares left. Their total, that amount times
   the sum of the percentages, is rounded half to even; each share gets its exact part rounded
   down, and the minor units still missing go one each to the largest remainders (the first
   rule on a tie): the largest-remainder method, so no unit is made up or lost.
3. A cap then limits its share.
What no share pays is `uncovered`: the shares and `uncovered` add up to the cost exactly.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext

from shared.contracts.directory import CostShareRead
from shared.money import to_minor

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class ShareOfCost:
    """What one payer owes under one rule, in minor units."""

    cost_share_id: uuid.UUID
    payer_org_id: uuid.UUID
    basis: str
    amount_minor: int


@dataclass(frozen=True)
class CostSplit:
    """A cost split into shares, and the rest nobody pays."""

    shares: list[ShareOfCost]
    uncovered_minor: int


def _limit(rule: CostShareRead, currency: str) -> int | None:
    limit = rule.limit()
    return None if limit is None else to_minor(limit, currency)


def _largest_remainder(left: int, rules: Sequence[CostShareRead]) -> list[int]:
    with localcontext() as context:
        context.prec = 60
        exact = [Decimal(left) * (r.percentage or 0) / HUNDRED for r in rules]
        total = int(
            (Decimal(left) * sum(r.percentage or 0 for r in rules) / HUNDRED).quantize(
                Decimal(1), rounding=ROUND_HALF_EVEN
            )
        )
        total = min(total, left)  # the directory keeps the percentages at 100 or less
        floors = [int(x.to_integral_value(rounding=ROUND_FLOOR)) for x in exact]
        order = sorted(range(len(rules)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[: total - sum(floors)]:
        floors[i] += 1
    return floors


def split_cost(amount_minor: int, currency: str, rules: Sequence[CostShareRead]) -> CostSplit:
    """Split `amount_minor` by `rules` (one category's, all in `currency`)."""
    ordered = sorted(rules, key=lambda r: r.id)
    fixed = [r for r in ordered if r.basis == "fixed"]
    percentage = [r for r in ordered if r.basis == "percentage"]
    shares: list[ShareOfCost] = []
    left = amount_minor
    for rule in fixed:
        paid = min(_limit(rule, currency) or 0, left)
        left -= paid
        shares.append(ShareOfCost(rule.id, rule.payer_org_id, rule.basis, paid))
    for rule, part in zip(percentage, _largest_remainder(left, percentage), strict=True):
        cap = _limit(rule, currency)
        paid = part if cap is None else min(part, cap)
        shares.append(ShareOfCost(rule.id, rule.payer_org_id, rule.basis, paid))
    return CostSplit(shares, amount_minor - sum(s.amount_minor for s in shares))
