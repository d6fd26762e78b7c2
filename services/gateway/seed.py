"""Demo API clients: one per role, a second host office, and the services' own clients; and
one demo person per role, signing in with the demo password.

Demo only: the credentials are written in clear to var/demo/ so the README and `refex demo` can
use them. Re-running keeps existing clients and their secrets while the file still matches, and
repairs what an admin changed since (disabled, secret rotated, roles or organisation changed), so
the printed credentials always work.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import repository, users
from services.gateway import service as registry
from services.gateway.hashing import hash_password, verify_password, verify_secret
from services.gateway.keys import load_kek
from services.gateway.models import ApiClient, UserAccount
from services.gateway.schemas import ClientCreate, UserCreate
from services.gateway.settings import GatewaySettings
from services.gateway.vault import PeopleVault
from shared.clock import utcnow
from shared.db import Database
from shared.demo import (
    DEMO_CLIENTS_FILE,
    DEMO_ROLE_ORGS,
    DEMO_USER_PASSWORD,
    DEMO_USERS,
    PLATFORM_ORG,
    SECOND_HOST_OFFICE_ORG,
    SERVICE_CLIENTS_FILE,
)
from shared.vocabulary import Role

# key in the credentials file → (client id, organisation, role)
DemoSpec = tuple[str, uuid.UUID, str]
DEMO_CLIENTS: dict[str, DemoSpec] = {
    **{role: (f"demo-{role.replace('_', '-')}", org, role) for role, org in DEMO_ROLE_ORGS.items()},
    "host_office_2": ("demo-host-office-2", SECOND_HOST_OFFICE_ORG, "host_office"),
}
SERVICE_CLIENTS: dict[str, DemoSpec] = {
    name: (f"svc-{name}", PLATFORM_ORG, "service") for name in ("referral", "consent")
}


def _read_secrets(path: Path) -> dict[str, str]:
    """Return client id → secret from an earlier run's file, if any."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {
        str(entry.get("client_id")): str(entry.get("client_secret"))
        for entry in entries.values()
        if isinstance(entry, dict)
    }


def _write(path: Path, content: dict[str, dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle, indent=2)


def _repair(client: ApiClient, org: uuid.UUID, role: str) -> None:
    """Give a demo client back its organisation and role and let it obtain tokens again."""
    if client.enabled and client.org_id == org and list(client.roles) == [role]:
        return
    client.enabled = True
    client.org_id = org
    client.roles = [role]
    client.updated_at = utcnow()


async def _ensure(
    session: AsyncSession, spec: DemoSpec, known_secret: str | None, pepper: bytes | None
) -> str:
    """Create or repair the client, keep the known secret while it verifies, else rotate."""
    client_id, org, role = spec
    client = await repository.get_client(session=session, client_id=client_id)
    if client is None:
        client_in = ClientCreate(
            client_id=client_id, name=f"Demo {role.replace('_', ' ')}", org_id=org, roles=[role]
        )
        _, secret = await registry.create_client(
            session=session, client_in=client_in, pepper=pepper
        )
        return secret
    _repair(client, org, role)
    if known_secret and await verify_secret(client.secret_hash, known_secret, pepper=pepper):
        return known_secret
    _, secret = await registry.rotate_secret(session=session, client_id=client_id, pepper=pepper)
    return secret


async def _seed_group(
    database: Database,
    specs: dict[str, DemoSpec],
    path: Path,
    *,
    with_org: bool,
    pepper: bytes | None,
) -> None:
    known = _read_secrets(path)
    written: dict[str, dict[str, str]] = {}
    async with database.sessionmaker.begin() as session:
        for key, spec in specs.items():
            secret = await _ensure(session, spec, known.get(spec[0]), pepper)
            written[key] = {"client_id": spec[0], "client_secret": secret}
            if with_org:
                written[key]["org_id"] = str(spec[1])
    _write(path, written)


async def _repair_user(user: UserAccount, org: uuid.UUID, role: str) -> None:
    """Give a demo person back their organisation, role and password, unlocked, one factor."""
    user.enabled, user.org_id, user.roles = True, org, [role]
    user.failed_attempts, user.locked_until = 0, None
    user.totp_secret_sealed, user.totp_last_step = None, None
    if not await verify_password(user.password_hash, DEMO_USER_PASSWORD):
        user.password_hash = hash_password(DEMO_USER_PASSWORD)
        user.password_changed_at = utcnow()
    user.updated_at = utcnow()


async def _seed_users(database: Database, vault: PeopleVault) -> None:
    async with database.sessionmaker.begin() as session:
        for role, (email, org) in DEMO_USERS.items():
            user = await repository.get_user_by_email(
                session=session, email_index=vault.email_index(email)
            )
            if user is not None:
                await _repair_user(user, org, role)
                continue
            user_in = UserCreate(
                org_id=org,
                roles=[Role(role)],
                email=email,
                display_name=f"Demo {role.replace('_', ' ')}",
                password=DEMO_USER_PASSWORD,
            )
            await users.create_user(session=session, vault=vault, user_in=user_in)


async def seed_demo(settings: GatewaySettings) -> None:
    """Create the demo and service clients and write their credentials under var/demo/; create
    or repair the demo people."""
    database = Database(settings.database_url, pool_size=1)
    try:
        pepper = settings.secret_pepper()
        await _seed_group(database, DEMO_CLIENTS, DEMO_CLIENTS_FILE, with_org=True, pepper=pepper)
        await _seed_group(
            database, SERVICE_CLIENTS, SERVICE_CLIENTS_FILE, with_org=False, pepper=pepper
        )
        await _seed_users(database, PeopleVault(load_kek(settings)))
    finally:
        await database.dispose()
