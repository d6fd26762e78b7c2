"""Typed clients to the directory (agreements) and the referral service (withdrawal notices)."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import UpstreamUnavailable
from shared.http import ServiceClient

NO_AGREEMENT_STATUSES = (404, 409, 422)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


DEFAULT_EMERGENCY_CATEGORIES = ["identity.basic", "contact", "health.mental"]


class ResolvedAgreement(_Lenient):
    """The parts of an agreement an emergency override depends on."""

    emergency_override_allowed: bool
    permitted_categories: list[str]
    # An older directory does not send it: the SOP's default emergency set applies.
    emergency_categories: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EMERGENCY_CATEGORIES)
    )


class ResolvedService(_Lenient):
    """The service the override is for."""

    category: str
    organisation_id: str


class AgreementResolution(_Lenient):
    """The directory's answer to 'which agreement covers this sender and service?'."""

    agreement: ResolvedAgreement
    service: ResolvedService


class DirectoryClient(ServiceClient):
    """Reads agreements from the directory service."""

    upstream = "directory"

    async def resolve_agreement(
        self, *, sender_org: str, service_id: uuid.UUID, purpose: str = "referral"
    ) -> AgreementResolution | None:
        """Return the agreement covering this sender and service, or None when there is none."""
        response = await self.request(
            "GET",
            "/agreements/resolve",
            params={"sender_org": sender_org, "service_id": str(service_id), "purpose": purpose},
        )
        if response.status_code in NO_AGREEMENT_STATUSES:
            return None
        if response.status_code != 200:
            raise UpstreamUnavailable(
                "The directory did not answer the agreement query. Nothing was changed; try again."
            )
        try:
            return AgreementResolution.model_validate(response.json())
        except (ValidationError, ValueError):
            raise UpstreamUnavailable(
                "The directory's answer about the agreement could not be read. Nothing was "
                "changed; tell your administrator the directory and consent versions may differ."
            ) from None


class ReferralClient(ServiceClient):
    """Tells the referral service about withdrawn consents."""

    upstream = "referral"

    async def notify_withdrawal(self, payload: dict[str, Any]) -> int:
        """POST a withdrawal event; return the HTTP status (5xx and network errors raise)."""
        response = await self.request("POST", "/internal/consent-withdrawals", json=payload)
        return response.status_code
