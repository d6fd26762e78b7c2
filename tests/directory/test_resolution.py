"""The contracts other services rely on: agreement resolution, JWKS, coordinators, availability."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.demo import (
    ADMIN_ORG,
    COORDINATOR_ORG,
    DEMO_HEALTH_BACKUP_FOCAL_POINT,
    DEMO_HEALTH_FOCAL_POINT,
    DEMO_HEALTH_SERVICE,
    DEMO_MENTAL_HEALTH_SERVICE,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    MENTAL_HEALTH_ORG,
    SECOND_HOST_OFFICE_ORG,
)
from tests.directory.conftest import Directory, public_jwk


def resolve_params(sender: object, service: object, purpose: str = "referral") -> dict[str, str]:
    return {"sender_org": str(sender), "service_id": str(service), "purpose": purpose}


class TestResolveAgreement:
    async def test_health_referral_gets_the_sop_keys_and_focal_points(
        self, directory: Directory
    ) -> None:
        response = await directory.client.get(
            "/agreements/resolve",
            params=resolve_params(HOST_OFFICE_ORG, DEMO_HEALTH_SERVICE),
            headers=directory.service,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        agreement = body["agreement"]
        assert agreement["sender_org_id"] == str(HOST_OFFICE_ORG)
        assert agreement["provider_org_id"] == str(HEALTH_PROVIDER_ORG)
        assert set(agreement["permitted_categories"]) == {
            "identity.basic",
            "contact",
            "return.travel",
            "health.physical",
        }
        assert agreement["emergency_override_allowed"] is True
        assert body["service"]["category"] == "health"
        assert body["recipient"]["organisation_id"] == str(HEALTH_PROVIDER_ORG)
        assert body["sender"]["organisation_id"] == str(HOST_OFFICE_ORG)
        for party in ("recipient", "sender"):
            keys = body[party]["keys"]["keys"]
            assert len(keys) == 1
            assert keys[0]["use"] == "enc" and keys[0]["kid"] and "d" not in keys[0]
        focal = body["focal_point"]
        assert focal["id"] == str(DEMO_HEALTH_FOCAL_POINT)
        assert focal["schedule"]["timezone"] == "Africa/Lagos"
        assert focal["response_time_hours"] == 8
        assert "health.mental" in focal["first_contact_categories"]
        assert focal["backup_focal_point_id"] == str(DEMO_HEALTH_BACKUP_FOCAL_POINT)
        assert body["backup_focal_point"]["id"] == str(DEMO_HEALTH_BACKUP_FOCAL_POINT)

    async def test_mental_health_sop_permits_health_mental(self, directory: Directory) -> None:
        response = await directory.client.get(
            "/agreements/resolve",
            params=resolve_params(HOST_OFFICE_ORG, DEMO_MENTAL_HEALTH_SERVICE),
            headers=directory.service,
        )
        assert response.status_code == 200
        permitted = set(response.json()["agreement"]["permitted_categories"])
        assert permitted == {"identity.basic", "contact", "health.mental", "vulnerability"}

    async def test_sender_without_agreement_gets_a_problem_naming_what_is_missing(
        self, directory: Directory
    ) -> None:
        response = await directory.client.get(
            "/agreements/resolve",
            params=resolve_params(SECOND_HOST_OFFICE_ORG, DEMO_HEALTH_SERVICE),
            headers=directory.service,
        )
        assert response.status_code == 404
        problem = response.json()
        assert problem["type"].endswith("no-agreement")
        assert str(HEALTH_PROVIDER_ORG) in problem["detail"] and "'health'" in problem["detail"]
        assert problem["service_category"] == "health"

    async def test_other_purpose_has_no_agreement(self, directory: Directory) -> None:
        response = await directory.client.get(
            "/agreements/resolve",
            params=resolve_params(HOST_OFFICE_ORG, DEMO_HEALTH_SERVICE, "monitoring"),
            headers=directory.service,
        )
        assert response.status_code == 404
        assert response.json()["purpose"] == "monitoring"

    async def test_ended_agreement_is_no_longer_in_force(self, directory: Directory) -> None:
        first = await directory.client.get(
            "/agreements/resolve",
            params=resolve_params(HOST_OFFICE_ORG, DEMO_HEALTH_SERVICE),
            headers=directory.service,
        )
        agreement_id = first.json()["agreement"]["id"]
        ended = await directory.client.patch(
            f"/agreements/{agreement_id}",
            json={"valid_until": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()},
            headers=directory.admin,
        )
        assert ended.status_code == 200, ended.text
        again = await directory.client.get(
            "/agreements/resolve",
            params=resolve_params(HOST_OFFICE_ORG, DEMO_HEALTH_SERVICE),
            headers=directory.service,
        )
        assert again.status_code == 404

    async def test_unknown_service_is_404(self, directory: Directory) -> None:
        response = await directory.client.get(
            "/agreements/resolve",
            params=resolve_params(HOST_OFFICE_ORG, uuid.uuid4()),
            headers=directory.service,
        )
        assert response.status_code == 404
        assert response.json()["type"].endswith("service-not-found")

    async def test_providers_may_not_resolve(self, directory: Directory) -> None:
        response = await directory.client.get(
            "/agreements/resolve",
            params=resolve_params(HOST_OFFICE_ORG, DEMO_HEALTH_SERVICE),
            headers=directory.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 403


class TestJwks:
    async def test_only_active_currently_valid_keys_are_published(
        self, directory: Directory
    ) -> None:
        provider = directory.as_role("provider", HEALTH_PROVIDER_ORG)
        path = f"/organisations/{HEALTH_PROVIDER_ORG}"
        future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
        for kid, extra in (("next", {"valid_from": future}), ("old", {}), ("current-2", {})):
            added = await directory.client.post(
                f"{path}/keys", json={"jwk": public_jwk(kid), **extra}, headers=provider
            )
            assert added.status_code == 201, added.text
        revoked = await directory.client.patch(
            f"{path}/keys/old", json={"status": "revoked"}, headers=provider
        )
        assert revoked.status_code == 200
        jwks = await directory.client.get(f"{path}/jwks", headers=directory.service)
        kids = {key["kid"] for key in jwks.json()["keys"]}
        assert "current-2" in kids and "next" not in kids and "old" not in kids
        assert len(kids) == 2
        listed = await directory.client.get(f"{path}/keys", headers=directory.service)
        statuses = {key["kid"]: key["status"] for key in listed.json()}
        assert statuses["old"] == "revoked"

    async def test_a_revoked_key_stays_revoked(self, directory: Directory) -> None:
        path = f"/organisations/{HEALTH_PROVIDER_ORG}/keys"
        await directory.client.post(path, json={"jwk": public_jwk("k1")}, headers=directory.admin)
        await directory.client.patch(
            f"{path}/k1", json={"status": "revoked"}, headers=directory.admin
        )
        retired = await directory.client.patch(
            f"{path}/k1", json={"status": "retired"}, headers=directory.admin
        )
        assert retired.status_code == 422

    async def test_unknown_organisation_is_404(self, directory: Directory) -> None:
        response = await directory.client.get(
            f"/organisations/{uuid.uuid4()}/jwks", headers=directory.service
        )
        assert response.status_code == 404


class TestCoordinators:
    async def test_nigeria_is_coordinated_by_the_committee(self, directory: Directory) -> None:
        response = await directory.client.get(
            "/coordinators/resolve",
            params={"country": "NG", "admin_area": "NG-LA", "category": "health"},
            headers=directory.service,
        )
        assert response.status_code == 200
        assert response.json()["id"] == str(COORDINATOR_ORG)

    async def test_members_are_the_providers_naming_the_coordinator(
        self, directory: Directory
    ) -> None:
        response = await directory.client.get(
            f"/organisations/{COORDINATOR_ORG}/members",
            params={"limit": 2},
            headers=directory.service,
        )
        ids = {item["id"] for item in response.json()["items"]}
        cursor = response.json()["next_cursor"]
        while cursor:
            page = await directory.client.get(
                f"/organisations/{COORDINATOR_ORG}/members",
                params={"limit": 2, "cursor": cursor},
                headers=directory.service,
            )
            ids |= {item["id"] for item in page.json()["items"]}
            cursor = page.json()["next_cursor"]
        assert {str(HEALTH_PROVIDER_ORG), str(MENTAL_HEALTH_ORG)} <= ids
        assert str(HOST_OFFICE_ORG) not in ids and len(ids) == 6

    @pytest.mark.parametrize(
        ("params", "status"),
        [
            ({"country": "IQ"}, 404),
            ({"country": "XX"}, 400),
            ({"country": "NG", "admin_area": "SN-DK"}, 400),
        ],
    )
    async def test_uncoordinated_or_unknown_areas(
        self, directory: Directory, params: dict[str, str], status: int
    ) -> None:
        response = await directory.client.get(
            "/coordinators/resolve", params=params, headers=directory.service
        )
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"


class TestAvailability:
    async def test_friday_afternoon_lagos_is_closed_and_due_monday(
        self, directory: Directory
    ) -> None:
        response = await directory.client.get(
            f"/services/{DEMO_HEALTH_SERVICE}/availability",
            params={"at": "2026-11-27T15:30:00Z"},
            headers=directory.as_role("host_office", HOST_OFFICE_ORG),
        )
        body = response.json()
        assert body["open"] is False
        assert body["next_opening"] == "2026-11-30T07:00:00Z"
        assert body["response_due_at"] == "2026-11-30T15:00:00Z"

    async def test_open_during_office_hours(self, directory: Directory) -> None:
        response = await directory.client.get(
            f"/services/{DEMO_HEALTH_SERVICE}/availability",
            params={"at": "2026-11-26T09:00:00+01:00"},
            headers=directory.admin,
        )
        assert response.json()["open"] is True

    async def test_naive_moment_is_refused(self, directory: Directory) -> None:
        response = await directory.client.get(
            f"/services/{DEMO_HEALTH_SERVICE}/availability",
            params={"at": "2026-11-26T09:00:00"},
            headers=directory.as_role("auditor", ADMIN_ORG),
        )
        assert response.status_code == 400
