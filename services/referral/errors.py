"""Problems the referral service answers with; none ever carries personal data."""

from __future__ import annotations

from shared.errors import (
    Conflict,
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
