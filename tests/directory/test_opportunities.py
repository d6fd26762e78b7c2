"""Opportunities and skills matching through the directory's HTTP API, plus the fit rule."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.directory.opportunities import skill_fit
from services.directory.partner_seed import SKILLS_ACADEMY, SKILLS_SERVICE
from services.directory.taxonomy import unit_groups
from shared.demo import DEMO_HEALTH_SERVICE, HEALTH_PROVIDER_ORG, HOST_OFFICE_ORG
from tests.directory.conftest import Directory

CODES = sorted(unit_groups())


def opportunity(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "organisation_id": str(SKILLS_ACADEMY),
        "service_id": str(SKILLS_SERVICE),
        "kind": "job",
        "title": {"en": "Welder, Benin City workshop"},
        "country": "NG",
        "admin_area": "NG-ED",
        "location": {"latitude": 6.34, "longitude": 5.62},
        "places_left": 1,
        "skills": ["7212"],
    }
    body.update(changes)
    return body


async def match(directory: Directory, **body: Any) -> list[dict[str, Any]]:
    response = await directory.client.post(
        "/opportunities/match",
        json={"country": "NG", **body},
        headers=directory.as_role("host_office", HOST_OFFICE_ORG),
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


class TestSkills:
    async def test_the_taxonomy_lists_isco_codes_in_english_and_french(
        self, directory: Directory
    ) -> None:
        response = await directory.client.get(
            "/skills", params={"q": "mécanicien"}, headers=directory.admin
        )
        codes = {item["code"]: item for item in response.json()}
        assert codes["7231"]["en"] == "Motor vehicle mechanics and repairers"
        assert codes["7231"]["scheme"] == "ISCO-08"


class TestPublishing:
    async def test_a_provider_publishes_its_own_opportunity_with_an_hsds_mapping(
        self, directory: Directory
    ) -> None:
        created = await directory.client.post(
            "/opportunities",
            json=opportunity(),
            headers=directory.as_role("provider", SKILLS_ACADEMY),
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["skills"][0]["fr"] == "Soudeurs et oxycoupeurs"
        assert body["hsds"]["attributes"][0]["taxonomy_term"]["code"] == "7212"

    async def test_publishing_for_another_organisation_is_refused(
        self, directory: Directory
    ) -> None:
        response = await directory.client.post(
            "/opportunities",
            json=opportunity(),
            headers=directory.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 403

    @pytest.mark.parametrize(
        "changes",
        [
            {"skills": ["9999"]},
            {"skills": []},
            {"service_id": str(DEMO_HEALTH_SERVICE)},
            {"starts_on": "2027-05-01", "ends_on": "2027-01-01"},
            {"places_left": -1},
        ],
    )
    async def test_bad_opportunities_answer_422_and_store_nothing(
        self, directory: Directory, changes: dict[str, Any]
    ) -> None:
        before = await directory.snapshot("/opportunities")
        response = await directory.client.post(
            "/opportunities", json=opportunity(**changes), headers=directory.admin
        )
        assert response.status_code == 422, response.text
        assert await directory.snapshot("/opportunities") == before

    async def test_places_left_change_with_if_match(self, directory: Directory) -> None:
        own = directory.as_role("provider", SKILLS_ACADEMY)
        created = await directory.client.post("/opportunities", json=opportunity(), headers=own)
        path = f"/opportunities/{created.json()['id']}"
        changed = await directory.client.patch(
            path, json={"places_left": 0}, headers={**own, "If-Match": created.headers["ETag"]}
        )
        assert changed.status_code == 200 and changed.json()["places_left"] == 0
        stale = await directory.client.patch(
            path, json={"places_left": 3}, headers={**own, "If-Match": created.headers["ETag"]}
        )
        assert stale.status_code == 412


class TestMatching:
    async def test_the_seeded_apprenticeship_ranks_first_for_a_mechanic(
        self, directory: Directory
    ) -> None:
        hits = await match(directory, skills=["7231"])
        assert hits[0]["opportunity"]["title"]["en"] == "Motor mechanic apprenticeship"
        assert hits[0]["fit"] == 1.0 and hits[0]["matched_skills"] == ["7231"]
        assert hits[0]["refer_to_service_id"] == str(SKILLS_SERVICE)

    async def test_a_related_skill_gets_partial_credit_below_an_exact_one(
        self, directory: Directory
    ) -> None:
        hits = await match(directory, skills=["7411"])
        course = next(h for h in hits if h["opportunity"]["title"]["en"].startswith("Building"))
        assert course["fit"] == 0.625  # 7411 held (1), 7421 only shares sub-major 74 (0.25)

    async def test_nearer_opportunities_rank_first_at_equal_fit(self, directory: Directory) -> None:
        own = directory.as_role("provider", SKILLS_ACADEMY)
        far = opportunity(
            title={"en": "Welder, far"}, location={"latitude": 9.06, "longitude": 7.49}
        )
        near = opportunity(title={"en": "Welder, near"})
        for body in (far, near):
            await directory.client.post("/opportunities", json=body, headers=own)
        hits = await match(directory, skills=["7212"], near={"latitude": 6.335, "longitude": 5.6})
        titles = [h["opportunity"]["title"]["en"] for h in hits[:2]]
        assert titles == ["Welder, near", "Welder, far"]
        assert hits[0]["distance_km"] < hits[1]["distance_km"]

    async def test_full_or_other_country_opportunities_are_not_offered(
        self, directory: Directory
    ) -> None:
        own = directory.as_role("provider", SKILLS_ACADEMY)
        await directory.client.post("/opportunities", json=opportunity(places_left=0), headers=own)
        titles = [h["opportunity"]["title"]["en"] for h in await match(directory, skills=["7212"])]
        assert titles and "Welder, Benin City workshop" not in titles
        assert await match(directory, skills=["7231"], country="SN") == []

    async def test_a_profile_with_unknown_codes_is_422(self, directory: Directory) -> None:
        response = await directory.client.post(
            "/opportunities/match",
            json={"country": "NG", "skills": ["Ada Lovelace"]},
            headers=directory.admin,
        )
        assert response.status_code == 422
        assert "GET /skills" in response.text


class TestFitRule:
    @given(
        st.lists(st.sampled_from(CODES), min_size=1), st.lists(st.sampled_from(CODES), min_size=1)
    )
    def test_fit_is_a_share_and_full_only_when_every_required_code_is_held(
        self, profile: list[str], required: list[str]
    ) -> None:
        fit, matched = skill_fit(profile, required)
        assert 0 <= fit <= 1
        assert (fit == 1) == (set(required) <= set(profile))
        assert set(matched) <= set(profile)
