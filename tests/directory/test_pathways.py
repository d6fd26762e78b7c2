"""Agreements between partners of one country of origin: who may be party, what they carry."""

from __future__ import annotations

from typing import Any

from services.directory.seed import demo_id
from shared.demo import (
    COORDINATOR_ORG,
    DEMO_MENTAL_HEALTH_SERVICE,
    EU_PROGRAMME,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    MENTAL_HEALTH_ORG,
)
from tests.directory.conftest import Directory

EDO_SKILLS = demo_id("org:edo-skills")
DAKAR_TVET = demo_id("org:dakar-tvet")
EDO_RECEPTION = demo_id(f"service:{demo_id('org:edo-returnees')}:0")


def agreement_body(sender: object, provider: object, pathway: str, **extra: Any) -> dict[str, Any]:
    return {
        "sender_org_id": str(sender) if sender is not None else None,
        "provider_org_id": str(provider),
        "service_categories": ["tvet"],
        "permitted_categories": ["identity.basic", "contact"],
        "retention_days": 90,
        "valid_from": "2026-02-01T00:00:00Z",
        "valid_until": "2026-12-01T00:00:00Z",
        "programme": EU_PROGRAMME,
        "pathway": pathway,
        **extra,
    }


async def resolve(directory: Directory, sender: object, service: object) -> Any:
    return await directory.client.get(
        "/agreements/resolve",
        params={"sender_org": str(sender), "service_id": str(service), "purpose": "referral"},
        headers=directory.service,
    )


class TestRegisteringDomesticAgreements:
    async def test_a_national_agreement_between_partners_of_one_country_is_stored(
        self, directory: Directory
    ) -> None:
        # The EU programme's host countries do not include Nigeria: a domestic sender is
        # checked against its origin countries instead.
        response = await directory.client.post(
            "/agreements",
            json=agreement_body(COORDINATOR_ORG, EDO_SKILLS, "national"),
            headers=directory.admin,
        )
        assert response.status_code == 201, response.text
        assert response.json()["pathway"] == "national"

    async def test_agreements_default_to_international(self, directory: Directory) -> None:
        body = agreement_body(HOST_OFFICE_ORG, EDO_SKILLS, "international")
        del body["pathway"]
        response = await directory.client.post("/agreements", json=body, headers=directory.admin)
        assert response.status_code == 201, response.text
        assert response.json()["pathway"] == "international"

    async def test_parties_that_do_not_fit_the_pathway_are_refused_and_nothing_is_stored(
        self, directory: Directory
    ) -> None:
        before = await directory.snapshot("/agreements?limit=200")
        refused = [
            # across a border: Lagos to Dakar
            agreement_body(HEALTH_PROVIDER_ORG, DAKAR_TVET, "national"),
            # 'any host office' is international only
            agreement_body(None, EDO_SKILLS, "national"),
            # a host office's agreements are international
            agreement_body(HOST_OFFICE_ORG, EDO_SKILLS, "national"),
            # local, but Lagos and Edo share no area
            agreement_body(HEALTH_PROVIDER_ORG, EDO_SKILLS, "local"),
            # an organisation with itself
            agreement_body(EDO_SKILLS, EDO_SKILLS, "international"),
        ]
        for body in refused:
            response = await directory.client.post(
                "/agreements", json=body, headers=directory.admin
            )
            assert response.status_code == 422, (body, response.text)
            problem = response.json()
            assert problem["type"].endswith(":pathway-not-allowed"), problem
            assert "Nothing was stored" in problem["detail"]
        assert await directory.snapshot("/agreements?limit=200") == before


class TestResolvingDomesticAgreements:
    async def test_the_seeded_local_agreement_resolves_for_the_clinic(
        self, directory: Directory
    ) -> None:
        response = await resolve(directory, HEALTH_PROVIDER_ORG, DEMO_MENTAL_HEALTH_SERVICE)
        assert response.status_code == 200, response.text
        agreement = response.json()["agreement"]
        assert agreement["pathway"] == "local"
        assert agreement["sender_org_id"] == str(HEALTH_PROVIDER_ORG)
        assert agreement["provider_org_id"] == str(MENTAL_HEALTH_ORG)

    async def test_a_provider_gets_no_open_host_office_agreement(
        self, directory: Directory
    ) -> None:
        # An 'any host office' agreement covers the Edo association's reception service.
        assert (await resolve(directory, HOST_OFFICE_ORG, EDO_RECEPTION)).status_code == 200
        response = await resolve(directory, HEALTH_PROVIDER_ORG, EDO_RECEPTION)
        assert response.status_code == 404
        assert response.json()["type"].endswith(":no-agreement")

    async def test_a_domestic_agreement_carries_no_referral_across_a_border(
        self, directory: Directory
    ) -> None:
        org = await directory.client.get(
            f"/organisations/{HEALTH_PROVIDER_ORG}", headers=directory.admin
        )
        moved = await directory.client.patch(
            f"/organisations/{HEALTH_PROVIDER_ORG}",
            json={"country": "SN", "admin_areas": ["SN-DK"]},
            headers={**directory.admin, "If-Match": org.headers["etag"]},
        )
        assert moved.status_code == 200, moved.text
        response = await resolve(directory, HEALTH_PROVIDER_ORG, DEMO_MENTAL_HEALTH_SERVICE)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"].endswith(":pathway-not-covered")
        assert "SN" in problem["detail"] and "NG" in problem["detail"]

    async def test_a_local_agreement_carries_no_referral_outside_the_senders_areas(
        self, directory: Directory
    ) -> None:
        org = await directory.client.get(
            f"/organisations/{HEALTH_PROVIDER_ORG}", headers=directory.admin
        )
        moved = await directory.client.patch(
            f"/organisations/{HEALTH_PROVIDER_ORG}",
            json={"admin_areas": ["NG-ED"]},
            headers={**directory.admin, "If-Match": org.headers["etag"]},
        )
        assert moved.status_code == 200, moved.text
        response = await resolve(directory, HEALTH_PROVIDER_ORG, DEMO_MENTAL_HEALTH_SERVICE)
        assert response.status_code == 422, response.text
        assert response.json()["type"].endswith(":pathway-not-covered")
