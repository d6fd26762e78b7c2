"""The demo directory seed repairs what the demo journey relies on when an admin changed it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.directory.app import create_app
from services.directory.seed import seed_demo
from services.directory.settings import DirectorySettings
from shared.demo import (
    ADMIN_ORG,
    COORDINATOR_ORG,
    DEMO_HEALTH_SERVICE,
    DEMO_KEYS_DIR,
    HEALTH_PROVIDER_ORG,
    MENTAL_HEALTH_ORG,
)
from shared.testing import TokenMinter


def _demo_key(org: object) -> dict[str, Any]:
    key: dict[str, Any] = orjson.loads((DEMO_KEYS_DIR / f"{org}.jwk").read_bytes())
    return key


@pytest.fixture
async def seeded(
    test_settings: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> DirectorySettings:
    """A fresh directory with the demo seeded once, its private keys under tmp_path/var/."""
    monkeypatch.chdir(tmp_path)
    settings: DirectorySettings = test_settings(DirectorySettings)
    await seed_demo(settings)
    return settings


@pytest.fixture
def admin(token_minter: TokenMinter) -> dict[str, str]:
    """Authorization header of the directory steward."""
    return token_minter.headers(roles=["admin"], org=str(ADMIN_ORG), client="admin-client")


@pytest.mark.promise(11)
class TestReseedingRepairsTheDemoDirectory:
    async def test_coordinator_keys_and_accepting_flag_are_restored(
        self, seeded: DirectorySettings, admin: dict[str, str], in_process: Any
    ) -> None:
        settings = seeded
        clinic_kid = _demo_key(HEALTH_PROVIDER_ORG)["kid"]
        ngo_kid = _demo_key(MENTAL_HEALTH_ORG)["kid"]
        async with in_process(create_app(settings)) as http:
            changes = [
                (f"/organisations/{HEALTH_PROVIDER_ORG}", {"coordinator_org_id": None}),
                (f"/organisations/{HEALTH_PROVIDER_ORG}/keys/{clinic_kid}", {"status": "revoked"}),
                (f"/organisations/{MENTAL_HEALTH_ORG}/keys/{ngo_kid}", {"status": "retired"}),
                (f"/services/{DEMO_HEALTH_SERVICE}", {"accepting_referrals": False}),
            ]
            for path, body in changes:
                response = await http.patch(path, json=body, headers=admin)
                assert response.status_code == 200, response.text
        await seed_demo(settings)
        async with in_process(create_app(settings)) as http:
            clinic = (await http.get(f"/organisations/{HEALTH_PROVIDER_ORG}", headers=admin)).json()
            assert clinic["coordinator_org_id"] == str(COORDINATOR_ORG)
            service = (await http.get(f"/services/{DEMO_HEALTH_SERVICE}", headers=admin)).json()
            assert service["accepting_referrals"] is True
            published: dict[object, dict[str, Any]] = {}
            for org in (HEALTH_PROVIDER_ORG, MENTAL_HEALTH_ORG):
                jwks = (await http.get(f"/organisations/{org}/jwks", headers=admin)).json()
                published[org] = {key["kid"]: key for key in jwks["keys"]}
                private = _demo_key(org)
                assert published[org][private["kid"]]["x"] == private["x"]
                assert published[org][private["kid"]]["y"] == private["y"]
        assert clinic_kid not in published[HEALTH_PROVIDER_ORG]
        assert _demo_key(MENTAL_HEALTH_ORG)["kid"] == ngo_kid

    async def test_a_key_file_lost_since_seeding_is_replaced_by_one_that_is_registered(
        self, seeded: DirectorySettings, admin: dict[str, str], in_process: Any
    ) -> None:
        settings = seeded
        (DEMO_KEYS_DIR / f"{HEALTH_PROVIDER_ORG}.jwk").unlink()
        await seed_demo(settings)
        private = _demo_key(HEALTH_PROVIDER_ORG)
        async with in_process(create_app(settings)) as http:
            url = f"/organisations/{HEALTH_PROVIDER_ORG}/jwks"
            jwks = (await http.get(url, headers=admin)).json()
        published = {key["kid"]: key for key in jwks["keys"]}
        assert published[private["kid"]]["x"] == private["x"]
