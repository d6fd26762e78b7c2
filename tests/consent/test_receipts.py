"""GET /consents/{id}/receipt: the returnee's receipt, in the consent's language, PII-free."""

from __future__ import annotations

import httpx

from tests.consent.conftest import (
    CLINIC_ORG,
    OTHER_HOST_ORG,
    SUBJECT,
    Callers,
    grant,
)

UNKNOWN = "0192f000-0000-7000-8000-00000000dead"


class TestConsentReceipt:
    async def test_a_french_consent_gets_a_french_receipt(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers, language="fr-SN")
        response = await client.get(f"/consents/{consent['id']}/receipt", headers=callers.host())
        assert response.status_code == 200, response.text
        receipt = response.json()
        assert receipt["language"] == "fr"
        assert receipt["ledger_index"] == consent["ledger_index"]
        assert receipt["categories"] == ["identity.basic", "contact", "health.physical"]
        text = receipt["text"]
        assert text.startswith("Reçu de consentement")
        assert f"l'organisation {CLINIC_ORG}" in text
        assert "- votre santé physique" in text
        assert "vous orienter vers un service" in text
        assert "retirer ce consentement à tout moment" in text
        assert f"entrée {consent['ledger_index']} du registre" in text
        assert SUBJECT not in response.text

    async def test_an_english_consent_gets_an_english_receipt(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers, language="en")
        response = await client.get(
            f"/consents/{consent['id']}/receipt",
            headers={**callers.host(), "Accept-Language": "fr"},
        )
        receipt = response.json()
        assert receipt["language"] == "en"
        assert receipt["text"].startswith("Consent receipt")
        assert "- your physical health" in receipt["text"]
        assert "withdraw this consent at any time" in receipt["text"]
        assert SUBJECT not in response.text

    async def test_a_language_refex_lacks_falls_back_to_english(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers, language="wo")
        response = await client.get(f"/consents/{consent['id']}/receipt", headers=callers.host())
        assert response.json()["language"] == "en"

    async def test_a_withdrawn_consent_says_so(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers, language="fr")
        withdrawn = await client.post(
            f"/consents/{consent['id']}/withdraw",
            json={"reason": "returnee_request"},
            headers=callers.host(),
        )
        assert withdrawn.status_code == 200, withdrawn.text
        response = await client.get(f"/consents/{consent['id']}/receipt", headers=callers.host())
        assert response.json()["status"] == "withdrawn"
        assert "Ce consentement a été retiré le" in response.json()["text"]

    async def test_auditors_may_read_it_other_offices_may_not(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        consent = await grant(client, callers)
        url = f"/consents/{consent['id']}/receipt"
        assert (await client.get(url, headers=callers.auditor())).status_code == 200
        other = await client.get(url, headers=callers.host(OTHER_HOST_ORG))
        assert other.status_code == 404
        assert other.json()["type"] == "urn:refex:problem:consent-not-found"
        assert (await client.get(url, headers=callers.provider())).status_code == 404

    async def test_an_unknown_consent_is_not_found_in_french(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        response = await client.get(
            f"/consents/{UNKNOWN}/receipt", headers={**callers.host(), "Accept-Language": "fr"}
        )
        assert response.status_code == 404
        assert response.json()["title"] == "Consentement introuvable"
