"""Sealed mode: the sender's system encrypts each section; refex checks the envelopes, never opens.

A preview reserves a referral id and names the key set; its reservation is an HMAC-signed,
short-lived claim bound to the sender, service, subject digest, purpose and both parties' key
fingerprints, so refex keeps no state between preview and send. The id is consumed by the
referral row itself (its primary key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from services.referral.errors import (
    KeySetChanged,
    ReservationExpired,
    ReservationInvalid,
    SealedSectionInvalid,
    SectionNotPermitted,
)
from services.referral.schemas import RecipientKey, ReferralRequest
from services.referral.service import Context, subject_digest
from services.referral.sharing import SharingDecision
from shared.contracts.directory import AgreementParty
from shared.crypto import CryptoError, inspect_jwe, key_set_fingerprint, thumbprint
from shared.i18n import Message
from shared.vocabulary import DataCategory, WithheldReason

JWE_MEMBERS = frozenset({"protected", "recipients", "aad", "iv", "ciphertext", "tag"})
PROTECTED_MEMBERS = frozenset({"enc", "cty"})
CONTENT_TYPES = frozenset({"application/json", "json"})
RECIPIENT_MEMBERS = frozenset({"header", "encrypted_key"})
RECIPIENT_HEADER_MEMBERS = frozenset({"alg", "kid", "epk"})
EPK_MEMBERS = frozenset({"kty", "crv", "x", "y"})


def section_aad(referral_id: uuid.UUID, category: DataCategory | str) -> str:
    """The AAD text binding a sealed section to its referral and its category."""
    return f"refex:referral:{referral_id}:section:{category}"


def note_aad(referral_id: uuid.UUID) -> str:
    """The AAD text binding a note to its referral."""
    return f"refex:note:{referral_id}"


# --- key sets --------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeySet:
    """Every key a sealed JWE must be encrypted to, and who holds each."""

    keys: tuple[RecipientKey, ...]

    @property
    def kids(self) -> frozenset[str]:
        """The key ids of the set."""
        return frozenset(key.kid for key in self.keys)

    def fingerprint(self, party: str | None = None) -> str:
        """Fingerprint of the whole set, or of one party's keys."""
        return key_set_fingerprint([k.jwk for k in self.keys if party in (None, k.party)])

    def kids_of(self, party: str) -> list[str]:
        """Key ids held by `party`."""
        return [k.kid for k in self.keys if k.party == party]


def key_set(recipient: AgreementParty, sender: AgreementParty) -> KeySet:
    """The recipient's and the sender's valid keys; a kid both list counts once (recipient's)."""
    keys: dict[str, RecipientKey] = {}
    for party_name, party in (("recipient", recipient), ("sender", sender)):
        for public in party.keys.keys:
            jwk = public.as_jwk()
            keys.setdefault(
                public.kid,
                RecipientKey(
                    party=party_name,
                    org_id=party.organisation_id,
                    thumbprint=thumbprint(jwk),
                    jwk=jwk,
                ),
            )
    return KeySet(keys=tuple(keys.values()))


# --- reservations ----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _reservation_key(subject_key: bytes) -> bytes:
    # Derived, so the subject-hash key never signs anything but its own digests directly.
    return hmac.new(subject_key, b"refex:sealed-reservation", hashlib.sha256).digest()


@dataclass(frozen=True)
class Reservation:
    """A reserved referral id and what it was issued for."""

    referral_id: uuid.UUID
    claims: dict[str, Any]

    @property
    def expires_at(self) -> datetime:
        """When the reservation stops being accepted."""
        return datetime.fromtimestamp(int(self.claims["exp"]), UTC)


def _claims_for(context: Context, request_in: ReferralRequest) -> dict[str, Any]:
    return {
        "org": context.principal.org_id,
        "svc": str(request_in.service_id),
        "sub": subject_digest(request_in.subject_ref, context.subject_key),
        "pur": str(request_in.purpose),
    }


def issue_reservation(
    context: Context,
    request_in: ReferralRequest,
    *,
    referral_id: uuid.UUID,
    keys: KeySet,
    expires_at: datetime,
) -> tuple[Reservation, str]:
    """Sign a reservation of `referral_id` for this request and key set."""
    claims = {
        "rid": str(referral_id),
        **_claims_for(context, request_in),
        "rfp": keys.fingerprint("recipient"),
        "sfp": keys.fingerprint("sender"),
        "exp": int(expires_at.timestamp()),
    }
    body = _b64(orjson.dumps(claims, option=orjson.OPT_SORT_KEYS))
    signature = hmac.new(_reservation_key(context.subject_key), body.encode(), hashlib.sha256)
    return Reservation(referral_id, claims), f"{body}.{_b64(signature.digest())}"


def read_reservation(
    token: str, context: Context, request_in: ReferralRequest, *, now: datetime
) -> Reservation:
    """Verify a reservation and its binding to this request; refuse a foreign or expired one."""
    body, _, signature = token.partition(".")
    expected = hmac.new(_reservation_key(context.subject_key), body.encode(), hashlib.sha256)
    try:
        valid = hmac.compare_digest(_unb64(signature), expected.digest())
        claims = orjson.loads(_unb64(body)) if valid else None
        reservation = Reservation(uuid.UUID(claims["rid"]), claims) if claims else None
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        reservation = None
    if reservation is None:
        raise ReservationInvalid
    bound = _claims_for(context, request_in)
    if any(reservation.claims.get(name) != value for name, value in bound.items()):
        raise ReservationInvalid
    if reservation.expires_at <= now:
        raise ReservationExpired
    return reservation


def require_same_keys(reservation: Reservation, keys: KeySet) -> None:
    """Refuse when either party's keys changed since the preview, naming the party."""
    changed = [
        party
        for party, claim in (("recipient", "rfp"), ("sender", "sfp"))
        if reservation.claims.get(claim) != keys.fingerprint(party)
    ]
    if changed == ["sender"]:
        raise KeySetChanged(
            Message(
                "Your organisation's encryption keys changed since the preview (a key was "
                "added, rotated or revoked), so these sections are not sealed to the keys now "
                "valid. Fetch the preview again and seal the sections to its keys."
            )
        )
    if changed:
        raise KeySetChanged(
            Message(
                "The provider's encryption keys changed since the preview (it rotated, added "
                "or revoked a key), so these sections are not sealed to the keys now valid. "
                "Fetch the preview again and seal the sections to its keys."
            )
        )


# --- sections --------------------------------------------------------------------------------


def require_permitted(labels: set[DataCategory], sharing: SharingDecision) -> None:
    """Refuse sections labelled with a category that may not be shared; none is stored."""
    refused = sorted(labels - set(sharing.shared))
    if not refused:
        return
    reasons = [
        {"category": str(c), "reason": str(sharing.withheld.get(c, WithheldReason.NOT_REQUESTED))}
        for c in refused
    ]
    raise SectionNotPermitted(
        Message(
            "These sections are labelled with categories that may not be shared: {sections}. "
            "Nothing was stored. Remove them (fetch the preview again to see what is "
            "permitted now), then send.",
            sections=", ".join(f"{r['category']} ({r['reason']})" for r in reasons),
        ),
        sections=reasons,
    )


def check_sealed(jwe: Mapping[str, Any], *, keys: KeySet, aad: str, label: Message) -> None:
    """Refuse a sealed JWE not encrypted to exactly `keys`, not bound to `aad`, or carrying
    clear-text members beyond what decryption needs."""
    try:
        _check_members(jwe)
        shape = inspect_jwe(jwe)
    except CryptoError as error:
        raise SealedSectionInvalid(
            Message("{label}: {problem}", label=label, problem=error.detail)
        ) from None
    missing, unexpected = keys.kids - set(shape.kids), set(shape.kids) - keys.kids
    if missing or unexpected:
        raise SealedSectionInvalid(
            Message(
                "{label} is not encrypted to exactly the current keys (missing: {missing}; "
                "not valid now: {unexpected}). Fetch the preview (or the referral's keys) "
                "again and encrypt to every key it lists, and only to those.",
                label=label,
                missing=", ".join(sorted(missing)) or "-",
                unexpected=", ".join(sorted(unexpected)) or "-",
            )
        )
    if shape.aad != aad.encode():
        raise SealedSectionInvalid(
            Message(
                "{label} is not bound to this referral: its 'aad' must be the UTF-8 text "
                "'{aad}'. Seal it again with that AAD.",
                label=label,
                aad=aad,
            )
        )


def _check_members(jwe: Mapping[str, Any]) -> None:
    """Allow only the members decryption needs, so nothing readable rides along in the clear."""
    if not isinstance(jwe, Mapping) or set(jwe) - JWE_MEMBERS:
        raise SealedSectionInvalid(
            Message("Only these JWE members are accepted: {members}.", members=_names(JWE_MEMBERS))
        )
    protected = _protected(jwe.get("protected"))
    if set(protected) - PROTECTED_MEMBERS or protected.get("cty", "json") not in CONTENT_TYPES:
        raise SealedSectionInvalid(
            Message(
                "The protected header may hold only 'enc' and 'cty' (application/json).",
            )
        )
    for entry in jwe.get("recipients") or []:
        header = entry.get("header") if isinstance(entry, Mapping) else None
        epk = header.get("epk") if isinstance(header, Mapping) else None
        if (
            not isinstance(header, Mapping)
            or set(entry) - RECIPIENT_MEMBERS
            or set(header) - RECIPIENT_HEADER_MEMBERS
            or not isinstance(epk, Mapping)
            or set(epk) - EPK_MEMBERS
        ):
            raise SealedSectionInvalid(
                Message(
                    "Each recipient entry may hold only 'encrypted_key' and a header with "
                    "'alg', 'kid' and 'epk' (kty, crv, x, y)."
                )
            )


def _protected(value: object) -> dict[str, Any]:
    try:
        decoded = orjson.loads(_unb64(value)) if isinstance(value, str) else None
    except (ValueError, orjson.JSONDecodeError):
        decoded = None
    if not isinstance(decoded, dict):
        raise SealedSectionInvalid(Message("The JWE's protected header is not a JSON object."))
    return decoded


def _names(members: frozenset[str]) -> str:
    return ", ".join(sorted(members))
