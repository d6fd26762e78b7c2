"""Typed clients to the directory and consent services."""

from __future__ import annotations

import uuid
from typing import Any

from services.referral.errors import ConsentEndedWhileSending, NoAgreement
from shared.contracts.consent import BasisCheck, BasisStatus
from shared.errors import UnprocessableContent, UpstreamUnavailable
from shared.http import ServiceClient


class DirectoryClient(ServiceClient):
    """What the referral service asks the directory."""

    upstream = "directory"

    async def resolve(
        self, *, sender_org: uuid.UUID, service_id: uuid.UUID, purpose: str, request_id: str | None
    ) -> dict[str, Any]:
        """Return the agreement in force with recipient, keys and focal points, or NoAgreement."""
        response = await self.request(
            "GET",
            "/agreements/resolve",
            request_id=request_id,
            params={
                "sender_org": str(sender_org),
                "service_id": str(service_id),
                "purpose": purpose,
            },
        )
        if response.status_code == 404:
            detail = response.json().get("detail") or "No agreement covers this referral."
            raise NoAgreement(
                f"{detail} Ask the directory admin for an agreement (SOP) between your "
                "organisation and this provider for this service and purpose."
            )
        return _json_or_unavailable(response.status_code, response.json(), self.upstream)

    async def jwks(self, org_id: uuid.UUID) -> dict[str, Any]:
        """Return the organisation's currently valid public encryption keys."""
        response = await self.request("GET", f"/organisations/{org_id}/jwks")
        return _json_or_unavailable(response.status_code, response.json(), self.upstream)

    async def coordinator(
        self, *, country: str, admin_area: str | None, category: str, request_id: str | None
    ) -> dict[str, Any]:
        """Return the organisation coordinating open referrals for this area and category."""
        params = {"country": country, "category": category}
        if admin_area:
            params["admin_area"] = admin_area
        response = await self.request(
            "GET", "/coordinators/resolve", params=params, request_id=request_id
        )
        if response.status_code == 404:
            raise NoAgreement(
                "No organisation coordinates this service category in this area. Refer "
                "directly to a provider's service instead (search the directory)."
            )
        if response.status_code in (400, 422):  # the area itself is wrong, e.g. an unknown country
            raise UnprocessableContent(
                f"The directory does not know the area {country}"
                f"{'/' + admin_area if admin_area else ''}; check the country and admin_area codes."
            )
        return _json_or_unavailable(response.status_code, response.json(), self.upstream)

    async def agreement(
        self, agreement_id: uuid.UUID, *, request_id: str | None
    ) -> dict[str, Any] | None:
        """Return one agreement version, or None when the directory no longer has it."""
        response = await self.request("GET", f"/agreements/{agreement_id}", request_id=request_id)
        if response.status_code == 404:
            return None
        return _json_or_unavailable(response.status_code, response.json(), self.upstream)

    async def organisation(self, org_id: uuid.UUID) -> dict[str, Any]:
        """Return an organisation's directory record."""
        response = await self.request("GET", f"/organisations/{org_id}")
        return _json_or_unavailable(response.status_code, response.json(), self.upstream)

    async def service(self, service_id: uuid.UUID) -> dict[str, Any]:
        """Return a service's directory record, or a 422 problem if there is none."""
        response = await self.request("GET", f"/services/{service_id}")
        if response.status_code == 404:
            raise UnprocessableContent("No service with this id exists in the directory.")
        return _json_or_unavailable(response.status_code, response.json(), self.upstream)

    async def member_ids(self, coordinator_id: uuid.UUID) -> set[str]:
        """Ids of the organisations that name `coordinator_id` as their coordinator."""
        members: set[str] = set()
        params: dict[str, Any] = {"limit": 200}
        while True:
            response = await self.request(
                "GET", f"/organisations/{coordinator_id}/members", params=params
            )
            page = _json_or_unavailable(response.status_code, response.json(), self.upstream)
            members.update(str(item["id"]) for item in page["items"])
            if not page.get("next_cursor"):
                return members
            params["cursor"] = page["next_cursor"]


class ConsentClient(ServiceClient):
    """What the referral service asks and tells the consent service."""

    upstream = "consent"

    async def decide(
        self, decision_in: dict[str, Any], *, request_id: str | None
    ) -> dict[str, Any]:
        """Return which requested categories the returnee's consent (or an override) allows."""
        response = await self.request("POST", "/decisions", json=decision_in, request_id=request_id)
        return _json_or_unavailable(response.status_code, response.json(), self.upstream)

    async def check_basis(self, check: BasisCheck, *, request_id: str | None) -> BasisStatus:
        """Say whether the consents or override a referral rests on are still in force."""
        response = await self.request(
            "POST", "/basis-checks", json=check.model_dump(mode="json"), request_id=request_id
        )
        body = _json_or_unavailable(response.status_code, response.json(), self.upstream)
        return BasisStatus.model_validate(body)

    async def record_disclosure(
        self, disclosure: dict[str, Any], *, request_id: str | None
    ) -> dict[str, Any]:
        """Append the disclosure to the consent ledger (idempotent per referral)."""
        response = await self.request(
            "POST", "/disclosures", json=disclosure, request_id=request_id
        )
        body = response.json()
        if response.status_code == 409 and _problem_slug(body) == BASIS_ENDED:
            raise ConsentEndedWhileSending(reason=body.get("reason"))
        return _json_or_unavailable(response.status_code, body, self.upstream)


BASIS_ENDED = "basis-no-longer-valid"


def _problem_slug(body: Any) -> str | None:
    kind = body.get("type") if isinstance(body, dict) else None
    return kind.rsplit(":", 1)[-1] if isinstance(kind, str) else None


def _json_or_unavailable(status: int, body: Any, upstream: str) -> dict[str, Any]:
    if status not in (200, 201) or not isinstance(body, dict):
        raise UpstreamUnavailable(
            f"The {upstream} service refused a request from the referral service (HTTP {status})."
            " Nothing was changed; contact support if this persists."
        )
    return body
