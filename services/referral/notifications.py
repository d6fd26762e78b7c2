"""Partner notifications: queue them with the change, sign and POST them from the outbox."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.models import OutboxEvent, Referral
from shared.ids import new_id
from shared.webhooks import SIGNATURE_HEADER, sign_body

RECIPIENT = "recipient"  # the value of service.Party.RECIPIENT; any other party is the sender
# A partner acknowledges with a status; anything longer than this is not a webhook answer.
MAX_ANSWER_BYTES = 64 * 1024


def enqueue(session: AsyncSession, referral: Referral, event: str, *, to: Iterable[str]) -> None:
    """Queue a notification for each party in the same transaction as the change."""
    for party in to:
        is_recipient = party == RECIPIENT
        session.add(
            OutboxEvent(
                id=new_id(),
                referral_id=referral.id,
                target_org_id=referral.recipient_org_id if is_recipient else referral.sender_org_id,
                webhook_url=referral.recipient_webhook_url
                if is_recipient
                else referral.sender_webhook_url,
                event=event,
                status=referral.status,
                occurred_at=referral.updated_at,
                attempts=0,
                next_attempt_at=referral.updated_at,
            )
        )


def webhook_body(event: OutboxEvent) -> bytes:
    """The notification a partner receives: ids and status only, never personal data."""
    return orjson.dumps(
        {
            "event_id": str(event.id),
            "event": event.event,
            "referral_id": str(event.referral_id),
            "status": event.status,
            "occurred_at": event.occurred_at.isoformat(),
        }
    )


def webhook_client(transport: httpx.AsyncBaseTransport, timeout_s: float) -> httpx.AsyncClient:
    """The HTTP client for partner webhooks: no redirects, no proxies from the environment."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
    )


class WebhookSender:
    """Deliver one outbox event to its partner's webhook, signed; say why when it fails."""

    def __init__(self, http: httpx.AsyncClient, signing_key: dict[str, Any]) -> None:
        self._http = http
        self._signing_key = signing_key

    async def __call__(self, event: OutboxEvent) -> str | None:
        """POST the event; None when the partner took it (or has no webhook and polls)."""
        if not event.webhook_url:
            return None
        body = webhook_body(event)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign_body(body, self._signing_key),
            "X-Refex-Event-Id": str(event.id),
        }
        async with self._http.stream(
            "POST", event.webhook_url, content=body, headers=headers
        ) as response:
            if not 200 <= response.status_code < 300:
                return f"HTTP {response.status_code}"  # a 3xx too: redirects are not followed
            return await _answer_too_large(response)


async def _answer_too_large(response: httpx.Response) -> str | None:
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > MAX_ANSWER_BYTES:
            return "answer too large"
    return None
