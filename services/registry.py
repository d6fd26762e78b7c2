"""The one list of refex's services; every other list of them is derived from this one.

Entries name their code by import strings, resolved on use: importing the registry imports no
service and nothing beyond the standard library, so the container health check stays light and
`refex up` decides itself when to import the apps (before forking, docs/adr/0002).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from shared.settings import ServiceSettings

DemoSeeder = Callable[[Any], Coroutine[Any, Any, None]]


def _resolve(target: str) -> Any:
    """Import `module:attribute` and return the attribute."""
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Service:
    """One service: what the command line, the stack, the docs and the tests need of it."""

    name: str
    settings: str  # "module:Class", a ServiceSettings subclass with prefix REFEX_<NAME>_
    default_port: int
    app_factory: str  # "module:function", create_app(settings=None) -> FastAPI
    demo_seeder: str | None = None  # "module:function", async, takes the service's settings
    migrations: str | None = None  # its Alembic history: a section of alembic.ini

    @property
    def app_module(self) -> str:
        """The module holding the app factory (what `refex up` imports before forking)."""
        return self.app_factory.split(":")[0]

    def settings_class(self) -> type[ServiceSettings]:
        """Import this service's settings class (and nothing of the other services)."""
        cls: type[ServiceSettings] = _resolve(self.settings)
        return cls

    def create_app(self, settings: ServiceSettings | None = None) -> FastAPI:
        """Build this service's app with `settings` (default: read from the environment)."""
        factory: Callable[[ServiceSettings | None], FastAPI] = _resolve(self.app_factory)
        return factory(settings)

    def seeder(self) -> DemoSeeder:
        """Import the function that loads this service's demo data (see WITH_DEMO_DATA)."""
        if self.demo_seeder is None:
            raise LookupError(f"the {self.name} service has no demo data")
        seed: DemoSeeder = _resolve(self.demo_seeder)
        return seed


# The gateway, the only public entry, first; this order is the order of the docs.
SERVICES: tuple[Service, ...] = (
    Service(
        name="gateway",
        settings="services.gateway.settings:GatewaySettings",
        default_port=8000,
        app_factory="services.gateway.app:create_app",
        demo_seeder="services.gateway.seed:seed_demo",
        migrations="gateway",
    ),
    Service(
        name="directory",
        settings="services.directory.settings:DirectorySettings",
        default_port=8001,
        app_factory="services.directory.app:create_app",
        demo_seeder="services.directory.seed:seed_demo",
        migrations="directory",
    ),
    Service(
        name="consent",
        settings="services.consent.settings:ConsentSettings",
        default_port=8002,
        app_factory="services.consent.app:create_app",
        migrations="consent",
    ),
    Service(
        name="referral",
        settings="services.referral.settings:ReferralSettings",
        default_port=8003,
        app_factory="services.referral.app:create_app",
        migrations="referral",
    ),
    # The workspace: a client of the gateway like any partner, with no database of its own.
    Service(
        name="web",
        settings="services.web.settings:WebSettings",
        default_port=8005,
        app_factory="services.web.app:create_app",
    ),
)
SERVICE_NAMES: tuple[str, ...] = tuple(entry.name for entry in SERVICES)
DEFAULT_PORTS: dict[str, int] = {entry.name: entry.default_port for entry in SERVICES}
WITH_MIGRATIONS: tuple[Service, ...] = tuple(entry for entry in SERVICES if entry.migrations)
WITH_DEMO_DATA: tuple[Service, ...] = tuple(entry for entry in SERVICES if entry.demo_seeder)
_BY_NAME = {entry.name: entry for entry in SERVICES}


class InvalidSettings(ValueError):
    """A service's settings do not validate; the message names each bad variable."""

    def __init__(self, service: str, problems: str) -> None:
        super().__init__(problems)
        self.service = service


def get_service(name: str) -> Service:
    """Return the entry of service `name` (KeyError for a name that is not a service)."""
    return _BY_NAME[name]


def settings_class(name: str) -> type[ServiceSettings]:
    """Import the settings class of service `name` without importing the others."""
    return get_service(name).settings_class()


def load_settings(name: str, **overrides: Any) -> ServiceSettings:
    """Read service `name`'s settings; raise InvalidSettings naming every bad variable.

    The one way command-line code reads settings: the `refex` command turns InvalidSettings
    into one line, `refex <command>: REFEX_<NAME>_<FIELD>: <what is wrong>` (services/cli_errors).
    """
    from pydantic import ValidationError

    from shared.settings import settings_problems

    cls = settings_class(name)
    try:
        return cls(**overrides)
    except ValidationError as error:
        raise InvalidSettings(name, settings_problems(error, cls)) from None
