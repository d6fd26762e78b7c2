"""Typed clients to the directory and consent services: contract models in, contract models out."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from services.referral.errors import (
    ConsentEndedWhileSending,
    NoAgreement,
    PathwayNotCovered,
    ProgrammeRequired,
)
from shared.contracts import ProblemAnswer, UnreadableAnswer, read_answer
from shared.contracts.consent import (
    BasisCheck,
    BasisStatus,
    Decision,
    DecisionRequest,
    DisclosureCreate,
    DisclosureRecorded,
)
from shared.contracts.directory import (
    AgreementRead,
    Jwks,
    OrganisationRead,
    Resolution,
    ServiceRead,
)
from shared.errors import UnprocessableContent, UpstreamUnavailable
from shared.http import ServiceClient
from shared.i18n import N_, Message
from shared.pagination import Page

Answer = TypeVar("Answer", bound=BaseModel)
BASIS_ENDED = "basis-no-longer-valid"
PROGRAMME_REQUIRED = "programme-required"
PATHWAY_NOT_COVERED = "pathway-not-covered"


class DirectoryClient(ServiceClient):
    """What the referral service asks the directory."""

    upstream = "directory"

    async def resolve(
        self,
        *,
        sender_org: uuid.UUID,
        service_id: uuid.UUID,
        purpose: str,
        programme: str | None = None,
        request_id: str | None,
    ) -> Resolution:
        """Return the agreement in force with recipient, keys and focal points, or NoAgreement."""
        params = {"sender_org": str(sender_org), "service_id": str(service_id), "purpose": purpose}
        if programme is not None:
            params["programme"] = programme
        response = await self.request(
            "GET", "/agreements/resolve", request_id=request_id, params=params
        )
        problem = _problem(response)
        if response.status_code == 422 and problem.slug == PROGRAMME_REQUIRED:
            raise ProgrammeRequired(
                problem.detail or N_("Name the programme of this referral."),
                programmes=problem.programmes,
            )
        if response.status_code == 422 and problem.slug == PATHWAY_NOT_COVERED:
            raise PathwayNotCovered(
                problem.detail
                or N_("The agreement covers referrals within one country or area only.")
            )
        if response.status_code == 404:
            detail = _problem(response).detail or Message("No agreement covers this referral.")
            raise NoAgreement(
                Message(
                    "{detail} Ask the directory admin for an agreement (SOP) between your "
                    "organisation and this provider for this service and purpose; a partner in "
                    "the country of origin needs a national or local agreement that names it as "
                    "the sender.",
                    detail=detail,
                )
            )
        return _answer(Resolution, response, self.upstream)

    async def jwks(self, org_id: uuid.UUID) -> Jwks:
        """Return the organisation's currently valid public encryption keys."""
        response = await self.request("GET", f"/organisations/{org_id}/jwks")
        return _answer(Jwks, response, self.upstream)

    async def coordinator(
        self, *, country: str, admin_area: str | None, category: str, request_id: str | None
    ) -> OrganisationRead:
        """Return the organisation coordinating open referrals for this area and category."""
        params = {"country": country, "category": category}
        if admin_area:
            params["admin_area"] = admin_area
        response = await self.request(
            "GET", "/coordinators/resolve", params=params, request_id=request_id
        )
        if response.status_code == 404:
            raise NoAgreement(
                N_(
                    "No organisation coordinates this service category in this area. Refer "
                    "directly to a provider's service instead (search the directory)."
                )
            )
        if response.status_code in (400, 422):  # the area itself is wrong, e.g. an unknown country
            raise UnprocessableContent(
                Message(
                    "The directory does not know the area {area}; check the "
                    "country and admin_area codes.",
                    area=country + ("/" + admin_area if admin_area else ""),
                )
            )
        return _answer(OrganisationRead, response, self.upstream)

    async def agreement(
        self, agreement_id: uuid.UUID, *, request_id: str | None
    ) -> AgreementRead | None:
        """Return one agreement version, or None when the directory no longer has it."""
        response = await self.request("GET", f"/agreements/{agreement_id}", request_id=request_id)
        if response.status_code == 404:
            return None
        return _answer(AgreementRead, response, self.upstream)

    async def organisation(self, org_id: uuid.UUID) -> OrganisationRead:
        """Return an organisation's directory record."""
        response = await self.request("GET", f"/organisations/{org_id}")
        return _answer(OrganisationRead, response, self.upstream)

    async def service(self, service_id: uuid.UUID) -> ServiceRead:
        """Return a service's directory record, or a 422 problem if there is none."""
        response = await self.request("GET", f"/services/{service_id}")
        if response.status_code == 404:
            raise UnprocessableContent(N_("No service with this id exists in the directory."))
        return _answer(ServiceRead, response, self.upstream)

    async def member_ids(self, coordinator_id: uuid.UUID) -> set[uuid.UUID]:
        """Ids of the organisations that name `coordinator_id` as their coordinator."""
        members: set[uuid.UUID] = set()
        params: dict[str, str | int] = {"limit": 200}
        while True:
            response = await self.request(
                "GET", f"/organisations/{coordinator_id}/members", params=params
            )
            page = _answer(Page[OrganisationRead], response, self.upstream)
            members.update(item.id for item in page.items)
            if not page.next_cursor:
                return members
            params["cursor"] = page.next_cursor


class ConsentClient(ServiceClient):
    """What the referral service asks and tells the consent service."""

    upstream = "consent"

    async def decide(self, decision_in: DecisionRequest, *, request_id: str | None) -> Decision:
        """Return which requested categories the returnee's consent (or an override) allows."""
        response = await self.request(
            "POST", "/decisions", json=decision_in.model_dump(mode="json"), request_id=request_id
        )
        return _answer(Decision, response, self.upstream)

    async def check_basis(self, check: BasisCheck, *, request_id: str | None) -> BasisStatus:
        """Say whether the consents or override a referral rests on are still in force."""
        response = await self.request(
            "POST", "/basis-checks", json=check.model_dump(mode="json"), request_id=request_id
        )
        return _answer(BasisStatus, response, self.upstream)

    async def record_disclosure(
        self, disclosure: DisclosureCreate, *, request_id: str | None
    ) -> DisclosureRecorded:
        """Append the disclosure to the consent ledger (idempotent per referral)."""
        response = await self.request(
            "POST", "/disclosures", json=disclosure.model_dump(mode="json"), request_id=request_id
        )
        if response.status_code == 409:
            problem = _problem(response)
            if problem.slug == BASIS_ENDED:
                raise ConsentEndedWhileSending(reason=problem.reason)
        return _answer(DisclosureRecorded, response, self.upstream)


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _problem(response: httpx.Response) -> ProblemAnswer:
    body = _body(response)
    return ProblemAnswer.model_validate(body) if isinstance(body, dict) else ProblemAnswer()


def _answer(model: type[Answer], response: httpx.Response, upstream: str) -> Answer:
    """The answer read through its contract; any other status or shape is UpstreamUnavailable."""
    if response.status_code in (200, 201):
        try:
            return read_answer(model, _body(response))
        except UnreadableAnswer:
            pass
    raise UpstreamUnavailable(
        Message(
            "The {upstream} service refused a request from the referral service "
            "(HTTP {status_code}). Nothing was changed; contact support if this "
            "persists.",
            upstream=upstream,
            status_code=response.status_code,
        )
    )
