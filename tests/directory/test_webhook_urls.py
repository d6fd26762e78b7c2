"""Webhook URLs the exchange would call: refused at registration when they reach inside."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from services.directory.app import create_app
from services.directory.settings import DirectorySettings
from shared.demo import HEALTH_PROVIDER_ORG
from tests.directory.conftest import Directory
from tests.directory.test_crud import NEW_ORG

UNSAFE = "urn:refex:problem:unsafe-partner-url"
INSIDE = [
    ("http://127.0.0.1:8002/consents", "loopback"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ("https://10.0.0.5/hook", "RFC 1918"),
    ("https://2130706433/hook", "loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://localhost:8001/organisations", "own services"),
    ("https://localhost:9443/hook", "loopback"),
    ("https://100.64.0.9/hook", "carrier-grade NAT"),
    ("https://[fd00::5]/hook", "RFC 4193"),
    ("http://hooks.partner.example/refex", "https"),
]


def assert_names_the_field(problem: dict[str, Any], rule: str) -> None:
    assert problem["type"] == UNSAFE
    assert problem["status"] == 422
    assert "'webhook_url'" in problem["detail"]
    assert rule in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "webhook_url"]


class TestRegistration:
    @pytest.mark.promise(3)
    @pytest.mark.parametrize(("url", "rule"), INSIDE)
    async def test_an_inside_webhook_is_refused_and_nothing_stored(
        self, directory: Directory, url: str, rule: str
    ) -> None:
        before = await directory.snapshot("/organisations?country=GH")
        response = await directory.client.post(
            "/organisations", json={**NEW_ORG, "webhook_url": url}, headers=directory.admin
        )
        assert response.status_code == 422, response.text
        assert_names_the_field(response.json(), rule)
        assert await directory.snapshot("/organisations?country=GH") == before

    @pytest.mark.promise(3)
    async def test_a_name_that_resolves_inside_is_refused(
        self, directory: Directory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real = socket.getaddrinfo

        def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host == "intranet.partner.example":
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.7.7", port))]
            return real(host, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", resolve)
        response = await directory.client.post(
            "/organisations",
            json={**NEW_ORG, "webhook_url": "https://intranet.partner.example/hook"},
            headers=directory.admin,
        )
        assert response.status_code == 422, response.text
        assert_names_the_field(response.json(), "RFC 1918")
        listing = await directory.snapshot("/organisations?country=GH")
        assert listing[1]["items"] == []

    async def test_a_public_https_webhook_is_stored(self, directory: Directory) -> None:
        response = await directory.client.post(
            "/organisations",
            json={**NEW_ORG, "webhook_url": "https://Hooks.Partner.example/refex"},
            headers=directory.admin,
        )
        assert response.status_code == 201, response.text
        assert response.json()["webhook_url"] == "https://hooks.partner.example/refex"


class TestProviderChangesItsWebhook:
    @pytest.mark.promise(3)
    @pytest.mark.parametrize(("url", "rule"), INSIDE[:3])
    async def test_an_inside_webhook_is_refused_and_the_old_one_kept(
        self, directory: Directory, url: str, rule: str
    ) -> None:
        path = f"/organisations/{HEALTH_PROVIDER_ORG}"
        before = await directory.snapshot(path)
        response = await directory.client.patch(
            path,
            json={"webhook_url": url},
            headers={
                **directory.as_role("provider", HEALTH_PROVIDER_ORG),
                "If-Match": f'"{before[1]["row_version"]}"',
            },
        )
        assert response.status_code == 422, response.text
        assert_names_the_field(response.json(), rule)
        assert await directory.snapshot(path) == before


class TestPrivateAddressesForDevelopment:
    async def test_the_setting_allows_loopback_but_never_metadata_or_own_services(
        self, test_settings: Any, in_process: Any, token_minter: Any
    ) -> None:
        settings = test_settings(DirectorySettings, partner_urls_allow_private=True)
        async with in_process(create_app(settings)) as client:
            directory = Directory(client, token_minter, settings)
            allowed = await client.post(
                "/organisations",
                json={**NEW_ORG, "webhook_url": "https://127.0.0.1:9443/hook"},
                headers=directory.admin,
            )
            assert allowed.status_code == 201, allowed.text
            for url, rule in (
                ("https://169.254.169.254/latest/", "link-local"),
                (f"https://127.0.0.1:{settings.port}/organisations", "own services"),
            ):
                refused = await client.post(
                    "/organisations", json={**NEW_ORG, "webhook_url": url}, headers=directory.admin
                )
                assert refused.status_code == 422, refused.text
                assert_names_the_field(refused.json(), rule)
