"""Who may be party to an agreement of each pathway, and which referrals a domestic one carries.

An international agreement binds a host office (or any host office) to a provider in the country
of origin. A national or local one binds two partners of one country of origin: a provider,
coordinating body or local authority sending to another provider there.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import repository
from services.directory.errors import PathwayNotAllowed, PathwayNotCovered
from services.directory.models import Agreement, Organisation, Service
from services.directory.schemas import AgreementCreate
from shared.i18n import N_, Message
from shared.vocabulary import DOMESTIC_PATHWAYS, Pathway


def _not_allowed(detail: Message | str, field: str) -> PathwayNotAllowed:
    return PathwayNotAllowed(
        detail,
        errors=[{"loc": ["body", field], "msg": "does not fit the pathway", "type": "pathway"}],
    )


async def check_parties(session: AsyncSession, agreement_in: AgreementCreate) -> None:
    """Refuse an agreement whose sender and provider do not fit its pathway; store nothing."""
    if agreement_in.sender_org_id == agreement_in.provider_org_id:
        raise _not_allowed(
            N_(
                "An organisation cannot hold an agreement with itself: name another organisation "
                "as the sender or the provider. Nothing was stored."
            ),
            "sender_org_id",
        )
    if agreement_in.pathway not in DOMESTIC_PATHWAYS:
        return
    if agreement_in.sender_org_id is None:
        raise _not_allowed(
            N_(
                "A national or local agreement must name its sender (a provider, coordinating "
                "body or local authority of the provider's country); 'any host office' applies "
                "to international agreements only. Nothing was stored."
            ),
            "sender_org_id",
        )
    orgs = await repository.organisations(
        session, [agreement_in.sender_org_id, agreement_in.provider_org_id]
    )
    sender, provider = orgs[agreement_in.sender_org_id], orgs[agreement_in.provider_org_id]
    problem = _party_problem(agreement_in.pathway, sender, provider)
    if problem is not None:
        raise _not_allowed(problem, "pathway")


def _party_problem(
    pathway: Pathway, sender: Organisation, provider: Organisation
) -> Message | None:
    if sender.host_office:
        return Message(
            "The sender is a host office, so its agreements are international: set pathway to "
            "'international', or name a partner of the country of origin as the sender. Nothing "
            "was stored."
        )
    if sender.country != provider.country:
        return Message(
            "A {pathway} agreement binds partners of one country, but the sender is in "
            "{sender_country} and the provider in {provider_country}. Nothing was stored.",
            pathway=str(pathway),
            sender_country=sender.country,
            provider_country=provider.country,
        )
    if pathway == Pathway.LOCAL and not set(sender.admin_areas) & set(provider.admin_areas):
        return Message(
            "A local agreement binds partners of one administrative area, but the sender and "
            "the provider share none. Use pathway 'national', or correct their admin_areas. "
            "Nothing was stored."
        )
    return None


def check_referral(agreement: Agreement, *, sender: Organisation, service: Service) -> None:
    """Refuse a referral a domestic agreement cannot carry (sender and service too far apart)."""
    if agreement.pathway not in DOMESTIC_PATHWAYS:
        return
    if sender.country != service.country:
        raise PathwayNotCovered(
            Message(
                "Agreement {agreement_id} is {pathway}: it covers referrals within one country, "
                "but your organisation is in {sender_country} and the service in "
                "{service_country}. Refer through an international agreement instead.",
                agreement_id=agreement.id,
                pathway=agreement.pathway,
                sender_country=sender.country,
                service_country=service.country,
            ),
            pathway=agreement.pathway,
        )
    if agreement.pathway == Pathway.LOCAL and not set(sender.admin_areas) & set(
        service.admin_areas
    ):
        raise PathwayNotCovered(
            Message(
                "Agreement {agreement_id} is local: it covers services in your organisation's "
                "own administrative areas, and this service is outside them. Choose a service "
                "in your area, or ask the directory steward for a national agreement.",
                agreement_id=agreement.id,
            ),
            pathway=agreement.pathway,
        )
