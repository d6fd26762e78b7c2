"""Consent receipts: what was consented to, to whom, until when and how to withdraw, in words.

The text is written in the consent's own language (the one the conversation was held in) from
the message catalog, so a language is added by translating the catalog. No personal data: the
subject reference never appears, only categories, purpose, grantee, dates and the ledger index.
"""

from __future__ import annotations

from datetime import datetime

from babel.dates import format_date

from services.consent.models import Consent
from shared.i18n import N_, Message, gettext, negotiate, use_language
from shared.vocabulary import DataCategory, Purpose, ServiceCategory

CATEGORY_NAMES: dict[str, str] = {
    DataCategory.IDENTITY_BASIC: N_("your name, date of birth and sex"),
    DataCategory.IDENTITY_DOCUMENTS: N_("your identity documents"),
    DataCategory.CONTACT: N_("how to contact you (telephone, address)"),
    DataCategory.RETURN_TRAVEL: N_("the date and place of your return"),
    DataCategory.HOUSEHOLD: N_("the members of your household"),
    DataCategory.VULNERABILITY: N_("particular needs and vulnerabilities"),
    DataCategory.HEALTH_PHYSICAL: N_("your physical health"),
    DataCategory.HEALTH_MENTAL: N_("your mental health"),
    DataCategory.SKILLS: N_("your education, skills and work experience"),
    DataCategory.NEEDS_ASSESSMENT: N_("the assessment of your needs"),
    DataCategory.PLAN: N_("your reintegration plan"),
    DataCategory.PROTECTION: N_("protection concerns"),
}
PURPOSE_NAMES: dict[str, str] = {
    Purpose.REFERRAL: N_("referring you to a service that can help you"),
    Purpose.FOLLOW_UP: N_("following up on the help you receive"),
    Purpose.MONITORING: N_("monitoring the quality of the support programme"),
}
SERVICE_NAMES: dict[str, str] = {
    ServiceCategory.HEALTH: N_("health care"),
    ServiceCategory.MENTAL_HEALTH_PSYCHOSOCIAL: N_("mental health and psychosocial support"),
    ServiceCategory.HOUSING: N_("housing"),
    ServiceCategory.EMPLOYMENT: N_("employment"),
    ServiceCategory.TVET: N_("vocational training"),
    ServiceCategory.BUSINESS_DEVELOPMENT: N_("business development"),
    ServiceCategory.EDUCATION: N_("education"),
    ServiceCategory.LEGAL: N_("legal aid"),
    ServiceCategory.CASH_IN_KIND: N_("cash or in-kind assistance"),
    ServiceCategory.RECEPTION: N_("reception on arrival"),
    ServiceCategory.FAMILY_TRACING: N_("family tracing"),
    ServiceCategory.CHILD_PROTECTION: N_("child protection"),
}

TITLE = N_("Consent receipt")
WHAT = N_("You agreed that {grantee} may receive the following information about you:")
WHY = N_("Purpose: {purpose}.")
UNTIL = N_("This consent is valid from {valid_from} until {valid_until}.")
WITHDRAW = N_(
    "You may withdraw this consent at any time, free of charge, by telling the office that "
    "recorded it. From then on nothing more is shared on its basis."
)
WITHDRAWN = N_("This consent was withdrawn on {withdrawn_at}.")
VERIFY = N_(
    "Consent reference: {consent_id}. It is entry {ledger_index} of the consent ledger, where "
    "it can be verified at any time."
)
TO_ORGANISATION = N_("the organisation {org_id}")
TO_PROVIDERS = N_("providers of {service} in {country}")


def receipt_language(consent: Consent) -> str:
    """The supported language closest to the consent's; English when there is none."""
    return negotiate(consent.language)


def _date(moment: datetime, lang: str) -> str:
    return format_date(moment.date(), format="long", locale=lang)


def _grantee(consent: Consent) -> str:
    if consent.grantee_org_id is not None:
        return Message(TO_ORGANISATION, org_id=consent.grantee_org_id).render()
    service = gettext(SERVICE_NAMES.get(consent.grantee_service_category or "", ""))
    return Message(TO_PROVIDERS, service=service, country=consent.grantee_country).render()


def _lines(consent: Consent, lang: str) -> list[str]:
    dates = {"valid_from": _date(consent.valid_from, lang)}
    dates["valid_until"] = _date(consent.valid_until, lang)
    lines = [
        gettext(TITLE),
        "",
        Message(WHAT, grantee=_grantee(consent)).render(),
        *(f"- {gettext(CATEGORY_NAMES.get(c, c))}" for c in consent.categories),
        "",
        Message(WHY, purpose=gettext(PURPOSE_NAMES.get(consent.purpose, consent.purpose))).render(),
        Message(UNTIL, **dates).render(),
    ]
    if consent.withdrawn_at is not None:
        lines.append(Message(WITHDRAWN, withdrawn_at=_date(consent.withdrawn_at, lang)).render())
    else:
        lines.append(gettext(WITHDRAW))
    lines += [
        "",
        Message(VERIFY, consent_id=consent.id, ledger_index=consent.ledger_index).render(),
    ]
    return lines


def receipt_text(consent: Consent) -> tuple[str, str]:
    """Return the receipt's language and its text (plain, one line per statement)."""
    lang = receipt_language(consent)
    with use_language(lang):
        return lang, "\n".join(_lines(consent, lang))
