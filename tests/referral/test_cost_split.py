"""The cost split rule: exact to the minor unit, sums to the cost, never past a cap."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.referral.cost_split import split_cost
from shared.contracts.directory import CostShareRead
from shared.money import from_minor, to_minor

NOW = datetime(2026, 3, 1, tzinfo=UTC)
PAYERS = [uuid.UUID(int=n) for n in range(1, 6)]


def rule(
    n: int,
    basis: str,
    *,
    percentage: str | None = None,
    fixed: str | None = None,
    cap: str | None = None,
    currency: str = "EUR",
) -> CostShareRead:
    return CostShareRead(
        id=uuid.UUID(int=100 + n),
        agreement_id=uuid.UUID(int=99),
        service_category="health",
        payer_org_id=PAYERS[n % len(PAYERS)],
        basis="fixed" if basis == "fixed" else "percentage",
        percentage=None if percentage is None else Decimal(percentage),
        fixed_amount=None if fixed is None else Decimal(fixed),
        cap=None if cap is None else Decimal(cap),
        currency=currency,
        covers={"en": "care"},
        row_version=1,
        created_at=NOW,
        updated_at=NOW,
    )


def amounts(split: object) -> list[int]:
    return [s.amount_minor for s in split.shares]  # type: ignore[attr-defined]


class TestTheRule:
    def test_fixed_first_then_percentages_of_what_is_left_then_caps(self) -> None:
        rules = [
            rule(0, "fixed", fixed="20"),
            rule(1, "percentage", percentage="70", cap="400"),
            rule(2, "percentage", percentage="30"),
        ]
        assert amounts(split_cost(25000, "EUR", rules)) == [2000, 16100, 6900]
        capped = split_cost(70000, "EUR", rules)
        assert amounts(capped) == [2000, 40000, 20400]
        assert capped.uncovered_minor == 7600

    def test_a_fixed_share_pays_no_more_than_the_cost(self) -> None:
        rules = [rule(0, "fixed", fixed="20"), rule(1, "fixed", fixed="20")]
        split = split_cost(3000, "EUR", rules)
        assert amounts(split) == [2000, 1000] and split.uncovered_minor == 0

    def test_thirds_round_by_largest_remainder_and_add_up(self) -> None:
        rules = [rule(n, "percentage", percentage="33.3333") for n in range(3)]
        split = split_cost(10000, "EUR", rules)  # 100.00 EUR at 99.9999 %
        assert amounts(split) == [3334, 3333, 3333] and split.uncovered_minor == 0
        halves = [rule(n, "percentage", percentage="50") for n in range(2)]
        assert amounts(split_cost(1, "EUR", halves)) == [1, 0]  # the first rule on a tie

    def test_the_total_of_the_percentages_rounds_half_to_even(self) -> None:
        half = [rule(0, "percentage", percentage="50")]
        assert amounts(split_cost(1, "EUR", half)) == [0]  # 0.5 cent -> 0
        assert amounts(split_cost(3, "EUR", half)) == [2]  # 1.5 cents -> 2

    def test_no_rules_leave_everything_uncovered(self) -> None:
        split = split_cost(12345, "EUR", [])
        assert split.shares == [] and split.uncovered_minor == 12345

    def test_currencies_without_minor_units_split_in_whole_units(self) -> None:
        rules = [rule(n, "percentage", percentage="33.3333", currency="XOF") for n in range(3)]
        assert amounts(split_cost(100, "XOF", rules)) == [34, 33, 33]
        assert from_minor(34, "XOF") == Decimal("34")


@st.composite
def rule_sets(draw: st.DrawFn) -> list[CostShareRead]:
    count = draw(st.integers(0, 5))
    rules: list[CostShareRead] = []
    room = Decimal(100)
    for n in range(count):
        cap = draw(st.none() | st.integers(1, 10**7).map(lambda c: str(from_minor(c, "EUR"))))
        if draw(st.booleans()):
            fixed = from_minor(draw(st.integers(1, 10**7)), "EUR")
            rules.append(rule(n, "fixed", fixed=str(fixed)))
            continue
        if room <= 0:
            continue
        whole = int(room * 10000)
        pct = Decimal(draw(st.integers(1, whole))) / 10000
        room -= pct
        rules.append(rule(n, "percentage", percentage=str(pct), cap=cap))
    return rules


@given(amount=st.integers(1, 10**12), rules=rule_sets())
def test_a_split_always_adds_up_to_the_cost_and_never_passes_a_cap(
    amount: int, rules: list[CostShareRead]
) -> None:
    split = split_cost(amount, "EUR", rules)
    assert sum(amounts(split)) + split.uncovered_minor == amount
    assert split.uncovered_minor >= 0
    by_id = {r.id: r for r in rules}
    for share in split.shares:
        limit = by_id[share.cost_share_id]
        assert share.amount_minor >= 0
        for bound in (limit.cap, limit.fixed_amount):
            if bound is not None:
                assert share.amount_minor <= to_minor(bound, "EUR")
    percentages = sum((r.percentage or Decimal(0)) for r in rules)
    if percentages == 100 and all(r.cap is None for r in rules):
        assert split.uncovered_minor == 0
