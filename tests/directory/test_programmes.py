"""The programme registry, and agreements that belong to a programme."""

from __future__ import annotations

from typing import Any

from shared.demo import (
    DEMO_HEALTH_SERVICE,
    EU_PROGRAMME,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    SECOND_HOST_OFFICE_ORG,
)
from tests.directory.conftest import Directory

SAHEL_HEALTH = "sahel-health-2026"


def programme(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": SAHEL_HEALTH,
        "name": {"en": "Sahel health referrals", "fr": "Orientations santé Sahel"},
        "donor": "Demo Health Fund",
        "host_countries": ["DE"],
        "origin_countries": ["NG"],
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2028-01-01T00:00:00Z",
    }
    body.update(changes)
    return body


def agreement(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sender_org_id": str(HOST_OFFICE_ORG),
        "provider_org_id": str(HEALTH_PROVIDER_ORG),
        "service_categories": ["health"],
        "permitted_categories": ["identity.basic", "contact"],
        "purpose": "referral",
        "retention_days": 90,
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2027-12-31T00:00:00Z",
        "programme": SAHEL_HEALTH,
    }
    body.update(changes)
    return body


async def register(directory: Directory, **changes: Any) -> Any:
    return await directory.client.post(
        "/programmes", json=programme(**changes), headers=directory.admin
    )


class TestRegistry:
    async def test_an_admin_registers_a_programme_every_partner_reads(
        self, directory: Directory
    ) -> None:
        created = await register(directory)
        assert created.status_code == 201, created.text
        assert created.headers["ETag"] == '"1"'
        reader = directory.as_role("provider", HEALTH_PROVIDER_ORG)
        read = await directory.client.get(f"/programmes/{SAHEL_HEALTH}", headers=reader)
        assert read.status_code == 200
        assert read.json()["donor"] == "Demo Health Fund"
        assert read.json()["name"]["fr"] == "Orientations santé Sahel"
        listed = await directory.client.get("/programmes", headers=reader)
        codes = {p["code"] for p in listed.json()["items"]}
        assert {EU_PROGRAMME, "sahel-return-2026", SAHEL_HEALTH} <= codes

    async def test_only_admins_register_programmes(self, directory: Directory) -> None:
        refused = await directory.client.post(
            "/programmes",
            json=programme(),
            headers=directory.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert refused.status_code == 403
        missing = await directory.client.get(f"/programmes/{SAHEL_HEALTH}", headers=directory.admin)
        assert missing.status_code == 404
        assert missing.json()["type"].endswith("programme-not-found")

    async def test_a_code_is_registered_once(self, directory: Directory) -> None:
        again = await register(directory, code=EU_PROGRAMME)
        assert again.status_code == 409
        assert again.json()["type"].endswith("duplicate-programme")

    async def test_countries_codes_and_period_are_validated(self, directory: Directory) -> None:
        before = await directory.snapshot("/programmes?limit=200")
        for changes, field in (
            ({"host_countries": ["XX"]}, "host_countries"),
            ({"origin_countries": []}, "origin_countries"),
            ({"code": "Not A Slug"}, "code"),
            ({"ends_at": "2025-01-01T00:00:00Z"}, "ends_at"),
        ):
            response = await register(directory, **changes)
            assert response.status_code == 422, changes
            assert field in response.text
        assert await directory.snapshot("/programmes?limit=200") == before


class TestAgreementsPerProgramme:
    async def test_one_office_and_one_provider_hold_agreements_under_two_programmes(
        self, directory: Directory
    ) -> None:
        await register(directory)
        second = await directory.client.post(
            "/agreements", json=agreement(), headers=directory.admin
        )
        assert second.status_code == 201, second.text
        assert second.json()["programme"] == SAHEL_HEALTH
        overlapping = await directory.client.post(
            "/agreements",
            json=agreement(valid_from="2026-06-01T00:00:00Z"),
            headers=directory.admin,
        )
        assert overlapping.status_code == 409
        assert overlapping.json()["type"].endswith("overlapping-agreement")

    async def test_an_unregistered_programme_is_refused_saying_where_to_look(
        self, directory: Directory
    ) -> None:
        before = await directory.snapshot("/agreements?limit=200")
        response = await directory.client.post(
            "/agreements", json=agreement(programme="no-such-programme"), headers=directory.admin
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("unknown-programme")
        assert "GET /programmes" in response.json()["detail"]
        assert await directory.snapshot("/agreements?limit=200") == before

    async def test_an_agreement_outside_the_programme_is_refused(
        self, directory: Directory
    ) -> None:
        await register(directory)
        before = await directory.snapshot("/agreements?limit=200")
        for changes, words in (
            ({"valid_until": None}, "period"),
            ({"valid_from": "2025-06-01T00:00:00Z"}, "period"),
            ({"sender_org_id": str(SECOND_HOST_OFFICE_ORG)}, "IT"),
        ):
            response = await directory.client.post(
                "/agreements", json=agreement(**changes), headers=directory.admin
            )
            assert response.status_code == 422, changes
            assert response.json()["type"].endswith("outside-programme")
            assert words in response.json()["detail"]
        assert await directory.snapshot("/agreements?limit=200") == before

    async def test_a_programme_keeps_the_agreements_that_belong_to_it(
        self, directory: Directory
    ) -> None:
        await register(directory)
        await directory.client.post("/agreements", json=agreement(), headers=directory.admin)
        narrowed = await directory.client.patch(
            f"/programmes/{SAHEL_HEALTH}",
            json={"origin_countries": ["SN"]},
            headers=directory.admin,
        )
        assert narrowed.status_code == 422
        assert narrowed.json()["type"].endswith("outside-programme")
        removed = await directory.client.delete(
            f"/programmes/{SAHEL_HEALTH}", headers=directory.admin
        )
        assert removed.status_code == 409
        assert removed.json()["type"].endswith("programme-in-use")
        kept = await directory.client.get(f"/programmes/{SAHEL_HEALTH}", headers=directory.admin)
        assert kept.json()["origin_countries"] == ["NG"]

    async def test_an_unused_programme_is_changed_and_removed(self, directory: Directory) -> None:
        await register(directory)
        renamed = await directory.client.patch(
            f"/programmes/{SAHEL_HEALTH}",
            json={"donor": "Another Fund"},
            headers={**directory.admin, "If-Match": '"1"'},
        )
        assert renamed.status_code == 200, renamed.text
        assert renamed.headers["ETag"] == '"2"'
        stale = await directory.client.delete(
            f"/programmes/{SAHEL_HEALTH}", headers={**directory.admin, "If-Match": '"1"'}
        )
        assert stale.status_code == 412
        removed = await directory.client.delete(
            f"/programmes/{SAHEL_HEALTH}", headers=directory.admin
        )
        assert removed.status_code == 204


class TestResolutionByProgramme:
    async def test_naming_no_programme_when_two_apply_is_422_listing_them(
        self, directory: Directory
    ) -> None:
        await register(directory)
        await directory.client.post("/agreements", json=agreement(), headers=directory.admin)
        params = {"sender_org": str(HOST_OFFICE_ORG), "service_id": str(DEMO_HEALTH_SERVICE)}
        ambiguous = await directory.client.get(
            "/agreements/resolve", params=params, headers=directory.service
        )
        assert ambiguous.status_code == 422
        problem = ambiguous.json()
        assert problem["type"].endswith("programme-required")
        assert problem["programmes"] == [EU_PROGRAMME, SAHEL_HEALTH]
        for code in (EU_PROGRAMME, SAHEL_HEALTH):
            chosen = await directory.client.get(
                "/agreements/resolve",
                params={**params, "programme": code},
                headers=directory.service,
            )
            assert chosen.status_code == 200, chosen.text
            assert chosen.json()["agreement"]["programme"] == code
            assert chosen.json()["programme"]["code"] == code
            assert chosen.json()["sender"]["country"] == "DE"

    async def test_a_programme_without_an_agreement_is_404(self, directory: Directory) -> None:
        response = await directory.client.get(
            "/agreements/resolve",
            params={
                "sender_org": str(HOST_OFFICE_ORG),
                "service_id": str(DEMO_HEALTH_SERVICE),
                "programme": "sahel-return-2026",
            },
            headers=directory.service,
        )
        assert response.status_code == 404
        assert "sahel-return-2026" in response.json()["detail"]
