"""`refex admin ...`: manage API clients and people's accounts from the command line."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from services.gateway.schemas import ClientCreate, UserCreate
from services.gateway.settings import GatewaySettings
from shared.db import Database
from shared.errors import ServiceError
from shared.i18n import Message, localize

app = typer.Typer(help="Administer API clients and accounts (stored in the gateway's database).")
console = Console()
err = Console(stderr=True)
MIN_GIVEN_SECRET = 32
Input = TypeVar("Input", bound=BaseModel)


def _roles(values: list[str]) -> list[str]:
    return [role.strip() for value in values for role in value.split(",") if role.strip()]


def _client_in(org: str, roles: list[str], name: str, client_id: str | None) -> ClientCreate:
    try:
        org_id = uuid.UUID(org)
    except ValueError:
        err.print("refex admin create-client: --org must be an organisation UUID", markup=False)
        raise typer.Exit(2) from None
    data = {"client_id": client_id, "name": name, "org_id": org_id, "roles": _roles(roles)}
    return _validated("create-client", ClientCreate, data)


def _validated(command: str, model: type[Input], data: dict[str, Any]) -> Input:
    """Build the command's input, or exit 2 with one line saying which option is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        item = error.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in item["loc"])
        err.print(f"refex admin {command}: {where}: {item['msg']}", markup=False)
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
        err.print(f"refex admin create-client: {error.detail}", markup=False)
        raise typer.Exit(1) from None
    console.print(f"client_id:     {made_id}", markup=False, highlight=False)
    console.print(f"client_secret: {secret}", markup=False, highlight=False)
    console.print("The secret is shown only now: store it in your system's secret store.")


def _given_secret(variable: str | None) -> str | None:
    """Read a deployment-provided secret (e.g. a service's own client secret)."""
    if variable is None:
        return None
    secret = os.environ.get(variable, "")
    if len(secret) < MIN_GIVEN_SECRET:
        err.print(
            f"refex admin create-client: {variable} must hold a secret of at least "
            f"{MIN_GIVEN_SECRET} random characters",
            markup=False,
        )
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


def _user_in(org: str, roles: list[str], email: str, name: str, password: str | None) -> UserCreate:
    data = {"org_id": org, "roles": _roles(roles), "email": email, "display_name": name,
            "password": password}  # fmt: skip
    return _validated("create-user", UserCreate, data)


@app.command("create-user")
def create_user(
    org: Annotated[str, typer.Option(help="Organisation id (UUID) the person works for.")],
    roles: Annotated[
        list[str], typer.Option(help="Role(s), repeated or comma-separated, e.g. host_office.")
    ],
    email: Annotated[str, typer.Option(help="The e-mail address the person signs in with.")],
    name: Annotated[str, typer.Option(help="The name shown to colleagues.")],
    password_env: Annotated[
        str | None,
        typer.Option(help="Set the password held in this environment variable (else generated)."),
    ] = None,
) -> None:
    """Create a person's account and print its id (and its password, if generated, once)."""
    from services.registry import load_settings

    password = os.environ.get(password_env, "") if password_env else None
    user_in = _user_in(org, roles, email, name, password)
    settings = load_settings("gateway")
    assert isinstance(settings, GatewaySettings)
    try:
        user_id, generated = asyncio.run(_create_user(settings, user_in))
    except ServiceError as error:
        err.print(f"refex admin create-user: {localize(error.detail)}", markup=False)
        raise typer.Exit(1) from None
    console.print(f"user_id:  {user_id}", markup=False, highlight=False)
    if generated:
        console.print(f"password: {generated}", markup=False, highlight=False)
        console.print(
            Message("The password is shown only now: pass it on to the person securely.").render()
        )


async def _create_user(settings: GatewaySettings, user_in: UserCreate) -> tuple[str, str | None]:
    from services.gateway import users
    from services.gateway.keys import load_kek
    from services.gateway.vault import PeopleVault

    vault = PeopleVault(load_kek(settings))
    database = Database(settings.database_url, pool_size=1)
    try:
        async with database.sessionmaker.begin() as session:
            user, generated = await users.create_user(session=session, vault=vault, user_in=user_in)
            return str(user.user_id), generated
    finally:
        await database.dispose()
