"""The two sides of every service boundary use the same contract model, so they cannot drift.

Each provider's route answers (and reads its request) with the model in `shared/contracts/` that
the consumer's client reads (and sends); providers refuse members the contract does not name,
consumers ignore members a newer provider added.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from services.consent.app import create_app as create_consent
from services.consent.settings import ConsentSettings
from services.directory.app import create_app as create_directory
from services.directory.settings import DirectorySettings
from services.referral.app import create_app as create_referral
from services.referral.settings import ReferralSettings
from shared.contracts import UnreadableAnswer, read_answer
from shared.contracts.consent import (
    BasisCheck,
    BasisStatus,
    Decision,
    DecisionRequest,
    DisclosureCreate,
    DisclosureRecorded,
    WithdrawalNotice,
    WithdrawalResult,
)
from shared.contracts.directory import (
    AgreementRead,
    Jwks,
    OrganisationRead,
    PublicJwk,
    Resolution,
    ServiceRead,
)
from shared.pagination import Page

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT_ONLY: dict[str, Any] = {"environment": "development", "database_url": ""}
APPS: dict[str, FastAPI] = {
    "directory": create_directory(DirectorySettings(**DOCUMENT_ONLY)),
    "consent": create_consent(ConsentSettings(**DOCUMENT_ONLY)),
    "referral": create_referral(ReferralSettings(**DOCUMENT_ONLY)),
}
# (provider, method, path) -> (request body contract or None, answer contract)
BOUNDARY: dict[tuple[str, str, str], tuple[type[BaseModel] | None, type[BaseModel]]] = {
    ("directory", "GET", "/agreements/resolve"): (None, Resolution),
    ("directory", "GET", "/agreements/{agreement_id}"): (None, AgreementRead),
    ("directory", "GET", "/organisations/{org_id}"): (None, OrganisationRead),
    ("directory", "GET", "/organisations/{org_id}/jwks"): (None, Jwks),
    ("directory", "GET", "/organisations/{org_id}/members"): (None, Page[OrganisationRead]),
    ("directory", "GET", "/coordinators/resolve"): (None, OrganisationRead),
    ("directory", "GET", "/services/{service_id}"): (None, ServiceRead),
    ("consent", "POST", "/decisions"): (DecisionRequest, Decision),
    ("consent", "POST", "/disclosures"): (DisclosureCreate, DisclosureRecorded),
    ("consent", "POST", "/basis-checks"): (BasisCheck, BasisStatus),
    ("referral", "POST", "/internal/consent-withdrawals"): (WithdrawalNotice, WithdrawalResult),
}


def api_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute with its full path, through included routers."""
    for candidate in routes:
        if isinstance(candidate, APIRoute):
            yield prefix + candidate.path, candidate
        elif hasattr(candidate, "original_router"):  # an included router (FastAPI >= 0.165)
            inner = prefix + candidate.include_context.prefix
            yield from api_routes(candidate.original_router.routes, inner)


def route(provider: str, method: str, path: str) -> APIRoute:
    for full_path, candidate in api_routes(APPS[provider].routes):
        if full_path == path and method in candidate.methods:
            return candidate
    raise AssertionError(f"{provider} has no route {method} {path}")


def body_model(api_route: APIRoute) -> Any:
    fields = api_route.dependant.body_params
    assert len(fields) == 1, f"{api_route.path} takes {len(fields)} bodies"
    return fields[0].field_info.annotation


class TestProvidersAnswerWithTheContract:
    @pytest.mark.parametrize(("provider", "method", "path"), list(BOUNDARY))
    def test_the_route_answers_with_the_contract_model(
        self, provider: str, method: str, path: str
    ) -> None:
        answer = BOUNDARY[(provider, method, path)][1]
        model = route(provider, method, path).response_model
        assert isinstance(model, type) and issubclass(model, answer), (path, model)

    @pytest.mark.parametrize(
        ("provider", "method", "path"), [key for key, (body, _) in BOUNDARY.items() if body]
    )
    def test_the_route_reads_its_request_with_the_contract_model(
        self, provider: str, method: str, path: str
    ) -> None:
        request = BOUNDARY[(provider, method, path)][0]
        assert request is not None
        model = body_model(route(provider, method, path))
        assert isinstance(model, type) and issubclass(model, request), (path, model)


NOTICE = {
    "event_id": str(uuid.uuid4()),
    "consent_id": str(uuid.uuid4()),
    "subject_ref": "hof-2026-7f3a9c1e5b2d4a60",
    "sender_org_id": str(uuid.uuid4()),
    "withdrawn_at": "2026-11-25T08:00:00Z",
    "reason": "returnee_request",
}


class TestBothSidesOfTheContract:
    def test_a_provider_cannot_build_an_answer_with_a_member_the_contract_lacks(self) -> None:
        with pytest.raises(ValidationError, match="Extra inputs"):
            WithdrawalNotice.model_validate(NOTICE | {"subject_name": "CANARY-Amina"})
        with pytest.raises(ValidationError, match="Extra inputs"):
            BasisStatus(in_force=True, renamed_field=None)  # type: ignore[call-arg]

    def test_a_consumer_ignores_members_a_newer_provider_added_at_any_depth(self) -> None:
        answer = {
            "keys": [
                {"kty": "OKP", "crv": "X25519", "x": "abc", "kid": "k1", "use": "enc", "new": 1}
            ],
            "added_later": True,
        }
        jwks = read_answer(Jwks, answer)
        assert jwks.keys == [PublicJwk(kty="OKP", crv="X25519", x="abc", kid="k1")]
        assert jwks.keys[0].as_jwk() == {
            "kty": "OKP",
            "crv": "X25519",
            "x": "abc",
            "kid": "k1",
            "use": "enc",
        }

    def test_a_consumer_refuses_an_answer_missing_a_member(self) -> None:
        with pytest.raises(UnreadableAnswer):
            read_answer(WithdrawalResult, {"cancelled": []})

    def test_the_notice_survives_the_round_trip_through_json(self) -> None:
        notice = WithdrawalNotice.model_validate(NOTICE)
        assert notice.withdrawn_at == datetime(2026, 11, 25, 8, tzinfo=UTC)
        assert read_answer(WithdrawalNotice, notice.model_dump(mode="json")) == notice


def source(path: Path) -> str:
    return path.read_text()


class TestNoUntypedSeams:
    @pytest.mark.parametrize("client", sorted((ROOT / "services").glob("*/clients.py")))
    def test_no_client_passes_a_bare_dict_across_a_boundary(self, client: Path) -> None:
        assert "dict[str, Any]" not in source(client)

    def test_the_referral_service_reads_no_upstream_field_by_string_key(self) -> None:
        readers = [
            "clients.py",
            "creation.py",
            "basis.py",
            "encryption.py",
            "open_referrals.py",
            "status_changes.py",
            "notes.py",
            "sla.py",
        ]
        # a read, not the assignment of a query parameter of our own
        pattern = re.compile(r"""\w\[["'][a-z_]+["']\](?!\s*=)|\.get\(["'][a-z_]+["']""")
        offenders = [
            f"{name}: {match.group(0)}"
            for name in readers
            for match in pattern.finditer(source(ROOT / "services" / "referral" / name))
        ]
        assert offenders == []
