"""Problems the referral service answers with; none ever carries personal data."""

from __future__ import annotations

from shared.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    UnprocessableContent,
)
from shared.i18n import N_


class ReferralNotFound(NotFound):
    """The referral does not exist or the caller's organisation is not a party to it."""

    slug = "referral-not-found"
    title = N_("Referral not found")
    detail = N_("No referral with this id is visible to your organisation.")


class NoAgreement(UnprocessableContent):
    """No SOP/MoU covers this sender, service and purpose."""

    slug = "no-agreement"
    title = N_("No agreement covers this referral")


class ProgrammeRequired(UnprocessableContent):
    """Agreements of several programmes cover this referral and it names none."""

    slug = "programme-required"
    title = N_("Name the programme")


class RecipientNotAccepting(UnprocessableContent):
    """The service currently takes no referrals."""

    slug = "recipient-not-accepting"
    title = N_("Service is not accepting referrals")
    detail = N_(
        "This service is not accepting referrals at the moment. Choose another service in the "
        "directory, or ask the provider when it will accept again."
    )


class NoRecipientKey(UnprocessableContent):
    """A party has no valid encryption key, so nothing can be sent securely."""

    slug = "no-valid-key"
    title = N_("No valid encryption key")


class NothingToShare(UnprocessableContent):
    """After applying the SOP and the consent, no requested category may be shared."""

    slug = "nothing-to-share"
    title = N_("Nothing may be shared")


class IdempotencyKeyReused(UnprocessableContent):
    """The Idempotency-Key was already used for a different request."""

    slug = "idempotency-key-reused"
    title = N_("Idempotency-Key used for another request")
    detail = N_(
        "This Idempotency-Key was already used with a different body. Use a new key for a new "
        "referral, or resend exactly the original body to get the original answer."
    )


class DuplicateActiveReferral(Conflict):
    """The same subject already has an active referral to this service."""

    slug = "duplicate-open-referral"  # a problem type never changes, whatever the class says
    title = N_("An active referral already exists")


class IllegalTransition(Conflict):
    """The referral cannot move from its current status to the requested one."""

    slug = "illegal-transition"
    title = N_("Status change not allowed")


class ReferralClosed(Conflict):
    """The referral is closed, so nothing more may be added to it."""

    slug = "referral-closed"
    title = N_("Referral is closed")


class BasisEnded(Conflict):
    """The consent, override or agreement the referral rests on is no longer in force."""

    slug = "basis-ended"
    title = N_("The basis for sharing has ended")
    detail = N_(
        "The consent or agreement this referral rests on is no longer in force, so nothing "
        "more may be sent on it. Ask the returnee for a new consent; the sender can then "
        "cancel this referral and send a new one."
    )


class NoteLimitReached(Conflict):
    """The referral holds as many notes as one referral may."""

    slug = "note-limit-reached"
    title = N_("Too many notes on this referral")


class NoteTooLong(PayloadTooLarge):
    """The note has more characters than one note may."""

    slug = "note-too-long"
    title = N_("Note too long")


class MissingReason(UnprocessableContent):
    """This status change needs a reason code (or an outcome)."""

    slug = "reason-required"
    title = N_("Reason required")


class ReferralChanged(PreconditionFailed):
    """If-Match did not match the referral's current ETag."""

    slug = "referral-changed"


class ConsentEndedWhileSending(Conflict):
    """The consent (or override) was withdrawn, expired or ended between decision and sending."""

    slug = "consent-ended-while-sending"
    title = N_("Consent ended while sending")
    detail = N_(
        "The returnee's consent (or the emergency override) was withdrawn, expired or ended "
        "while this referral was being sent, so nothing was sent and nothing was stored. "
        "Check the consent with the returnee; send again only once a consent is in force."
    )


class ContentWithdrawn(Conflict):
    """The returnee withdrew the consent: the recipient no longer reads the referral's content."""

    slug = "content-withdrawn"
    title = N_("Consent withdrawn")
    detail = N_(
        "The returnee withdrew the consent this referral rested on, so its case file, feedback "
        "and notes are no longer shared with your organisation. Delete any copy you keep."
    )


class SealedModeRequired(UnprocessableContent):
    """The agreement accepts only referrals sealed by the sender's own system."""

    slug = "sealed-mode-required"
    title = N_("Sealed referral required")
    detail = N_(
        "The agreement with this provider requires sealed referrals: your system must encrypt "
        "each case-file section itself, so refex never reads it. Fetch a decision preview "
        "(POST /referrals/preview), seal the permitted sections, then send them to "
        "POST /referrals/sealed (the partner SDK does all three)."
    )


class ReservationInvalid(UnprocessableContent):
    """The reservation of a sealed referral is not one refex issued, or not for this request."""

    slug = "reservation-invalid"
    title = N_("Preview reservation not valid")
    detail = N_(
        "The reservation is not one refex issued for this sender, service, returnee and "
        "purpose. Fetch the preview again with the same details, then seal and send."
    )


class ReservationExpired(Conflict):
    """The preview a sealed referral was made for has expired."""

    slug = "reservation-expired"
    title = N_("Preview expired")
    detail = N_(
        "The preview these sections were sealed for has expired. Fetch the preview again, "
        "seal the sections for its new referral id and keys, then send."
    )


class ReservationUsed(Conflict):
    """The reserved referral id was already used by another referral."""

    slug = "reservation-used"
    title = N_("Preview already used")
    detail = N_(
        "A referral was already sent with this preview. Fetch a new preview for a new "
        "referral; to retry the same send, repeat it with the same Idempotency-Key."
    )


class KeySetChanged(Conflict):
    """A party's keys changed since the sections were sealed."""

    slug = "key-set-changed"
    title = N_("Encryption keys changed")


class SectionNotPermitted(UnprocessableContent):
    """A sealed section is labelled with a category that may not be shared."""

    slug = "section-not-permitted"
    title = N_("Section may not be shared")


class SealedSectionInvalid(UnprocessableContent):
    """A sealed section (or note) is not encrypted as the preview says."""

    slug = "sealed-section-invalid"
    title = N_("Sealed section not acceptable")


class SealedNoteRequired(UnprocessableContent):
    """Notes on a sealed referral must be sealed by their writer."""

    slug = "sealed-note-required"
    title = N_("Sealed note required")
    detail = N_(
        "This referral was sealed by its sender, so its notes must be sealed too: encrypt the "
        "note to the keys of GET /referrals/{id}/keys and send it as `sealed`."
    )


class CostCurrencyMismatch(UnprocessableContent):
    """The cost is not in the currency of the agreement's cost-share rules (or its estimate)."""

    slug = "cost-currency-mismatch"
    title = N_("Cost in another currency")


class CostNotRecorded(NotFound):
    """No cost was estimated or recorded for this referral yet."""

    slug = "cost-not-recorded"
    title = N_("No cost recorded")
    detail = N_(
        "No cost was estimated or recorded for this referral yet. The sender estimates it "
        "with PUT .../costs/estimate, the provider records it with PUT .../costs/actual."
    )


class CostLocked(Conflict):
    """The cost can no longer change: an actual cost or a settlement came after it."""

    slug = "cost-locked"
    title = N_("Cost can no longer change")


class IllegalSettlement(Conflict):
    """A payer's share cannot move from its settlement status to the requested one."""

    slug = "illegal-settlement"
    title = N_("Settlement step not allowed")


class CostTooEarly(Conflict):
    """The step needs an earlier one first (an accepted referral, an actual cost)."""

    slug = "cost-too-early"
    title = N_("Too early for this cost step")


class CostStepNotYours(Forbidden):
    """Another party takes this cost step (sender estimates, provider invoices, payer pays)."""

    slug = "cost-step-not-yours"
    title = N_("Another party takes this step")


class NoShareOfPayer(UnprocessableContent):
    """The organisation named pays no share of this referral's cost."""

    slug = "no-share-of-payer"
    title = N_("No share of this payer")
    detail = N_(
        "This organisation pays no share of this referral's cost. Read the shares with "
        "GET .../costs and name one of their payer_org_id."
    )


class PathwayNotCovered(UnprocessableContent):
    """A domestic agreement cannot carry this referral (sender and service too far apart)."""

    slug = "pathway-not-covered"
    title = N_("Referral outside the agreement's pathway")


class NotTheRecipient(Forbidden):
    """Only the organisation a referral is addressed to may pass it on."""

    slug = "not-the-recipient"
    title = N_("Only the recipient may pass a referral on")
    detail = N_(
        "Only the provider this referral is addressed to may pass it on. To send the returnee "
        "elsewhere yourself, send a new referral with POST /referrals."
    )


class BeyondOriginalReferral(UnprocessableContent):
    """An onward referral asks for a category the referral received did not carry."""

    slug = "beyond-original-referral"
    title = N_("More than the referral received")
