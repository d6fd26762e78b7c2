"""Typed clients to the directory (agreements) and the referral service (withdrawal notices)."""

from __future__ import annotations

import uuid

from shared.contracts import UnreadableAnswer, read_answer
from shared.contracts.consent import WithdrawalNotice
from shared.contracts.directory import Resolution
from shared.errors import UpstreamUnavailable
from shared.http import ServiceClient
from shared.i18n import N_

NO_AGREEMENT_STATUSES = (404, 409, 422)


class DirectoryClient(ServiceClient):
    """Reads agreements from the directory service."""

    upstream = "directory"

    async def resolve_agreement(
        self, *, sender_org: str, service_id: uuid.UUID, purpose: str = "referral"
    ) -> Resolution | None:
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
                N_(
                    "The directory did not answer the agreement query. Nothing was changed; "
                    "try again."
                )
            )
        try:
            return read_answer(Resolution, response.json())
        except (UnreadableAnswer, ValueError):
            raise UpstreamUnavailable(
                N_(
                    "The directory's answer about the agreement could not be read. Nothing was "
                    "changed; tell your administrator the directory and consent versions may "
                    "differ."
                )
            ) from None


class ReferralClient(ServiceClient):
    """Tells the referral service about withdrawn consents."""

    upstream = "referral"

    async def notify_withdrawal(self, notice: WithdrawalNotice) -> int:
        """POST a withdrawal notice; return the HTTP status (5xx and network errors raise)."""
        response = await self.request(
            "POST", "/internal/consent-withdrawals", json=notice.model_dump(mode="json")
        )
        return response.status_code
