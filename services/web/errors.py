"""The workspace's own errors; pages show them as HTML, the browser's fetches get problem+json."""

from __future__ import annotations

from shared.errors import ServiceError
from shared.i18n import N_


class CsrfRejected(ServiceError):
    """A form or request came without this session's CSRF token."""

    status = 403
    title = N_("Form expired")
    slug = "csrf-rejected"
    detail = N_(
        "This form is out of date or was not sent from the workspace. "
        "Reload the page and try again."
    )


class SignedOut(ServiceError):
    """The session is missing, expired or was signed out."""

    status = 401
    title = N_("Signed out")
    slug = "signed-out"
    detail = N_("Your session has ended. Sign in again to continue.")


class SignInFailed(ServiceError):
    """The gateway's answer to a sign-in could not be used."""

    status = 400
    title = N_("Sign-in did not complete")
    slug = "sign-in-failed"
    detail = N_(
        "The sign-in could not be completed or took too long. Start again from the sign-in button."
    )


class NotForYourRole(ServiceError):
    """The page is for a role the signed-in person does not have."""

    status = 403
    title = N_("Not for your role")
    slug = "not-for-your-role"
    detail = N_("This page is for another role. Ask your administrator if you need it.")


class ApiUnavailable(ServiceError):
    """The gateway could not be reached or answered with a server error."""

    status = 502
    title = N_("Service unavailable")
    slug = "api-unavailable"
    detail = N_("The exchange could not be reached just now. Wait a moment and try again.")


class KeyRefused(ServiceError):
    """The browser sent something other than a public encryption key to register."""

    status = 422
    title = N_("Key refused")
    slug = "public-key-refused"
    detail = N_("Only a public P-256 or X25519 encryption key can be registered.")


class ReferralIncomplete(ServiceError):
    """The referral's request part is missing a service, a returnee or categories."""

    status = 422
    title = N_("Referral incomplete")
    slug = "referral-incomplete"
    detail = N_("Choose a service and at least one category.")


class NotSealed(ServiceError):
    """The referral the browser sent is not a sealed one the workspace can pass on."""

    status = 422
    title = N_("Referral not sealed")
    slug = "referral-not-sealed"
    detail = N_("The referral could not be sealed; reload the page.")


class NoteNotSealed(ServiceError):
    """The note the browser sent is not a sealed JWE the workspace can pass on."""

    status = 422
    title = N_("Note not sealed")
    slug = "note-not-sealed"
    detail = N_(
        "The note could not be encrypted in your browser, so nothing was sent. "
        "Reload the page and write it again."
    )
