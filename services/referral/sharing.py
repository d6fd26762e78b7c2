"""Minimisation: shared = requested ∩ permitted by the SOP ∩ consented (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.vocabulary import DataCategory, WithheldReason


@dataclass(frozen=True)
class SharingDecision:
    """Which categories go to the recipient, and why each other one stays home."""

    shared: frozenset[DataCategory]
    withheld: dict[DataCategory, WithheldReason]


def decide_sharing(
    *,
    requested: Iterable[DataCategory],
    permitted_by_sop: Iterable[DataCategory],
    consented: Iterable[DataCategory],
    present: Iterable[DataCategory],
) -> SharingDecision:
    """Intersect the three sets and give each withheld category its reason."""
    wanted, permitted, allowed = set(requested), set(permitted_by_sop), set(consented)
    shared = wanted & permitted & allowed
    withheld: dict[DataCategory, WithheldReason] = {}
    for category in wanted - shared:
        not_in_sop = category not in permitted
        withheld[category] = WithheldReason.NOT_IN_SOP if not_in_sop else WithheldReason.NO_CONSENT
    for category in set(present) - wanted:
        withheld[category] = WithheldReason.NOT_REQUESTED
    return SharingDecision(shared=frozenset(shared), withheld=withheld)
