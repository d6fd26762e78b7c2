"""refex-client: the partner SDK of Referral Exchange. Private keys never leave your machine."""

from refex_client.client import (
    RefexClient,
    RefexError,
    casefile_sections,
    open_note,
    open_referral,
    seal_sections,
)
from refex_client.jose import SealingError, note_aad, open_jwe, seal, section_aad, thumbprint
from refex_client.webhooks import SIGNATURE_HEADER, WebhookSignatureError, verify_webhook

__all__ = [
    "SIGNATURE_HEADER",
    "RefexClient",
    "RefexError",
    "SealingError",
    "WebhookSignatureError",
    "casefile_sections",
    "note_aad",
    "open_jwe",
    "open_note",
    "open_referral",
    "seal",
    "seal_sections",
    "section_aad",
    "thumbprint",
    "verify_webhook",
]
