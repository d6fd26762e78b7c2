"""A small Python client for partners: get a token, send and follow referrals, decrypt locally.

Private keys stay with the partner: decryption happens here, on the partner's machine.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson

from shared.casefile import CASEFILE_VERSION, SECTION_OF
from shared.crypto import decrypt_with
from shared.i18n import current_language
from shared.vocabulary import DataCategory

TOKEN_MARGIN_S = 30


class RefexError(RuntimeError):
    """The API answered with a problem; `problem` holds its RFC 9457 body."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")


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
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=timeout,
            trust_env=False,
            # Problems, warnings and explanations come back in the language the user reads.
            headers={"Accept-Language": current_language()},
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

    def token(self) -> str:
        """Return a valid access token, fetching a new one shortly before expiry."""
        if time.monotonic() >= self._token_valid_until:
            response = self._http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=self._credentials
            )
            if response.status_code != 200:
                raise RefexError(
                    response.status_code,
                    {
                        "title": response.json().get("error", "token refused"),
                        "detail": response.json().get("error_description", ""),
                    },
                )
            body = response.json()
            self._token = body["access_token"]
            self._token_valid_until = time.monotonic() + body["expires_in"] - TOKEN_MARGIN_S
        return self._token

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send an authenticated request to /api/v1/<path>; problems raise RefexError."""
        response = self._http.request(
            method,
            f"/api/v1/{path.lstrip('/')}",
            json=json,
            params=params,
            headers={"Authorization": f"Bearer {self.token()}", **(headers or {})},
        )
        if response.status_code >= 400:
            problem = response.json() if response.content else {}
            raise RefexError(response.status_code, problem)
        return response

    def get(self, path: str, **params: Any) -> Any:
        """GET a JSON resource."""
        return self.request("GET", path, params=params or None).json()

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        """POST JSON and return the JSON answer."""
        return self.request("POST", path, json=body, headers=headers).json()

    def inbox(self, **filters: Any) -> list[dict[str, Any]]:
        """Every referral received by the caller's organisation (all pages), metadata only.

        Read one referral (`get(f"referrals/{id}")`) for its payload, or pass
        `include="payload"` to have every item carry it.
        """
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"box": "received", **filters}
        while True:
            page = self.get("referrals", **params)
            items.extend(page["items"])
            if not page.get("next_cursor"):
                return items
            params["cursor"] = page["next_cursor"]

    def notes(self, referral_id: str) -> list[dict[str, Any]]:
        """A referral's notes with their JWE bodies, to open with `open_note`."""
        notes: list[dict[str, Any]] = self.get(f"referrals/{referral_id}/notes", include="payload")
        return notes

    def set_status(self, referral_id: str, status: str, **fields: Any) -> dict[str, Any]:
        """Move a referral to `status` (with reason, outcome or feedback as needed)."""
        result: dict[str, Any] = self.post(
            f"referrals/{referral_id}/status", {"status": status, **fields}
        )
        return result


def open_payload(referral: dict[str, Any], private_jwk: dict[str, Any]) -> dict[str, Any]:
    """Decrypt a referral's case file with the caller's private key (bound to that referral).

    Sealed referrals hold one JWE per section; they are opened one by one and put together
    into the same CaseFile shape a server-mode referral decrypts to.
    """
    payload, aad = referral["payload"], f"refex:referral:{referral['id']}"
    if "sections" not in payload:
        casefile: dict[str, Any] = orjson.loads(
            decrypt_with(payload, private_jwk, aad=aad.encode())
        )
        return casefile
    assembled: dict[str, Any] = {"schema_version": CASEFILE_VERSION}
    for category, jwe in payload["sections"].items():
        section_aad = f"{aad}:section:{category}".encode()
        section_name = SECTION_OF[DataCategory(category)]
        assembled[section_name] = orjson.loads(decrypt_with(jwe, private_jwk, aad=section_aad))
    return assembled


def open_note(note: dict[str, Any], private_jwk: dict[str, Any]) -> str:
    """Decrypt a note's text with the caller's private key."""
    return decrypt_with(
        note["body"], private_jwk, aad=f"refex:note:{note['referral_id']}".encode()
    ).decode()
