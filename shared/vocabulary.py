"""The controlled vocabularies every service process speaks (docs/architecture.md)."""

from __future__ import annotations

from enum import StrEnum

from shared.i18n import N_


class DataCategory(StrEnum):
    """A category of personal data; SOPs and consents speak in these, never in field names."""

    IDENTITY_BASIC = "identity.basic"
    IDENTITY_DOCUMENTS = "identity.documents"
    CONTACT = "contact"
    RETURN_TRAVEL = "return.travel"
    HOUSEHOLD = "household"
    VULNERABILITY = "vulnerability"
    HEALTH_PHYSICAL = "health.physical"
    HEALTH_MENTAL = "health.mental"
    SKILLS = "skills"
    NEEDS_ASSESSMENT = "needs.assessment"
    PLAN = "plan"
    PROTECTION = "protection"


class ServiceCategory(StrEnum):
    """The service taxonomy of the directory."""

    HEALTH = "health"
    MENTAL_HEALTH_PSYCHOSOCIAL = "mental_health_psychosocial"
    HOUSING = "housing"
    EMPLOYMENT = "employment"
    TVET = "tvet"
    BUSINESS_DEVELOPMENT = "business_development"
    EDUCATION = "education"
    LEGAL = "legal"
    CASH_IN_KIND = "cash_in_kind"
    RECEPTION = "reception"
    FAMILY_TRACING = "family_tracing"
    CHILD_PROTECTION = "child_protection"


class Role(StrEnum):
    """What a caller may do; carried in the token's `roles` claim."""

    HOST_OFFICE = "host_office"
    PROVIDER = "provider"
    COORDINATOR = "coordinator"
    MENTAL_HEALTH_PROFESSIONAL = "mental_health_professional"
    AUDITOR = "auditor"
    ADMIN = "admin"
    # A service process calling another; the claim stays "service" so issued tokens keep working.
    INTERNAL_CALLER = "service"


class Pathway(StrEnum):
    """Which way a referral travels: from a host country, or between partners of one country."""

    # A host office (or any host office) to a provider in the country of origin.
    INTERNATIONAL = "international"
    # Between partners of one country of origin (providers, coordinators, local authorities).
    NATIONAL = "national"
    # As national, and the sender and the service share an administrative area.
    LOCAL = "local"


DOMESTIC_PATHWAYS = frozenset({Pathway.NATIONAL, Pathway.LOCAL})


class Purpose(StrEnum):
    """Why personal data is processed; consents and agreements name one or more."""

    REFERRAL = "referral"
    FOLLOW_UP = "follow_up"
    MONITORING = "monitoring"


class WithheldReason(StrEnum):
    """Why a requested data category was not shared."""

    NOT_IN_SOP = "not_in_sop"
    NO_CONSENT = "no_consent"
    NOT_REQUESTED = "not_requested"


# What each reason means for the caseworker; the code itself is never translated.
WITHHELD_EXPLANATIONS: dict[WithheldReason, str] = {
    WithheldReason.NOT_IN_SOP: N_(
        "The agreement (SOP) with this provider does not permit sharing this category for "
        "this service."
    ),
    WithheldReason.NO_CONSENT: N_(
        "The returnee's consent does not cover this category for this recipient and purpose."
    ),
    WithheldReason.NOT_REQUESTED: N_(
        "The case file holds this category, but the referral did not request it."
    ),
}
