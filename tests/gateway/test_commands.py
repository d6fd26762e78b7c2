"""`refex admin create-client` prints working credentials once."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from services.cli import app as refex
from services.gateway.app import create_app
from shared.demo import HOST_OFFICE_ORG, PLATFORM_ORG
from tests.gateway.conftest import KEK

runner = CliRunner()


@pytest.fixture
def gateway_db(fresh_database: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> str:
    url = fresh_database("gateway")
    monkeypatch.setenv("REFEX_GATEWAY_DATABASE_URL", url)
    monkeypatch.setenv("REFEX_ENVIRONMENT", "development")
    return url


class TestCreateClientCommand:
    def test_it_prints_credentials_that_get_a_token(self, gateway_db: str, in_process: Any) -> None:
        result = runner.invoke(
            refex,
            ["admin", "create-client", "--org", str(HOST_OFFICE_ORG), "--roles", "host_office"],
        )
        assert result.exit_code == 0, result.output
        client_id = re.search(r"client_id:\s+(\S+)", result.output)
        secret = re.search(r"client_secret:\s+(\S+)", result.output)
        assert client_id and secret

        import asyncio

        from services.gateway.settings import GatewaySettings

        async def token_status() -> int:
            # The same environment as the command: its secret is an HMAC under the dev pepper.
            settings = GatewaySettings(
                environment="development", database_url=gateway_db, key_encryption_key=KEK
            )
            async with in_process(create_app(settings)) as http:
                response = await http.post(
                    "/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client_id.group(1), secret.group(1)),
                )
                return response.status_code

        assert asyncio.run(token_status()) == 200

    def test_a_deployment_can_register_a_secret_it_already_holds(
        self, gateway_db: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("REFERRAL_CLIENT_SECRET", "s" * 40)
        args = ["--org", str(PLATFORM_ORG), "--roles", "service", "--client-id", "referral-service"]
        given = runner.invoke(
            refex, ["admin", "create-client", *args, "--secret-env", "REFERRAL_CLIENT_SECRET"]
        )
        assert given.exit_code == 0, given.output
        assert "s" * 40 in given.output
        monkeypatch.setenv("SHORT_SECRET", "short")
        short = runner.invoke(
            refex, ["admin", "create-client", *args, "--secret-env", "SHORT_SECRET"]
        )
        assert short.exit_code == 2

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--org", "not-a-uuid", "--roles", "host_office"], "--org must be"),
            (["--org", str(HOST_OFFICE_ORG), "--roles", "pilot"], "roles"),
        ],
    )
    def test_bad_input_exits_with_one_line_saying_what_to_fix(
        self, gateway_db: str, args: list[str], message: str
    ) -> None:
        result = runner.invoke(refex, ["admin", "create-client", *args])
        assert result.exit_code == 2
        assert message in result.output


class TestCreateUserCommand:
    def test_it_prints_a_generated_password_that_signs_in(
        self, gateway_db: str, in_process: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("REFEX_GATEWAY_KEY_ENCRYPTION_KEY", KEK)
        email = "new.person@office.example"
        result = runner.invoke(
            refex,
            ["admin", "create-user", "--org", str(HOST_OFFICE_ORG), "--roles", "host_office",
             "--email", email, "--name", "New Person"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        password = re.search(r"password:\s+(\S+)", result.output)
        assert re.search(r"user_id:\s+[0-9a-f-]{36}", result.output) and password

        import asyncio

        from services.gateway.settings import GatewaySettings
        from tests.gateway.people import tokens_for

        async def sign_in() -> dict[str, Any]:
            settings = GatewaySettings(
                environment="development", database_url=gateway_db, key_encryption_key=KEK
            )
            async with in_process(create_app(settings)) as http:
                body: dict[str, Any] = await tokens_for(http, email, password.group(1))
                return body

        assert asyncio.run(sign_in())["scope"] == "host_office"
        again = runner.invoke(
            refex,
            ["admin", "create-user", "--org", str(HOST_OFFICE_ORG), "--roles", "provider",
             "--email", email.upper(), "--name", "Someone Else"],
        )  # fmt: skip
        assert again.exit_code == 1 and "already exists" in again.output

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--email", "not-an-address"], "email"),
            (["--email", "a@b.example", "--roles", "service"], "'service' role"),
        ],
    )
    def test_bad_input_exits_saying_what_to_fix(
        self, gateway_db: str, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
    ) -> None:
        monkeypatch.setenv("REFEX_GATEWAY_KEY_ENCRYPTION_KEY", KEK)
        base = ["--org", str(HOST_OFFICE_ORG), "--roles", "host_office", "--name", "X"]
        result = runner.invoke(refex, ["admin", "create-user", *base, *args])
        assert result.exit_code in (1, 2)
        assert message in result.output
