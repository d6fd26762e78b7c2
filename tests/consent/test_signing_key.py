"""The ledger's signing key: required in production, generated under var/ in development."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from services.cli import app as cli
from services.consent.app import create_app
from services.consent.settings import ConsentSettings
from services.consent.signing import (
    SigningKeyError,
    load_signer,
    signature_is_valid,
)


async def test_production_refuses_to_start_without_a_key() -> None:
    app = create_app(ConsentSettings(environment="production"))
    with pytest.raises(SigningKeyError) as error:
        async with LifespanManager(app):
            pass
    assert "REFEX_CONSENT_LEDGER_SIGNING_KEY is required in production" in str(error.value)


def test_production_refuses_a_placeholder_key() -> None:
    with pytest.raises(ValidationError) as error:
        ConsentSettings(environment="production", ledger_signing_key=SecretStr("changeme"))
    assert "placeholder" in str(error.value)


def test_development_generates_a_private_key_file_once(tmp_path: Path) -> None:
    key_file = tmp_path / "var" / "consent" / "ledger-signing-key"
    settings = ConsentSettings(environment="development", ledger_signing_key_file=key_file)
    first, second = load_signer(settings), load_signer(settings)
    assert first.key_id == second.key_id
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_generated_key_signs_verifiable_tree_heads() -> None:
    output = CliRunner().invoke(cli, ["ledger", "keygen"]).output
    key = json.loads(output)["REFEX_CONSENT_LEDGER_SIGNING_KEY"]
    settings = ConsentSettings(environment="production", ledger_signing_key=SecretStr(key))
    signer = load_signer(settings)
    head = {"tree_size": 3, "root_hash": b"\x07" * 32, "timestamp_ms": 1_795_600_000_000}
    signature = signer.sign(**head)
    assert signature_is_valid(public_key=signer.public_key, signature=signature, **head)
    assert not signature_is_valid(
        public_key=signer.public_key, signature=signature, **{**head, "tree_size": 4}
    )


def test_a_malformed_key_says_how_to_make_one() -> None:
    settings = ConsentSettings(
        environment="production", ledger_signing_key=SecretStr("not base64!")
    )
    with pytest.raises(SigningKeyError) as error:
        load_signer(settings)
    assert "refex ledger keygen" in str(error.value)
    assert "not base64" not in str(error.value)
