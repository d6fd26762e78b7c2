"""French in the directory: accents folded, French word forms, names in the caller's language."""

from __future__ import annotations

from typing import Any

import pytest

from services.directory.seed import demo_id
from shared.demo import ADMIN_ORG
from tests.directory.conftest import Directory

DAKAR_TVET = str(demo_id(f"service:{demo_id('org:dakar-tvet')}:0"))
THIES_HEALTH = str(demo_id(f"service:{demo_id('org:thies-social')}:0"))


async def search(
    directory: Directory, params: dict[str, Any], language: str | None = None
) -> list[dict[str, Any]]:
    """One page of search results for an admin caller, optionally with Accept-Language."""
    headers = {**directory.admin, **({"Accept-Language": language} if language else {})}
    response = await directory.client.get(
        "/services/search", params={"limit": 100, **params}, headers=headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def create_service(directory: Directory, **fields: Any) -> str:
    body = {"organisation_id": str(ADMIN_ORG), "category": "tvet", "country": "SN", **fields}
    response = await directory.client.post("/services", json=body, headers=directory.admin)
    assert response.status_code == 201, response.text
    service_id: str = response.json()["id"]
    return service_id


class TestFrenchText:
    async def test_sante_without_accent_finds_the_french_health_centre(
        self, directory: Directory
    ) -> None:
        hits = await search(directory, {"q": "sante communautaire"}, "fr")
        assert THIES_HEALTH in [h["id"] for h in hits]
        found = next(h for h in hits if h["id"] == THIES_HEALTH)
        assert found["display_name"] == "Centre de santé communautaire — Thiès"

    async def test_formation_professionnelle_finds_the_dakar_training_centre(
        self, directory: Directory
    ) -> None:
        hits = await search(directory, {"q": "Formation professionnelle", "country": "SN"})
        assert hits[0]["category"] == "tvet"
        assert DAKAR_TVET in [h["id"] for h in hits]
        assert all(h["category"] == "tvet" for h in hits)

    async def test_accented_query_finds_unaccented_text(self, directory: Directory) -> None:
        created = await create_service(directory, name={"fr": "Reinsertion economique Kolda"})
        hits = await search(directory, {"q": "réinsertion ÉCONOMIQUE"})
        assert [h["id"] for h in hits] == [created]

    @pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
    async def test_plural_finds_singular_on_postgresql(self, directory: Directory) -> None:
        created = await create_service(
            directory,
            name={"fr": "Formation en couture Kaolack"},
            description={"fr": "Atelier de couture pour jeunes femmes."},
        )
        for query in ("formations couture", "ateliers"):
            hits = await search(directory, {"q": query}, "fr")
            assert created in [h["id"] for h in hits], query

    # SQLite FTS5 matches exact (accent-folded) words only: stemming is PostgreSQL's.
    @pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
    async def test_english_word_forms_match_english_texts_on_postgresql(
        self, directory: Directory
    ) -> None:
        created = await create_service(directory, name={"en": "Tailoring trainings Kaolack"})
        hits = await search(directory, {"q": "tailoring training"}, "en")
        assert created in [h["id"] for h in hits]


class TestCallersLanguage:
    async def test_french_callers_see_french_names_english_callers_english(
        self, directory: Directory
    ) -> None:
        params = {"category": "tvet", "country": "SN"}
        french = {h["id"]: h for h in await search(directory, params, "fr-SN,fr;q=0.9,en;q=0.5")}
        english = {h["id"]: h for h in await search(directory, params, "en-GB,fr;q=0.5")}
        assert french[DAKAR_TVET]["display_name"] == "Formation professionnelle — Dakar"
        assert french[DAKAR_TVET]["display_language"] == "fr"
        assert english[DAKAR_TVET]["display_name"] == "Vocational training Dakar"
        assert english[DAKAR_TVET]["display_language"] == "en"
        assert french[DAKAR_TVET]["name"] == english[DAKAR_TVET]["name"]  # every language kept

    async def test_other_languages_fall_back_to_english_then_any(
        self, directory: Directory
    ) -> None:
        arabic_only = await create_service(directory, name={"ar": "التدريب المهني"})
        for language in ("de-DE", "fr;q=0", "garbage;;q=x", None):
            hits = {h["id"]: h for h in await search(directory, {"country": "SN"}, language)}
            assert hits[DAKAR_TVET]["display_language"] == "en", language
            assert hits[arabic_only]["display_name"] == "التدريب المهني", language
            assert hits[arabic_only]["display_language"] == "ar", language

    async def test_ties_go_to_services_offering_the_callers_language(
        self, directory: Directory
    ) -> None:
        twin = {"name": {"en": "Zanzibarite welding", "fr": "Zanzibarite welding"}}
        in_french = await create_service(directory, languages=["fr"], **twin)
        in_english = await create_service(directory, languages=["en"], **twin)
        french = await search(directory, {"q": "zanzibarite"}, "fr")
        english = await search(directory, {"q": "zanzibarite"}, "en")
        assert [h["id"] for h in french] == [in_french, in_english]
        assert [h["id"] for h in english] == [in_english, in_french]
