"""Maintaining the directory: who may change what, ETags, and bad input that stores nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.demo import (
    DEMO_HEALTH_FOCAL_POINT,
    DEMO_HEALTH_SERVICE,
    DEMO_MENTAL_HEALTH_SERVICE,
    EU_PROGRAMME,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    MENTAL_HEALTH_ORG,
)
from tests.directory.conftest import Directory, public_jwk

NEW_ORG = {
    "name": {"en": "Accra Returnee Hub", "fr": "Centre des rapatriés d'Accra"},
    "stakeholder_type": "ngo",
    "engagement_level": "communication",
    "country": "GH",
    "admin_areas": ["GH-AA"],
    "languages": ["en"],
    "webhook_url": "https://hub.example.gh/hook",
}


def new_service(org: object = HEALTH_PROVIDER_ORG, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "organisation_id": str(org),
        "category": "housing",
        "name": {"en": "Emergency shelter Ikeja"},
        "country": "NG",
        "admin_areas": ["NG-LA"],
        "languages": ["en"],
        "location": {"latitude": 6.6, "longitude": 3.35, "address": {"city": "Lagos"}},
    }
    body.update(changes)
    return body


class TestOrganisations:
    async def test_admin_registers_and_every_role_reads(self, directory: Directory) -> None:
        created = await directory.client.post(
            "/organisations", json=NEW_ORG, headers=directory.admin
        )
        assert created.status_code == 201, created.text
        org_id = created.json()["id"]
        for role in ("host_office", "provider", "auditor", "mental_health_professional"):
            read = await directory.client.get(
                f"/organisations/{org_id}", headers=directory.as_role(role, HOST_OFFICE_ORG)
            )
            assert read.status_code == 200
            assert read.json()["name"]["fr"] == "Centre des rapatriés d'Accra"

    async def test_non_admins_may_not_register(self, directory: Directory) -> None:
        response = await directory.client.post(
            "/organisations",
            json=NEW_ORG,
            headers=directory.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 403
        listing = await directory.client.get(
            "/organisations", params={"country": "GH"}, headers=directory.admin
        )
        assert listing.json()["items"] == []

    async def test_unauthenticated_is_401(self, directory: Directory) -> None:
        response = await directory.client.get(f"/organisations/{HOST_OFFICE_ORG}")
        assert response.status_code == 401

    async def test_provider_changes_its_own_webhook(self, directory: Directory) -> None:
        path = f"/organisations/{HEALTH_PROVIDER_ORG}"
        etag = (await directory.client.get(path, headers=directory.admin)).headers["ETag"]
        response = await directory.client.patch(
            path,
            json={"webhook_url": "https://new.example.ng/hook"},
            headers={**directory.as_role("provider", HEALTH_PROVIDER_ORG), "If-Match": etag},
        )
        assert response.status_code == 200, response.text
        assert response.json()["webhook_url"] == "https://new.example.ng/hook"
        assert response.headers["ETag"] != etag

    async def test_provider_may_not_change_another_organisation(self, directory: Directory) -> None:
        path = f"/organisations/{MENTAL_HEALTH_ORG}"
        before = await directory.snapshot(path)
        response = await directory.client.patch(
            path,
            json={"webhook_url": "https://evil.example/hook"},
            headers=directory.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 403
        assert response.json()["type"].endswith("not-your-organisation")
        assert await directory.snapshot(path) == before

    async def test_provider_may_not_rename_itself(self, directory: Directory) -> None:
        path = f"/organisations/{HEALTH_PROVIDER_ORG}"
        before = await directory.snapshot(path)
        response = await directory.client.patch(
            path,
            json={"name": {"en": "Renamed"}},
            headers=directory.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 403
        assert "name" in response.json()["detail"]
        assert await directory.snapshot(path) == before

    async def test_stale_if_match_is_412_and_changes_nothing(self, directory: Directory) -> None:
        path = f"/organisations/{HEALTH_PROVIDER_ORG}"
        etag = (await directory.client.get(path, headers=directory.admin)).headers["ETag"]
        first = await directory.client.patch(
            path, json={"languages": ["en", "ha"]}, headers={**directory.admin, "If-Match": etag}
        )
        assert first.status_code == 200
        before = await directory.snapshot(path)
        second = await directory.client.patch(
            path, json={"languages": ["en"]}, headers={**directory.admin, "If-Match": etag}
        )
        assert second.status_code == 412
        assert await directory.snapshot(path) == before

    async def test_admin_deletes_an_organisation_with_its_services(
        self, directory: Directory
    ) -> None:
        deleted = await directory.client.delete(
            f"/organisations/{MENTAL_HEALTH_ORG}", headers=directory.admin
        )
        assert deleted.status_code == 204
        service = await directory.client.get(
            f"/services/{DEMO_MENTAL_HEALTH_SERVICE}", headers=directory.admin
        )
        assert service.status_code == 404


class TestServices:
    async def test_admin_registers_a_service_that_search_finds(self, directory: Directory) -> None:
        created = await directory.client.post(
            "/services", json=new_service(), headers=directory.admin
        )
        assert created.status_code == 201, created.text
        found = await directory.client.get(
            "/services/search", params={"q": "shelter ikeja"}, headers=directory.admin
        )
        assert [hit["id"] for hit in found.json()["items"]] == [created.json()["id"]]

    async def test_provider_closes_its_service_to_referrals(self, directory: Directory) -> None:
        response = await directory.client.patch(
            f"/services/{DEMO_HEALTH_SERVICE}",
            json={"accepting_referrals": False},
            headers=directory.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 200
        assert response.json()["accepting_referrals"] is False

    async def test_provider_may_not_change_other_fields_or_services(
        self, directory: Directory
    ) -> None:
        provider = directory.as_role("provider", HEALTH_PROVIDER_ORG)
        path = f"/services/{DEMO_HEALTH_SERVICE}"
        before = await directory.snapshot(path)
        renamed = await directory.client.patch(path, json={"name": {"en": "x"}}, headers=provider)
        foreign = await directory.client.patch(
            f"/services/{DEMO_MENTAL_HEALTH_SERVICE}",
            json={"accepting_referrals": False},
            headers=provider,
        )
        assert (renamed.status_code, foreign.status_code) == (403, 403)
        assert await directory.snapshot(path) == before

    async def test_service_etag_mismatch_is_412(self, directory: Directory) -> None:
        response = await directory.client.patch(
            f"/services/{DEMO_HEALTH_SERVICE}",
            json={"capacity": 5},
            headers={**directory.admin, "If-Match": '"999"'},
        )
        assert response.status_code == 412


class TestFocalPoints:
    async def test_provider_edits_its_own_focal_point_hours(self, directory: Directory) -> None:
        path = f"/focal-points/{DEMO_HEALTH_FOCAL_POINT}"
        etag = (await directory.client.get(path, headers=directory.admin)).headers["ETag"]
        schedule = {
            "timezone": "Africa/Lagos",
            "weekly_hours": {"mon": [["09:00", "12:00"]]},
            "holidays": [],
        }
        response = await directory.client.patch(
            path,
            json={"schedule": schedule, "response_time_hours": 4},
            headers={**directory.as_role("provider", HEALTH_PROVIDER_ORG), "If-Match": etag},
        )
        assert response.status_code == 200, response.text
        assert response.json()["schedule"]["weekly_hours"] == {"mon": [["09:00", "12:00"]]}

    async def test_other_organisations_may_not(self, directory: Directory) -> None:
        path = f"/focal-points/{DEMO_HEALTH_FOCAL_POINT}"
        before = await directory.snapshot(path)
        response = await directory.client.patch(
            path,
            json={"response_time_hours": 1},
            headers=directory.as_role("provider", MENTAL_HEALTH_ORG),
        )
        assert response.status_code == 403
        assert await directory.snapshot(path) == before

    async def test_bad_schedule_is_422(self, directory: Directory) -> None:
        response = await directory.client.post(
            "/focal-points",
            json={
                "organisation_id": str(HEALTH_PROVIDER_ORG),
                "name": "Night desk",
                "schedule": {"timezone": "Africa/Lagoss", "weekly_hours": {}},
                "response_time_hours": 8,
            },
            headers=directory.admin,
        )
        assert response.status_code == 422
        assert "IANA" in str(response.json()["errors"])


def agreement(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sender_org_id": str(HOST_OFFICE_ORG),
        "provider_org_id": str(HEALTH_PROVIDER_ORG),
        "service_categories": ["health"],
        "permitted_categories": ["identity.basic"],
        "purpose": "referral",
        "retention_days": 90,
        "valid_from": "2026-01-01T00:00:00Z",
    }
    body.update(changes)
    return body


class TestAgreements:
    async def test_a_new_version_follows_the_previous_one(self, directory: Directory) -> None:
        listing = await directory.client.get(
            "/agreements",
            params={
                "sender_org_id": str(HOST_OFFICE_ORG),
                "provider_org_id": str(HEALTH_PROVIDER_ORG),
            },
            headers=directory.admin,
        )
        current = listing.json()["items"][0]
        version = await directory.client.post(
            "/agreements",
            json=agreement(series_id=current["series_id"], valid_from=current["valid_until"]),
            headers=directory.admin,
        )
        assert version.status_code == 201, version.text
        assert version.json()["version"] == 2

    async def test_extending_a_version_into_the_next_one_is_409(self, directory: Directory) -> None:
        listing = await directory.client.get(
            "/agreements",
            params={
                "sender_org_id": str(HOST_OFFICE_ORG),
                "provider_org_id": str(HEALTH_PROVIDER_ORG),
            },
            headers=directory.admin,
        )
        current = listing.json()["items"][0]
        # Both versions within the programme's period, so only their overlap is wrong.
        shortened = await directory.client.patch(
            f"/agreements/{current['id']}",
            json={"valid_until": "2027-01-01T00:00:00Z"},
            headers=directory.admin,
        )
        assert shortened.status_code == 200, shortened.text
        following = await directory.client.post(
            "/agreements",
            json=agreement(
                series_id=current["series_id"],
                programme=current["programme"],
                valid_from="2027-01-01T00:00:00Z",
                valid_until="2028-01-01T00:00:00Z",
            ),
            headers=directory.admin,
        )
        assert following.status_code == 201, following.text
        extended = await directory.client.patch(
            f"/agreements/{current['id']}",
            json={"valid_until": "2027-06-01T00:00:00Z"},
            headers=directory.admin,
        )
        assert extended.status_code == 409
        after = await directory.client.get(f"/agreements/{current['id']}", headers=directory.admin)
        assert after.json()["valid_until"] == shortened.json()["valid_until"]

    async def test_overlapping_version_is_409_and_not_stored(self, directory: Directory) -> None:
        before = await directory.snapshot("/agreements?limit=200")
        same_programme = agreement(programme=EU_PROGRAMME, valid_until="2027-01-01T00:00:00Z")
        response = await directory.client.post(
            "/agreements", json=same_programme, headers=directory.admin
        )
        assert response.status_code == 409
        assert response.json()["type"].endswith("overlapping-agreement")
        assert "valid_until" in response.json()["detail"]
        assert await directory.snapshot("/agreements?limit=200") == before


BAD_ORGANISATIONS = [
    ({"country": "XX"}, "country"),
    ({"admin_areas": ["NG-ZZ"]}, "admin_areas"),
    ({"admin_areas": ["NG-LA"]}, "not in country"),
    ({"stakeholder_type": "church"}, "stakeholder_type"),
    ({"name": {"en": "x" * 201}}, "name"),
    ({"languages": ["english"]}, "languages"),
    ({"unknown_field": 1}, "unknown_field"),
]


BAD_SERVICES = [
    {"category": "astrology"},
    {"location": {"latitude": 91, "longitude": 3.3}},
    {"location": {"latitude": 6.5, "longitude": -181}},
    {"description": {"en": "x" * 4001}},
    {"admin_areas": ["SN-DK"]},
]
BAD_KEYS = [
    ({"d": "private-part"}, {}, 422, "invalid-key"),
    ({"x": "not-base64!"}, {}, 422, "invalid-key"),
    ({"crv": "P-521"}, {}, 422, "invalid-key"),
    ({"use": "sig"}, {}, 422, "invalid-key"),
    ({}, {"valid_until": "2020-01-01T00:00:00Z"}, 422, "invalid-key"),
    ({"kid": "demo-000000000002-enc-1"}, {}, 409, "duplicate-kid"),
]


class TestBadInputStoresNothing:
    async def test_bad_organisations_are_422(self, directory: Directory) -> None:
        for change, mentioned in BAD_ORGANISATIONS:
            response = await directory.client.post(
                "/organisations", json={**NEW_ORG, **change}, headers=directory.admin
            )
            assert response.status_code == 422, change
            assert response.headers["content-type"] == "application/problem+json"
            assert mentioned in str(response.json()["errors"]), change
        listing = await directory.client.get(
            "/organisations", params={"country": "GH"}, headers=directory.admin
        )
        assert listing.json()["items"] == []

    async def test_bad_services_are_422(self, directory: Directory) -> None:
        for change in BAD_SERVICES:
            response = await directory.client.post(
                "/services", json=new_service(**change), headers=directory.admin
            )
            assert response.status_code == 422, change
        found = await directory.client.get(
            "/services/search", params={"q": "ikeja"}, headers=directory.admin
        )
        assert found.json()["items"] == []

    async def test_bad_keys_are_refused_and_not_stored(self, directory: Directory) -> None:
        path = f"/organisations/{HEALTH_PROVIDER_ORG}/keys"
        before = await directory.snapshot(path)
        provider = directory.as_role("provider", HEALTH_PROVIDER_ORG)
        for jwk_change, extra, status, slug in BAD_KEYS:
            jwk = {**public_jwk("new-key"), **jwk_change}
            response = await directory.client.post(
                path, json={"jwk": jwk, **extra}, headers=provider
            )
            assert response.status_code == status, response.text
            assert response.json()["type"].endswith(slug)
            assert "private-part" not in response.text
        assert await directory.snapshot(path) == before

    async def test_unknown_data_category_in_agreement_is_422(self, directory: Directory) -> None:
        response = await directory.client.post(
            "/agreements",
            json=agreement(permitted_categories=["dna"], valid_from="2030-01-01T00:00:00Z"),
            headers=directory.admin,
        )
        assert response.status_code == 422

    async def test_oversized_body_is_413(self, directory: Directory) -> None:
        response = await directory.client.post(
            "/organisations",
            content=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}',
            headers={**directory.admin, "Content-Type": "application/json"},
        )
        assert response.status_code == 413

    async def test_unknown_ids_are_404(self, directory: Directory) -> None:
        for path in ("/services/", "/focal-points/", "/agreements/", "/organisations/"):
            response = await directory.client.get(f"{path}{uuid.uuid4()}", headers=directory.admin)
            assert response.status_code == 404, path

    async def test_key_valid_from_later_is_accepted_but_not_published(
        self, directory: Directory
    ) -> None:
        later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        path = f"/organisations/{HEALTH_PROVIDER_ORG}"
        added = await directory.client.post(
            f"{path}/keys",
            json={"jwk": public_jwk("tomorrow"), "valid_from": later},
            headers=directory.admin,
        )
        assert added.status_code == 201
        jwks = await directory.client.get(f"{path}/jwks", headers=directory.admin)
        assert "tomorrow" not in {k["kid"] for k in jwks.json()["keys"]}


class TestKeysMatchTheEncryptionRules:
    @pytest.mark.parametrize("alg", ["ECDH-ES", "RSA-OAEP", "dir"])
    async def test_key_algorithms_the_referral_service_cannot_use_are_refused(
        self, directory: Directory, alg: str
    ) -> None:
        jwk = {**public_jwk("alg-test-key"), "alg": alg}
        response = await directory.client.post(
            f"/organisations/{HEALTH_PROVIDER_ORG}/keys",
            json={"jwk": jwk},
            headers=directory.admin,
        )
        assert response.status_code == 422
        assert "ECDH-ES+A256KW" in response.json()["detail"]


class TestNullsInUpdates:
    async def test_a_required_field_sent_as_null_is_a_422_and_changes_nothing(
        self, directory: Directory
    ) -> None:
        path = f"/organisations/{HEALTH_PROVIDER_ORG}"
        before = await directory.snapshot(path)
        response = await directory.client.patch(
            path,
            json={"engagement_level": None, "stakeholder_type": "academia"},
            headers=directory.admin,
        )
        assert response.status_code == 422
        assert "engagement_level" in response.json()["detail"]
        assert await directory.snapshot(path) == before

    async def test_focal_point_schedule_null_is_a_422(self, directory: Directory) -> None:
        response = await directory.client.patch(
            f"/focal-points/{DEMO_HEALTH_FOCAL_POINT}",
            json={"contact_channels": None, "schedule": None},
            headers=directory.admin,
        )
        assert response.status_code == 422

    async def test_service_update_with_whole_number_capacity_and_no_languages(
        self, directory: Directory
    ) -> None:
        response = await directory.client.patch(
            f"/services/{DEMO_HEALTH_SERVICE}",
            json={"capacity": 441342.0, "languages": []},
            headers=directory.admin,
        )
        assert response.status_code in (200, 422), response.text
