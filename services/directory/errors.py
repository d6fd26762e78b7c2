"""Errors of the directory domain, each saying what to fix."""

from __future__ import annotations

from shared.errors import Conflict, Forbidden, NotFound, UnprocessableContent


class OrganisationNotFound(NotFound):
    """No organisation has this id."""

    slug = "organisation-not-found"
    title = "Organisation not found"
    detail = "No organisation has this id. Check the id against GET /organisations."


class ServiceNotFound(NotFound):
    """No service has this id."""

    slug = "service-not-found"
    title = "Service not found"
    detail = "No service has this id. Find the service with GET /services/search."


class FocalPointNotFound(NotFound):
    """No focal point has this id."""

    slug = "focal-point-not-found"
    title = "Focal point not found"
    detail = "No focal point has this id. List them with GET /focal-points?organisation_id=."


class AgreementNotFound(NotFound):
    """No agreement has this id."""

    slug = "agreement-not-found"
    title = "Agreement not found"
    detail = "No agreement has this id. List them with GET /agreements."


class KeyNotFound(NotFound):
    """The organisation has no key with this kid."""

    slug = "key-not-found"
    title = "Key not found"
    detail = "This organisation has no key with this kid. List them with GET .../keys."


class NoAgreement(NotFound):
    """No agreement in force covers this sender, provider, category and purpose."""

    slug = "no-agreement"
    title = "No agreement in force"


class NoCoordinator(NotFound):
    """No organisation coordinates this area and category."""

    slug = "no-coordinator"
    title = "No coordinating organisation"


class NotYourOrganisation(Forbidden):
    """A provider tried to change another organisation's data."""

    slug = "not-your-organisation"
    title = "Not your organisation"
    detail = (
        "You may change only your own organisation's focal points, keys, webhook and "
        "accepting_referrals; ask the directory steward (admin) for anything else."
    )


class FieldNotEditable(Forbidden):
    """A provider tried to change a field only admins may change."""

    slug = "field-not-editable"
    title = "Field reserved to the directory steward"


class DuplicateKid(Conflict):
    """A key with this kid is already registered."""

    slug = "duplicate-kid"
    title = "Key id already registered"
    detail = "A key with this kid is already registered. Give the new key a different kid."


class DuplicateId(Conflict):
    """An object with this id already exists."""

    slug = "duplicate-id"
    title = "Id already in use"
    detail = "An object with this id already exists. Omit 'id' to get a fresh one, or PATCH it."


class OverlappingAgreement(Conflict):
    """A new agreement version overlaps another version of the same agreement."""

    slug = "overlapping-agreement"
    title = "Agreement versions overlap"


class InvalidKey(UnprocessableContent):
    """The JWK is malformed, private, expired or of an unsupported type."""

    slug = "invalid-key"
    title = "Key not acceptable"


class InvalidReference(UnprocessableContent):
    """The body names an object that does not exist or does not fit."""

    slug = "invalid-reference"
    title = "Reference not acceptable"


class ScheduleNeverOpens(UnprocessableContent):
    """The focal point's schedule has no opening hours."""

    slug = "schedule-never-opens"
    title = "Schedule never opens"


class EmergencyCategoriesNotPermitted(UnprocessableContent):
    """The emergency categories are not all among the agreement's permitted categories."""

    slug = "emergency-categories-not-permitted"
    title = "Emergency categories outside the agreement"


class ConfirmationByOrganisationOnly(Forbidden):
    """Someone other than the key's organisation tried to confirm a pending key."""

    slug = "confirmation-by-organisation-only"
    title = "Only the organisation confirms its keys"
    detail = (
        "Only the organisation itself (its provider, coordinator or host_office client) may "
        "confirm a key registered for it; ask the organisation to confirm it."
    )


class KeyNotPending(Conflict):
    """The key is not waiting for confirmation."""

    slug = "key-not-pending"
    title = "Key not awaiting confirmation"
