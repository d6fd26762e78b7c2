"""Cost-share rules of an agreement over HTTP: who may set and read them, and what is refused."""

from __future__ import annotations

from typing import Any

from services.directory.seed import BERLIN_LAGOS_AGREEMENT, demo_id
from shared.demo import (
    AUDITOR_ORG,
    COORDINATOR_ORG,
    HEALTH_PROVIDER_ORG,
    HOST_OFFICE_ORG,
    MENTAL_HEALTH_ORG,
    SECOND_HOST_OFFICE_ORG,
)
from tests.directory.conftest import Directory

SHARES = f"/agreements/{BERLIN_LAGOS_AGREEMENT}/cost-shares"
MINDBRIDGE_AGREEMENT = demo_id("agreement:berlin-mindbridge")


def share(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "service_category": "mental_health_psychosocial",
        "payer_org_id": str(HOST_OFFICE_ORG),
        "basis": "percentage",
        "percentage": "60",
        "currency": "EUR",
        "covers": {"en": "Counselling sessions", "fr": "Séances de conseil"},
    }
    body.update(changes)
    return body


async def rules(directory: Directory, path: str = SHARES) -> list[dict[str, Any]]:
    response = await directory.client.get(path, headers=directory.admin)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


class TestSeededRules:
    async def test_the_demo_agreement_carries_its_rules_in_its_read(
        self, directory: Directory
    ) -> None:
        response = await directory.client.get(
            f"/agreements/{BERLIN_LAGOS_AGREEMENT}",
            headers=directory.as_role("host_office", HOST_OFFICE_ORG),
        )
        assert response.status_code == 200, response.text
        shares = response.json()["cost_shares"]
        terms = [(s["basis"], s["percentage"], s["fixed_amount"], s["cap"]) for s in shares]
        assert sorted(terms, key=str) == sorted(
            [
                ("fixed", None, "20.00", None),
                ("percentage", "70", None, "400.00"),
                ("percentage", "30", None, None),
            ],
            key=str,
        )
        assert {s["currency"] for s in shares} == {"EUR"}
        assert all(s["covers"]["fr"] for s in shares)

    async def test_lists_of_agreements_carry_them_too(self, directory: Directory) -> None:
        response = await directory.client.get(
            "/agreements",
            params={"sender_org_id": str(HOST_OFFICE_ORG), "limit": 100},
            headers=directory.admin,
        )
        by_id = {a["id"]: a for a in response.json()["items"]}
        assert len(by_id[str(BERLIN_LAGOS_AGREEMENT)]["cost_shares"]) == 3
        assert by_id[str(MINDBRIDGE_AGREEMENT)]["cost_shares"] == []


class TestCreate:
    async def test_the_steward_adds_a_percentage_and_a_fixed_share(
        self, directory: Directory
    ) -> None:
        path = f"/agreements/{MINDBRIDGE_AGREEMENT}/cost-shares"
        first = await directory.client.post(path, json=share(cap="150.5"), headers=directory.admin)
        assert first.status_code == 201, first.text
        assert first.headers["ETag"] == '"1"'
        assert (first.json()["percentage"], first.json()["cap"]) == ("60", "150.50")
        fixed = await directory.client.post(
            path,
            json=share(
                basis="fixed",
                percentage=None,
                fixed_amount="35",
                payer_org_id=str(MENTAL_HEALTH_ORG),
            ),
            headers=directory.admin,
        )
        assert fixed.status_code == 201, fixed.text
        assert fixed.json()["fixed_amount"] == "35.00"
        assert len(await rules(directory, path)) == 2
        one = await directory.client.get(
            f"{path}/{first.json()['id']}", headers=directory.as_role("auditor", AUDITOR_ORG)
        )
        assert one.status_code == 200 and one.json() == first.json()

    async def test_shares_over_100_percent_are_refused_and_nothing_is_stored(
        self, directory: Directory
    ) -> None:
        before = await rules(directory)
        response = await directory.client.post(
            SHARES,
            json=share(service_category="health", percentage="0.01"),
            headers=directory.admin,
        )
        assert response.status_code == 422
        problem = response.json()
        assert problem["type"].endswith("cost-shares-over-100")
        assert "100.01 %" in problem["detail"] and "0 % at most" in problem["detail"]
        assert await rules(directory) == before

    async def test_another_currency_in_the_same_category_is_refused(
        self, directory: Directory
    ) -> None:
        before = await rules(directory)
        response = await directory.client.post(
            SHARES,
            json=share(
                service_category="health",
                basis="fixed",
                percentage=None,
                fixed_amount="1000",
                currency="NGN",
            ),
            headers=directory.admin,
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("cost-share-currency-mismatch")
        assert "EUR" in response.json()["detail"]
        assert await rules(directory) == before

    async def test_bad_terms_are_422_with_the_reason(self, directory: Directory) -> None:
        path = f"/agreements/{MINDBRIDGE_AGREEMENT}/cost-shares"
        cases = [
            share(currency="EUX"),  # no such ISO 4217 code
            share(currency="XXX"),  # "no currency"
            share(percentage=60),  # a JSON number, not a string
            share(percentage="100.5"),
            share(basis="fixed", percentage=None, fixed_amount="10.005"),  # finer than cents
            share(basis="fixed", percentage=None, fixed_amount="10", cap="5"),
            share(basis="percentage", percentage=None),
            share(service_category="health"),  # not a category of this agreement
            share(payer_org_id=str(demo_id("nobody"))),
            share(covers={}),
        ]
        for body in cases:
            response = await directory.client.post(path, json=body, headers=directory.admin)
            assert response.status_code == 422, (body, response.text)
        assert await rules(directory, path) == []

    async def test_only_the_steward_adds_rules(self, directory: Directory) -> None:
        for role, org in (("host_office", HOST_OFFICE_ORG), ("provider", MENTAL_HEALTH_ORG)):
            response = await directory.client.post(
                f"/agreements/{MINDBRIDGE_AGREEMENT}/cost-shares",
                json=share(),
                headers=directory.as_role(role, org),
            )
            assert response.status_code == 403
        assert await rules(directory, f"/agreements/{MINDBRIDGE_AGREEMENT}/cost-shares") == []

    async def test_an_unknown_agreement_is_404(self, directory: Directory) -> None:
        response = await directory.client.post(
            f"/agreements/{demo_id('no-agreement')}/cost-shares",
            json=share(),
            headers=directory.admin,
        )
        assert response.status_code == 404


class TestUpdate:
    async def test_the_steward_corrects_a_share_with_if_match(self, directory: Directory) -> None:
        rule = next(r for r in await rules(directory) if r["percentage"] == "30")
        path = f"{SHARES}/{rule['id']}"
        stale = await directory.client.patch(
            path, json={"percentage": "25"}, headers={**directory.admin, "If-Match": '"9"'}
        )
        assert stale.status_code == 412
        changed = await directory.client.patch(
            path,
            json={"percentage": "25", "cap": "120"},
            headers={**directory.admin, "If-Match": '"1"'},
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["percentage"], changed.json()["cap"]) == ("25", "120.00")
        assert changed.headers["ETag"] == '"2"'
        removed = await directory.client.patch(path, json={"cap": None}, headers=directory.admin)
        assert removed.json()["cap"] is None

    async def test_an_update_past_100_percent_leaves_the_rule_as_it_was(
        self, directory: Directory
    ) -> None:
        rule = next(r for r in await rules(directory) if r["percentage"] == "30")
        path = f"{SHARES}/{rule['id']}"
        response = await directory.client.patch(
            path, json={"percentage": "31"}, headers=directory.admin
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("cost-shares-over-100")
        again = await directory.client.get(path, headers=directory.admin)
        assert again.json() == rule

    async def test_a_cap_on_a_fixed_share_is_refused(self, directory: Directory) -> None:
        rule = next(r for r in await rules(directory) if r["basis"] == "fixed")
        path = f"{SHARES}/{rule['id']}"
        response = await directory.client.patch(path, json={"cap": "5"}, headers=directory.admin)
        assert response.status_code == 422
        assert "Nothing was changed" in response.json()["detail"]
        assert (await directory.client.get(path, headers=directory.admin)).json() == rule

    async def test_parties_may_not_change_rules(self, directory: Directory) -> None:
        rule = (await rules(directory))[0]
        response = await directory.client.patch(
            f"{SHARES}/{rule['id']}",
            json={"covers": {"en": "Everything"}},
            headers=directory.as_role("provider", HEALTH_PROVIDER_ORG),
        )
        assert response.status_code == 403


class TestNewVersion:
    async def test_a_new_version_keeps_the_rules_of_the_one_before(
        self, directory: Directory
    ) -> None:
        path = f"/agreements/{BERLIN_LAGOS_AGREEMENT}"
        old = (await directory.client.get(path, headers=directory.admin)).json()
        ended = await directory.client.patch(
            path, json={"valid_until": "2027-01-01T00:00:00Z"}, headers=directory.admin
        )
        assert ended.status_code == 200, ended.text
        fields = ("provider_org_id", "sender_org_id", "service_categories",
                  "permitted_categories", "retention_days", "programme")  # fmt: skip
        created = await directory.client.post(
            "/agreements",
            json={
                **{k: old[k] for k in fields},
                "series_id": old["series_id"],
                "valid_from": "2027-01-01T00:00:00Z",
                "valid_until": "2028-01-01T00:00:00Z",
            },
            headers=directory.admin,
        )
        assert created.status_code == 201, created.text
        kept = created.json()["cost_shares"]
        terms = {(r["payer_org_id"], r["basis"], r["percentage"], r["fixed_amount"], r["cap"])
                 for r in kept}  # fmt: skip
        assert terms == {
            (r["payer_org_id"], r["basis"], r["percentage"], r["fixed_amount"], r["cap"])
            for r in old["cost_shares"]
        }
        assert {r["agreement_id"] for r in kept} == {created.json()["id"]}
        assert not {r["id"] for r in kept} & {r["id"] for r in old["cost_shares"]}
        assert len(await rules(directory)) == 3  # the old version keeps its own


class TestWhoReads:
    async def test_parties_read_all_rules_a_payer_only_its_own_others_nothing(
        self, directory: Directory
    ) -> None:
        for role, org in (("host_office", HOST_OFFICE_ORG), ("provider", HEALTH_PROVIDER_ORG)):
            response = await directory.client.get(SHARES, headers=directory.as_role(role, org))
            assert len(response.json()["items"]) == 3
        payer = await directory.client.get(
            SHARES, headers=directory.as_role("coordinator", COORDINATOR_ORG)
        )
        assert payer.status_code == 200
        assert [r["payer_org_id"] for r in payer.json()["items"]] == [str(COORDINATOR_ORG)]
        other = next(r for r in await rules(directory) if r["payer_org_id"] != str(COORDINATOR_ORG))
        hidden = await directory.client.get(
            f"{SHARES}/{other['id']}", headers=directory.as_role("coordinator", COORDINATOR_ORG)
        )
        assert hidden.status_code == 404
        stranger = directory.as_role("host_office", SECOND_HOST_OFFICE_ORG)
        assert (await directory.client.get(SHARES, headers=stranger)).status_code == 404
        agreement = await directory.client.get(
            f"/agreements/{BERLIN_LAGOS_AGREEMENT}", headers=stranger
        )
        assert agreement.status_code == 404

    async def test_the_list_pages_with_a_cursor(self, directory: Directory) -> None:
        first = await directory.client.get(SHARES, params={"limit": 2}, headers=directory.admin)
        body = first.json()
        assert len(body["items"]) == 2 and body["next_cursor"]
        rest = await directory.client.get(
            SHARES, params={"limit": 2, "cursor": body["next_cursor"]}, headers=directory.admin
        )
        assert len(rest.json()["items"]) == 1 and rest.json()["next_cursor"] is None
