"""A synchronous client of the refex gateway for partners' systems."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any, cast

import httpx

from refex_client.jose import note_aad, open_jwe, referral_aad, seal, section_aad
from refex_client.models import KeySetRead, NoteRead, ReferralPreview, ReferralRead

TOKEN_MARGIN_S = 30
# CaseFile section name for each data category (the CaseFile JSON Schema's x-data-category).
SECTION_OF = {
    "identity.basic": "identity_basic",
    "identity.documents": "identity_documents",
    "contact": "contact",
    "return.travel": "return_travel",
    "household": "household",
    "vulnerability": "vulnerability",
    "health.physical": "health_physical",
    "health.mental": "health_mental",
    "skills": "skills",
    "needs.assessment": "needs_assessment",
    "plan": "plan",
    "protection": "protection",
}
CATEGORY_OF = {name: category for category, name in SECTION_OF.items()}
# Problems after which a fresh preview may succeed: keys rotated, or the preview expired.
STALE_PREVIEW = ("key-set-changed", "reservation-expired")


class RefexError(RuntimeError):
    """The API answered with a problem; `problem` holds its RFC 9457 body."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")

    @property
    def slug(self) -> str:
        """The last part of the problem type, e.g. `key-set-changed`."""
        return str(self.problem.get("type", "")).rsplit(":", 1)[-1]


def casefile_sections(casefile: Mapping[str, Any]) -> dict[str, Any]:
    """The sections a CaseFile holds, keyed by data category."""
    unknown = set(casefile) - set(CATEGORY_OF) - {"schema_version"}
    if unknown:
        raise ValueError(f"Not CaseFile sections: {', '.join(sorted(unknown))}")
    return {CATEGORY_OF[name]: value for name, value in casefile.items() if name in CATEGORY_OF}


class RefexClient:
    """Talk to refex through its gateway with OAuth 2.0 client credentials."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), transport=transport, timeout=timeout, trust_env=False
        )
        self._credentials = (client_id, client_secret)
        self._token = ""
        self._token_valid_until = 0.0

    def __enter__(self) -> RefexClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # --- transport ----------------------------------------------------------------------------

    def token(self) -> str:
        """A valid access token, fetched again shortly before it expires."""
        if time.monotonic() >= self._token_valid_until:
            response = self._http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=self._credentials
            )
            body = response.json()
            if response.status_code != 200:
                raise RefexError(
                    response.status_code,
                    {"title": body.get("error", ""), "detail": body.get("error_description", "")},
                )
            self._token = body["access_token"]
            self._token_valid_until = time.monotonic() + body["expires_in"] - TOKEN_MARGIN_S
        return self._token

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send an authenticated request to /api/v1/<path>; a problem raises RefexError."""
        response = self._http.request(
            method,
            f"/api/v1/{path.lstrip('/')}",
            json=json_body,
            params=params,
            headers={"Authorization": f"Bearer {self.token()}", **(headers or {})},
        )
        if response.status_code >= 400:
            raise RefexError(response.status_code, response.json() if response.content else {})
        return response.json() if response.content else None

    # --- sending ------------------------------------------------------------------------------

    def preview(
        self,
        *,
        service_id: str,
        subject_ref: str,
        requested_categories: list[str],
        purpose: str = "referral",
        urgency: str = "routine",
    ) -> ReferralPreview:
        """Ask what may be sent, to which keys, under which reserved referral id."""
        body = {
            "service_id": service_id,
            "subject_ref": subject_ref,
            "requested_categories": requested_categories,
            "purpose": purpose,
            "urgency": urgency,
        }
        return cast(ReferralPreview, self.request("POST", "referrals/preview", json_body=body))

    def send_sealed(
        self,
        *,
        casefile: Mapping[str, Any],
        service_id: str,
        subject_ref: str,
        requested_categories: list[str],
        purpose: str = "referral",
        urgency: str = "routine",
        idempotency_key: str | None = None,
        start_after: str | None = None,
    ) -> ReferralRead:
        """Preview, seal the permitted sections here, send; refetch once if the keys changed.

        `start_after` (ISO 8601 with its zone) sends before departure a referral due after
        arrival: its deadlines count from then.
        """
        request: dict[str, Any] = {
            "service_id": service_id,
            "subject_ref": subject_ref,
            "requested_categories": requested_categories,
            "purpose": purpose,
            "urgency": urgency,
        }
        timing = {"start_after": start_after} if start_after else {}
        return self._seal_and_post("referrals/sealed", request, casefile, idempotency_key, timing)

    def pass_on_sealed(
        self,
        referral_id: str,
        *,
        casefile: Mapping[str, Any],
        service_id: str,
        subject_ref: str,
        requested_categories: list[str],
        idempotency_key: str | None = None,
    ) -> ReferralRead:
        """Pass a referral addressed to you on to another provider, sealed here.

        `casefile` is what you opened from the referral received; `subject_ref` is your own
        pseudonym of the returnee, the one your consent naming the new provider was recorded for.
        """
        request: dict[str, Any] = {
            "service_id": service_id,
            "subject_ref": subject_ref,
            "requested_categories": requested_categories,
        }
        path = f"referrals/{referral_id}/onward/sealed"
        return self._seal_and_post(path, request, casefile, idempotency_key, {})

    def _seal_and_post(
        self,
        path: str,
        request: dict[str, Any],
        casefile: Mapping[str, Any],
        idempotency_key: str | None,
        timing: Mapping[str, Any],
    ) -> ReferralRead:
        key = idempotency_key or str(uuid.uuid4())
        for attempt in range(2):
            plan = self.preview(**request)
            body = {**request, **timing, "reservation": plan["reservation"]}
            body["sections"] = seal_sections(plan, casefile)
            try:
                return cast(
                    ReferralRead,
                    self.request("POST", path, json_body=body, headers={"Idempotency-Key": key}),
                )
            except RefexError as error:
                if error.slug not in STALE_PREVIEW or attempt:
                    raise
                key = str(uuid.uuid4())  # a new preview is a new request body
        raise AssertionError("unreachable")

    # --- receiving ----------------------------------------------------------------------------

    def referral(self, referral_id: str) -> ReferralRead:
        """One referral your organisation is a party to."""
        return cast(ReferralRead, self.request("GET", f"referrals/{referral_id}"))

    def inbox(self, **filters: Any) -> list[ReferralRead]:
        """Every referral received by your organisation (all pages), metadata only.

        Read one with `referral(id)` for its payload, or pass `include="payload"` to have
        every item carry it.
        """
        items: list[ReferralRead] = []
        params: dict[str, Any] = {"box": "received", **filters}
        while True:
            page = self.request("GET", "referrals", params=params)
            items.extend(page["items"])
            if not page.get("next_cursor"):
                return items
            params["cursor"] = page["next_cursor"]

    def set_status(self, referral_id: str, status: str, **fields: Any) -> ReferralRead:
        """Move a referral to `status` (with `reason`, `outcome` or `feedback` as needed)."""
        body = {"status": status, **fields}
        return cast(
            ReferralRead, self.request("POST", f"referrals/{referral_id}/status", json_body=body)
        )

    # --- notes --------------------------------------------------------------------------------

    def keys(self, referral_id: str) -> KeySetRead:
        """Both parties' keys valid now: what a sealed note is encrypted to."""
        return cast(KeySetRead, self.request("GET", f"referrals/{referral_id}/keys"))

    def add_note(self, referral_id: str, text: str, *, kind: str = "note") -> NoteRead:
        """Seal a note here to both parties' current keys and store it."""
        keys = self.keys(referral_id)
        sealed = seal(
            text.encode(), [key["jwk"] for key in keys["keys"]], aad=note_aad(referral_id)
        )
        body = {"kind": kind, "sealed": sealed, "key_set_fingerprint": keys["key_set_fingerprint"]}
        return cast(
            NoteRead, self.request("POST", f"referrals/{referral_id}/notes", json_body=body)
        )

    def notes(self, referral_id: str) -> list[NoteRead]:
        """The referral's notes with their bodies (still sealed)."""
        notes = self.request("GET", f"referrals/{referral_id}/notes", params={"include": "payload"})
        return cast(list[NoteRead], notes)

    def webhook_jwks(self) -> dict[str, Any]:
        """The public keys refex signs webhooks with."""
        return cast(dict[str, Any], self.request("GET", "referrals/webhooks/jwks"))


def seal_sections(plan: ReferralPreview, casefile: Mapping[str, Any]) -> dict[str, Any]:
    """Encrypt each permitted section the case file holds, as the preview says; drop the rest."""
    keys = [key["jwk"] for key in plan["keys"]]
    sections = casefile_sections(casefile)
    return {
        category: seal(json.dumps(sections[category]).encode(), keys, aad=plan["aad"][category])
        for category in plan["permitted_categories"]
        if category in sections
    }


def open_referral(referral: Mapping[str, Any], private_jwk: Mapping[str, Any]) -> dict[str, Any]:
    """Decrypt a referral's case file (sealed or server mode) into the CaseFile shape."""
    payload = referral.get("payload")
    if not payload:
        raise ValueError("This referral carries no payload for you (auditor view or withdrawn).")
    referral_id = str(referral["id"])
    if "sections" not in payload:
        casefile: dict[str, Any] = json.loads(
            open_jwe(payload, private_jwk, aad=referral_aad(referral_id))
        )
        return casefile
    assembled: dict[str, Any] = {"schema_version": "1"}
    for category, token in payload["sections"].items():
        plaintext = open_jwe(token, private_jwk, aad=section_aad(referral_id, category))
        assembled[SECTION_OF[category]] = json.loads(plaintext)
    return assembled


def open_note(note: Mapping[str, Any], private_jwk: Mapping[str, Any]) -> str:
    """Decrypt a note's text."""
    return open_jwe(note["body"], private_jwk, aad=note_aad(str(note["referral_id"]))).decode()
