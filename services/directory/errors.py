"""Errors of the directory domain, each saying what to fix."""

from __future__ import annotations

from shared.errors import Conflict, Forbidden, NotFound, UnprocessableContent
from shared.i18n import N_


class OrganisationNotFound(NotFound):
    """No organisation has this id."""

    slug = "organisation-not-found"
    title = N_("Organisation not found")
    detail = N_("No organisation has this id. Check the id against GET /organisations.")


class ServiceNotFound(NotFound):
    """No service has this id."""

    slug = "service-not-found"
    title = N_("Service not found")
    detail = N_("No service has this id. Find the service with GET /services/search.")


class FocalPointNotFound(NotFound):
    """No focal point has this id."""

    slug = "focal-point-not-found"
    title = N_("Focal point not found")
    detail = N_("No focal point has this id. List them with GET /focal-points?organisation_id=.")


class AgreementNotFound(NotFound):
    """No agreement has this id."""

    slug = "agreement-not-found"
    title = N_("Agreement not found")
    detail = N_("No agreement has this id. List them with GET /agreements.")


class KeyNotFound(NotFound):
    """The organisation has no key with this kid."""

    slug = "key-not-found"
    title = N_("Key not found")
    detail = N_("This organisation has no key with this kid. List them with GET .../keys.")


class NoAgreement(NotFound):
    """No agreement in force covers this sender, provider, category and purpose."""

    slug = "no-agreement"
    title = N_("No agreement in force")


class NoCoordinator(NotFound):
    """No organisation coordinates this area and category."""

    slug = "no-coordinator"
    title = N_("No coordinating organisation")


class NotYourOrganisation(Forbidden):
    """A provider tried to change another organisation's data."""

    slug = "not-your-organisation"
    title = N_("Not your organisation")
    detail = N_(
        "You may change only your own organisation's focal points, keys, webhook and "
        "accepting_referrals; ask the directory steward (admin) for anything else."
    )


class FieldNotEditable(Forbidden):
    """A provider tried to change a field only admins may change."""

    slug = "field-not-editable"
    title = N_("Field reserved to the directory steward")


class DuplicateKid(Conflict):
    """A key with this kid is already registered."""

    slug = "duplicate-kid"
    title = N_("Key id already registered")
    detail = N_("A key with this kid is already registered. Give the new key a different kid.")


class DuplicateId(Conflict):
    """An object with this id already exists."""

    slug = "duplicate-id"
    title = N_("Id already in use")
    detail = N_("An object with this id already exists. Omit 'id' to get a fresh one, or PATCH it.")


class OverlappingAgreement(Conflict):
    """A new agreement version overlaps another version of the same agreement."""

    slug = "overlapping-agreement"
    title = N_("Agreement versions overlap")


class InvalidKey(UnprocessableContent):
    """The JWK is malformed, private, expired or of an unsupported type."""

    slug = "invalid-key"
    title = N_("Key not acceptable")


class InvalidReference(UnprocessableContent):
    """The body names an object that does not exist or does not fit."""

    slug = "invalid-reference"
    title = N_("Reference not acceptable")


class ScheduleNeverOpens(UnprocessableContent):
    """The focal point's schedule has no opening hours."""

    slug = "schedule-never-opens"
    title = N_("Schedule never opens")


class EmergencyCategoriesNotPermitted(UnprocessableContent):
    """The emergency categories are not all among the agreement's permitted categories."""

    slug = "emergency-categories-not-permitted"
    title = N_("Emergency categories outside the agreement")


class ConfirmationByOrganisationOnly(Forbidden):
    """Someone other than the key's organisation tried to confirm a pending key."""

    slug = "confirmation-by-organisation-only"
    title = N_("Only the organisation confirms its keys")
    detail = N_(
        "Only the organisation itself (its provider, coordinator or host_office client) may "
        "confirm a key registered for it; ask the organisation to confirm it."
    )


class KeyNotPending(Conflict):
    """The key is not waiting for confirmation."""

    slug = "key-not-pending"
    title = N_("Key not awaiting confirmation")


class SituationReportNotFound(NotFound):
    """No situation report the caller may see has this id."""

    slug = "situation-report-not-found"
    title = N_("Situation report not found")
    detail = N_(
        "No situation report you may see has this id. Reports are visible to partners in the "
        "report's country and to partners holding an agreement with a provider there; list "
        "them with GET /situation-reports."
    )


class ReportOutsideYourCountry(Forbidden):
    """A partner tried to report on a country other than its own."""

    slug = "report-outside-your-country"
    title = N_("Report on your own country")
    detail = N_(
        "Your organisation may publish situation reports only on the country it is registered "
        "in. Ask a partner there to publish it, or the directory steward (admin)."
    )


class OpportunityNotFound(NotFound):
    """No opportunity has this id."""

    slug = "opportunity-not-found"
    title = N_("Opportunity not found")
    detail = N_("No opportunity has this id. List them with GET /opportunities.")


class CapacityPlanNotFound(NotFound):
    """No capacity-building record the caller may see has this id."""

    slug = "capacity-plan-not-found"
    title = N_("Capacity-building record not found")
    detail = N_(
        "No capacity-building record you may see has this id. List an organisation's records "
        "with GET /organisations/{org_id}/capacity-plans."
    )


class EngagementByStewardOnly(Forbidden):
    """Someone other than an admin tried to change an engagement level."""

    slug = "engagement-by-steward-only"
    title = N_("Engagement level set by the directory steward")
    detail = N_(
        "Only the directory steward (admin) sets an organisation's engagement level. Log the "
        "contact or decision that calls for a change at POST .../contacts and ask the steward."
    )


class PartnerRecordsPrivate(Forbidden):
    """A partner tried to read another organisation's engagement or capacity records."""

    slug = "partner-records-private"
    title = N_("Partnership records of another organisation")
    detail = N_(
        "Only the organisation itself, admins and auditors may read its engagement history, "
        "contact log and capacity-building records."
    )


class ProgrammeNotFound(NotFound):
    """No programme has this code."""

    slug = "programme-not-found"
    title = N_("Programme not found")
    detail = N_("No programme has this code. List the registered programmes with GET /programmes.")


class UnknownProgramme(UnprocessableContent):
    """The body names a programme that is not registered."""

    slug = "unknown-programme"
    title = N_("Programme not registered")


class DuplicateProgramme(Conflict):
    """A programme with this code is already registered."""

    slug = "duplicate-programme"
    title = N_("Programme code already registered")
    detail = N_(
        "A programme with this code is already registered. Choose another code, or change the "
        "existing programme with PATCH /programmes/{code}."
    )


class ProgrammeInUse(Conflict):
    """Agreements still belong to the programme."""

    slug = "programme-in-use"
    title = N_("Programme still has agreements")


class OutsideProgramme(UnprocessableContent):
    """An agreement falls outside its programme's countries or period."""

    slug = "outside-programme"
    title = N_("Agreement outside its programme")


class ProgrammeRequired(UnprocessableContent):
    """Agreements of several programmes apply and the request names none."""

    slug = "programme-required"
    title = N_("Name the programme")


class CostShareNotFound(NotFound):
    """No cost-share rule of this agreement has this id (or the caller may not see it)."""

    slug = "cost-share-not-found"
    title = N_("Cost-share rule not found")
    detail = N_(
        "No cost-share rule with this id is visible to your organisation under this agreement. "
        "List them with GET /agreements/<id>/cost-shares."
    )


class SharesOverAll(UnprocessableContent):
    """The percentages of one service category would add up to more than 100 %."""

    slug = "cost-shares-over-100"
    title = N_("Shares add up to more than 100 %")


class CostShareCurrencyMismatch(UnprocessableContent):
    """The rules of one service category must share one currency."""

    slug = "cost-share-currency-mismatch"
    title = N_("Currency differs from the category's other shares")


class PathwayNotAllowed(UnprocessableContent):
    """The agreement's parties do not fit its pathway (international, national or local)."""

    slug = "pathway-not-allowed"
    title = N_("Parties do not fit the agreement's pathway")


class PathwayNotCovered(UnprocessableContent):
    """A domestic agreement cannot carry this referral: sender and service are too far apart."""

    slug = "pathway-not-covered"
    title = N_("Referral outside the agreement's pathway")
