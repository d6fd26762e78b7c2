"""Errors of the consent service, each with a detail a caseworker can act on."""

from __future__ import annotations

from shared.errors import Conflict, Forbidden, NotFound, UnprocessableContent
from shared.i18n import N_


class ConsentNotFound(NotFound):
    """No consent with this id that the caller's organisation may see."""

    slug = "consent-not-found"
    title = N_("Consent not found")
    detail = N_("No consent with this id exists, or it was recorded by another organisation.")


class AlreadyWithdrawn(Conflict):
    """The consent was withdrawn before."""

    slug = "consent-already-withdrawn"
    title = N_("Consent already withdrawn")
    detail = N_(
        "This consent was already withdrawn; nothing changed. Record a new consent if needed."
    )


class NotYourOrganisation(UnprocessableContent):
    """A host office tried to act for another organisation."""

    slug = "sender-not-your-organisation"
    title = N_("Sender is not your organisation")
    detail = N_("sender_org_id must be your own organisation; leave it out to use yours.")


class UnknownBasis(UnprocessableContent):
    """A disclosure names consents or an override that do not exist for this subject."""

    slug = "unknown-disclosure-basis"
    title = N_("Disclosure basis not found")
    detail = N_(
        "The consent_ids or override_id do not belong to this subject. "
        "Send the ids the decision returned."
    )


class OverrideNotFound(NotFound):
    """No override with this id that the caller may see."""

    slug = "override-not-found"
    title = N_("Emergency override not found")
    detail = N_("No emergency override with this id exists, or your organisation may not see it.")


class OverrideNotAllowed(UnprocessableContent):
    """The agreement with the recipient does not allow an emergency override."""

    slug = "override-not-allowed"
    title = N_("Emergency override not allowed")
    detail = N_(
        "The agreement between your office and this service does not allow an emergency "
        "override. Seek the returnee's consent, or ask the directory steward about the agreement."
    )


class OverrideOutsideAgreement(UnprocessableContent):
    """The override asks for categories or a recipient the agreement does not cover."""

    slug = "override-outside-agreement"
    title = N_("Override outside the agreement")


class OverrideStateConflict(Conflict):
    """The override is not in a state that allows this step."""

    slug = "override-state-conflict"
    title = N_("Override cannot take this step")


class LedgerRangeInvalid(UnprocessableContent):
    """A ledger index or size outside the current tree."""

    slug = "ledger-range-invalid"
    title = N_("Outside the ledger")


class BasisNoLongerValid(Conflict):
    """A consent or override a disclosure rests on ended after the decision."""

    slug = "basis-no-longer-valid"
    title = N_("Consent or override no longer in force")
    detail = N_(
        "A consent or emergency override this disclosure rests on was withdrawn, expired or "
        "ended after the decision, so nothing was recorded and nothing may be sent. Ask for a "
        "new decision; record a new consent with the returnee if the transfer is still needed."
    )


class DisclosureOutsideBasis(UnprocessableContent):
    """A disclosure names categories its consents (or override) do not cover."""

    slug = "disclosure-outside-basis"
    title = N_("Categories not covered by the basis")


class SelfAttestation(Forbidden):
    """The client that requested an override may not attest it too."""

    slug = "override-self-attestation"
    title = N_("An override needs a second person")
    detail = N_(
        "The API client that requested this override cannot attest it. Ask a mental-health "
        "professional with their own refex account to assess the risk and attest."
    )


class FreshAttestationNeeded(Forbidden):
    """Renewing an override beyond 72 hours in total needs a professional who did not attest yet."""

    slug = "override-fresh-attestation-needed"
    title = N_("Another professional must attest the renewal")


class OverrideRequestExpired(UnprocessableContent):
    """A pending override was not attested within 24 hours."""

    slug = "override-request-expired"
    title = N_("Override request expired")
    detail = N_(
        "This override request was not attested within 24 hours and has expired. If a life is "
        "still at risk, request a new override and have it attested at once."
    )


class AttestingOrganisationMismatch(UnprocessableContent):
    """The attestation names an organisation the professional does not belong to."""

    slug = "attesting-organisation-mismatch"
    title = N_("Attestation names another organisation")
    detail = N_(
        "professional_org_id must be the organisation of your own refex account; leave it out "
        "to use yours."
    )
