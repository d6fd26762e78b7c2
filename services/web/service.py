"""The workspace's rules: what a page shows and which API calls an action makes."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.web.errors import NotForYourRole
from services.web.gateway import ApiAnswer, Gateway
from services.web.schemas import (
    AssignForm,
    ConsentForm,
    FollowedView,
    InboxFilter,
    MemberView,
    OpenReferralView,
    PublicKeyIn,
    ReferralRequestIn,
    ReferralView,
    SealedNoteIn,
    SealedReferralIn,
    ServiceChoice,
    StatusForm,
)
from services.web.sessions import Person, Session
from shared.i18n import N_
from shared.vocabulary import Role

FOLLOWED_MAX = 400  # oldest first from the API; beyond this the page says it is cut short
INBOX_MAX = 400  # newest-first needs the whole filtered inbox; beyond this, narrow the filter
PAGE_LIMIT = 200
ZONE_TTL_S = 600.0

STATUS_LABELS = {
    "requested": N_("New"),
    "received": N_("Acknowledged"),
    "accepted": N_("Accepted"),
    "in-progress": N_("In progress"),
    "on-hold": N_("On hold"),
    "completed": N_("Completed"),
    "rejected": N_("Rejected"),
    "cancelled": N_("Cancelled"),
    "failed": N_("Failed"),
    "entered-in-error": N_("Entered in error"),
}
OPEN_STATUS_LABELS = {
    "open": N_("Waiting for a provider"),
    "assigned": N_("Assigned, case file not sent yet"),
    "submitted": N_("Case file sent"),
    "cancelled": N_("Cancelled"),
}
MOVE_LABELS = {
    "received": N_("Acknowledge"),
    "accepted": N_("Accept"),
    "rejected": N_("Reject"),
    "in-progress": N_("Start"),
    "on-hold": N_("Put on hold"),
    "completed": N_("Complete"),
    "failed": N_("Mark as failed"),
    "cancelled": N_("Cancel"),
}


@dataclass(frozen=True)
class Inbox:
    """The referrals one page of the inbox shows, newest first."""

    items: list[ReferralView]
    zones: dict[str, str]  # service id -> its focal point's time zone
    truncated: bool


def require_role(person: Person, role: Role) -> None:
    """Refuse a page meant for another role."""
    if role not in person.roles:
        raise NotForYourRole()


class ZoneCache:
    """Time zones of services' focal points (public directory data), kept a few minutes."""

    def __init__(self) -> None:
        self._zones: dict[str, tuple[float, str]] = {}

    async def zone_of(self, *, gateway: Gateway, session: Session, service_id: str) -> str:
        """The focal point's time zone of a service, or UTC when the directory has none."""
        cached = self._zones.get(service_id)
        if cached and time.monotonic() - cached[0] < ZONE_TTL_S:
            return cached[1]
        answer = await gateway.call(session, "GET", f"directory/services/{service_id}/availability")
        zone = "UTC"
        if answer.ok and isinstance(answer.body, dict):
            zone = str(answer.body.get("timezone") or "UTC")
        self._zones[service_id] = (time.monotonic(), zone)
        return zone


def in_zone(moment: datetime | None, zone: str) -> str:
    """A deadline as the focal point reads it: local date, time and zone name."""
    if moment is None:
        return ""
    try:
        local = moment.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        local, zone = moment, "UTC"
    return f"{local:%Y-%m-%d %H:%M} ({zone})"


async def inbox(
    *,
    gateway: Gateway,
    session: Session,
    zones: ZoneCache,
    filters: InboxFilter,
    box: Literal["received", "sent"] = "received",
) -> Inbox:
    """The organisation's received (or sent) referrals matching the filters, newest first."""
    items: list[ReferralView] = []
    params: dict[str, str] = {**filters.api_params(box), "limit": str(PAGE_LIMIT)}
    cursor: str | None = None
    while True:
        answer = await gateway.call(
            session, "GET", "referrals", params={**params, **({"cursor": cursor} if cursor else {})}
        )
        if not answer.ok or not isinstance(answer.body, dict):
            break
        items += [ReferralView.model_validate(item) for item in answer.body["items"]]
        cursor = answer.body.get("next_cursor")
        if not cursor or len(items) >= INBOX_MAX:
            break
    items.sort(key=lambda item: item.created_at, reverse=True)
    shown = items[:INBOX_MAX]
    found = {
        service_id: await zones.zone_of(gateway=gateway, session=session, service_id=service_id)
        for service_id in {item.service_id for item in shown}
    }
    return Inbox(items=shown, zones=found, truncated=bool(cursor) or len(items) > INBOX_MAX)


async def referral(*, gateway: Gateway, session: Session, referral_id: uuid.UUID) -> ApiAnswer:
    """One referral with its encrypted payload (the API answers 404 to anyone not a party)."""
    return await gateway.call(session, "GET", f"referrals/{referral_id}")


async def notes(*, gateway: Gateway, session: Session, referral_id: uuid.UUID) -> ApiAnswer:
    """The referral's notes with their JWEs, oldest first (the browser opens them)."""
    return await gateway.call(
        session, "GET", f"referrals/{referral_id}/notes", params={"include": "payload"}
    )


async def note_keys(*, gateway: Gateway, session: Session, referral_id: uuid.UUID) -> ApiAnswer:
    """Both parties' keys valid now and their fingerprint: what a note is sealed to."""
    return await gateway.call(session, "GET", f"referrals/{referral_id}/keys")


async def add_note(
    *, gateway: Gateway, session: Session, referral_id: uuid.UUID, note_in: SealedNoteIn
) -> ApiAnswer:
    """Pass on a note the browser sealed; the referral API checks the keys and the basis."""
    return await gateway.call(
        session,
        "POST",
        f"referrals/{referral_id}/notes",
        json={"kind": "note", **note_in.model_dump(mode="json")},
    )


async def change_status(
    *, gateway: Gateway, session: Session, referral_id: uuid.UUID, form: StatusForm
) -> ApiAnswer:
    """Ask the referral API to move the referral; its answer says whether it may."""
    return await gateway.call(
        session, "POST", f"referrals/{referral_id}/status", json=form.api_body()
    )


async def register_key(*, gateway: Gateway, session: Session, jwk: PublicKeyIn) -> ApiAnswer:
    """Register a public key the browser generated for the person's organisation."""
    assert session.person is not None
    return await gateway.call(
        session,
        "POST",
        f"directory/organisations/{session.person.org_id}/keys",
        json={"jwk": jwk.model_dump(exclude_none=True)},
    )


async def services_to_refer_to(*, gateway: Gateway, session: Session) -> list[dict[str, Any]]:
    """Services accepting referrals, for the return office's choice (first page of the search)."""
    answer = await gateway.call(
        session, "GET", "directory/services/search", params={"limit": str(PAGE_LIMIT)}
    )
    if not answer.ok or not isinstance(answer.body, dict):
        return []
    return [item for item in answer.body.get("items", []) if item.get("accepting_referrals")]


async def record_consent(*, gateway: Gateway, session: Session, form: ConsentForm) -> ApiAnswer:
    """Record the returnee's consent at the consent service."""
    return await gateway.call(session, "POST", "consents", json=form.api_body())


async def preview(
    *, gateway: Gateway, session: Session, request_in: ReferralRequestIn
) -> ApiAnswer:
    """What would be shared and withheld, and the keys to seal to (nothing is stored)."""
    return await gateway.call(
        session, "POST", "referrals/preview", json=request_in.model_dump(mode="json")
    )


async def send_sealed(
    *, gateway: Gateway, session: Session, sealed_in: SealedReferralIn, idempotency_key: str
) -> ApiAnswer:
    """Send the sections the browser sealed; the key makes a repeated click send once."""
    return await gateway.call(
        session,
        "POST",
        "referrals/sealed",
        json=sealed_in.model_dump(mode="json"),
        headers={"Idempotency-Key": idempotency_key},
    )


async def organisation_keys(*, gateway: Gateway, session: Session) -> ApiAnswer:
    """The organisation's registered keys (public parts and status)."""
    assert session.person is not None
    return await gateway.call(
        session, "GET", f"directory/organisations/{session.person.org_id}/keys"
    )


@dataclass(frozen=True)
class CoordinatorDesk:
    """What the coordinator's page shows: metadata only, never a case file."""

    queue: list[OpenReferralView]  # routed to this organisation, waiting for a provider
    choices: dict[str, list[ServiceChoice]]  # open referral id -> member services that fit
    members: list[MemberView]
    followed: list[FollowedView]  # what it assigned, with the referral's status and deadlines
    followed_truncated: bool
    zones: dict[str, str]  # open referral id -> the assigned service's focal point's time zone
    names: dict[str, str]  # organisation id -> name in the reader's language
    incomplete: bool  # a part could not be read from the API just now


async def _pages(
    gateway: Gateway, session: Session, path: str, *, limit: int
) -> tuple[list[dict[str, Any]], bool, bool]:
    """Follow a cursor-paginated list: its items, whether more remain, whether a call failed."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": str(PAGE_LIMIT), **({"cursor": cursor} if cursor else {})}
        answer = await gateway.call(session, "GET", path, params=params)
        if not answer.ok or not isinstance(answer.body, dict):
            return items, False, True
        items += list(answer.body.get("items", []))
        cursor = answer.body.get("next_cursor")
        if not cursor or len(items) >= limit:
            return items[:limit], bool(cursor) or len(items) > limit, False


async def _member_services(
    gateway: Gateway, session: Session, *, category: str, country: str, allowed: set[str]
) -> tuple[list[ServiceChoice], bool]:
    """Services of the category in the country whose organisation is a member (or ourselves)."""
    answer = await gateway.call(
        session,
        "GET",
        "directory/services/search",
        params={"category": category, "country": country, "limit": str(PAGE_LIMIT)},
    )
    if not answer.ok or not isinstance(answer.body, dict):
        return [], True
    found = [ServiceChoice.model_validate(item) for item in answer.body.get("items", [])]
    return [item for item in found if item.organisation_id in allowed], False


async def coordinator_desk(
    *, gateway: Gateway, session: Session, zones: ZoneCache, language: str
) -> CoordinatorDesk:
    """The queue routed to the person's organisation, its members and what it assigned."""
    assert session.person is not None
    own = session.person.org_id
    answer = await gateway.call(session, "GET", "referrals/open")
    incomplete = not answer.ok or not isinstance(answer.body, list)
    listed = answer.body if isinstance(answer.body, list) else []
    routed = [
        view
        for view in (OpenReferralView.model_validate(item) for item in listed)
        if view.coordinator_org_id == own
    ]
    queue = [view for view in routed if view.status == "open"]
    raw_members, _, failed = await _pages(
        gateway, session, f"directory/organisations/{own}/members", limit=INBOX_MAX
    )
    incomplete |= failed
    members = [MemberView.model_validate(item) for item in raw_members]
    allowed = {member.id for member in members} | {own}
    choices: dict[str, list[ServiceChoice]] = {}
    searched: dict[tuple[str, str], list[ServiceChoice]] = {}
    for view in queue:
        wanted = (view.service_category, view.country)
        if wanted not in searched:
            searched[wanted], failed = await _member_services(
                gateway, session, category=wanted[0], country=wanted[1], allowed=allowed
            )
            incomplete |= failed
        choices[view.id] = searched[wanted]
    raw_followed, truncated, failed = await _pages(
        gateway, session, "referrals/open/followed", limit=FOLLOWED_MAX
    )
    incomplete |= failed
    followed = [FollowedView.model_validate(item) for item in raw_followed]
    assigned = {view.id: view.assigned_service_id for view in routed if view.assigned_service_id}
    followed_zones = {
        item.open_referral_id: await zones.zone_of(
            gateway=gateway, session=session, service_id=assigned[item.open_referral_id]
        )
        for item in followed
        if item.open_referral_id in assigned
    }
    return CoordinatorDesk(
        queue=queue,
        choices=choices,
        members=members,
        followed=followed,
        followed_truncated=truncated,
        zones=followed_zones,
        names={member.id: member.display_name(language) for member in members},
        incomplete=incomplete,
    )


async def assign_open_referral(
    *, gateway: Gateway, session: Session, open_id: uuid.UUID, form: AssignForm
) -> ApiAnswer:
    """Ask the referral API to assign the member's service; its answer says whether it may."""
    return await gateway.call(
        session,
        "POST",
        f"referrals/open/{open_id}/assign",
        json={"service_id": str(form.service_id)},
    )
