"""`refex admin ...`: manage API clients from the command line."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from services.gateway.schemas import ClientCreate
from services.gateway.settings import GatewaySettings
from shared.db import Database
from shared.errors import ServiceError, validation_message
from shared.i18n import Message, gettext, localize

app = typer.Typer(help="Administer API clients (stored in the gateway's database).")
console = Console()
err = Console(stderr=True)
MIN_GIVEN_SECRET = 32


def _roles(values: list[str]) -> list[str]:
    return [role.strip() for value in values for role in value.split(",") if role.strip()]


def _client_in(org: str, roles: list[str], name: str, client_id: str | None) -> ClientCreate:
    try:
        org_id = uuid.UUID(org)
    except ValueError:
        problem = gettext("--org must be an organisation UUID")
        err.print(f"refex admin create-client: {problem}", markup=False)
        raise typer.Exit(2) from None
    try:
        return ClientCreate(client_id=client_id, name=name, org_id=org_id, roles=_roles(roles))
    except ValidationError as error:
        item = error.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in item["loc"])
        problem = validation_message(item)
        err.print(f"refex admin create-client: {where}: {problem}", markup=False)
        raise typer.Exit(2) from None


@app.command("create-client")
def create_client(
    org: Annotated[str, typer.Option(help="Organisation id (UUID) the client acts for.")],
    roles: Annotated[
        list[str], typer.Option(help="Role(s), repeated or comma-separated, e.g. host_office.")
    ],
    name: Annotated[str, typer.Option(help="A name people recognise.")] = "API client",
    client_id: Annotated[str | None, typer.Option(help="Choose the id (else generated).")] = None,
    secret_env: Annotated[
        str | None,
        typer.Option(help="Register the secret held in this environment variable instead."),
    ] = None,
) -> None:
    """Register an API client and print its credentials once."""
    from services.registry import load_settings

    client_in = _client_in(org, roles, name, client_id)
    given = _given_secret(secret_env)
    settings = load_settings("gateway")
    assert isinstance(settings, GatewaySettings)
    try:
        made_id, secret = asyncio.run(_create(settings, client_in, given))
    except ServiceError as error:
        err.print(f"refex admin create-client: {localize(error.detail)}", markup=False)
        raise typer.Exit(1) from None
    console.print(f"client_id:     {made_id}", markup=False, highlight=False)
    console.print(f"client_secret: {secret}", markup=False, highlight=False)
    console.print(gettext("The secret is shown only now: store it in your system's secret store."))


def _given_secret(variable: str | None) -> str | None:
    """Read a deployment-provided secret (e.g. a service's own client secret)."""
    if variable is None:
        return None
    secret = os.environ.get(variable, "")
    if len(secret) < MIN_GIVEN_SECRET:
        problem = Message(
            "{variable} must hold a secret of at least {length} random characters",
            variable=variable,
            length=MIN_GIVEN_SECRET,
        )
        err.print(f"refex admin create-client: {problem}", markup=False)
        raise typer.Exit(2)
    return secret


async def _create(
    settings: GatewaySettings, client_in: ClientCreate, given: str | None
) -> tuple[str, str]:
    from services.gateway import service as registry

    database = Database(settings.database_url, pool_size=1)
    try:
        async with database.sessionmaker.begin() as session:
            client, secret = await registry.create_client(
                session=session,
                client_in=client_in,
                secret=given,
                pepper=settings.secret_pepper(),
            )
            return client.client_id, secret
    finally:
        await database.dispose()
