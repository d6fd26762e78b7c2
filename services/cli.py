"""The `refex` command: migrate, serve, start the stack, and each service's admin commands."""

from __future__ import annotations

import asyncio
import importlib
import json
import signal
import time
from enum import StrEnum
from types import FrameType
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from services.config_docs import config_docs
from services.demo import demo
from services.gateway import commands as gateway_commands
from services.referral import commands as referral_commands
from services.stack import DEFAULT_PORTS, Stack, StackError
from shared.app import refex_version
from shared.db import Database
from shared.demo import DEMO_CLIENTS_FILE, SERVICE_CLIENTS_FILE
from shared.migrations import SERVICES_WITH_MIGRATIONS, upgrade
from shared.settings import ServiceSettings, describe_settings_error

app = typer.Typer(
    help="Referral Exchange: run and administer the refex services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)  # one message, one line, whatever the width
err = Console(stderr=True, soft_wrap=True)
app.command("config-docs")(config_docs)
app.add_typer(referral_commands.keys, name="keys")
app.add_typer(referral_commands.provider, name="provider")
app.add_typer(referral_commands.audit, name="audit")
app.command("demo")(demo)
app.add_typer(gateway_commands.app, name="admin")


class ServiceName(StrEnum):
    """The four services."""

    directory = "directory"
    consent = "consent"
    referral = "referral"
    gateway = "gateway"


SETTINGS_CLASSES = {
    "directory": "services.directory.settings:DirectorySettings",
    "consent": "services.consent.settings:ConsentSettings",
    "referral": "services.referral.settings:ReferralSettings",
    "gateway": "services.gateway.settings:GatewaySettings",
}


# Each entry: "module:function", an async function taking the service's settings.
# Order matters: the directory first (organisations), then the gateway (their API clients).
DEMO_SEEDERS: list[tuple[str, str]] = [
    ("directory", "services.directory.seed:seed_demo"),
    ("gateway", "services.gateway.seed:seed_demo"),
]


def settings_class(service: str) -> type[ServiceSettings]:
    """Import the settings class of `service` without importing the others."""
    module, name = SETTINGS_CLASSES[service].split(":")
    cls: type[ServiceSettings] = getattr(importlib.import_module(module), name)
    return cls


def load_settings(service: str, **overrides: Any) -> ServiceSettings:
    """Read `service`'s settings or exit with one line naming the bad variable."""
    cls = settings_class(service)
    try:
        return cls(**overrides)
    except ValidationError as error:
        err.print(describe_settings_error(error, cls), markup=False, highlight=False)
        raise typer.Exit(2) from None


@app.command()
def version() -> None:
    """Print the refex version."""
    console.print(f"refex {refex_version()}")


@app.command()
def migrate(
    service: Annotated[ServiceName | None, typer.Option(help="Only this service.")] = None,
) -> None:
    """Apply every service's database migrations (or one service's)."""
    names = [service.value] if service else list(SERVICES_WITH_MIGRATIONS)
    for name in names:
        settings = load_settings(name)
        upgrade(name, settings.database_url)
        console.print(f"[green]migrated[/] {name} ({settings.database_backend})")


@app.command()
def seed(
    only: Annotated[
        ServiceName | None, typer.Option("--service", help="Only this service.")
    ] = None,
) -> None:
    """Load the demo data (organisations, agreements, keys, API clients); safe to repeat."""
    for service, target in DEMO_SEEDERS:
        if only is None or only.value == service:
            module, function = target.split(":")
            seeder = getattr(importlib.import_module(module), function)
            asyncio.run(seeder(load_settings(service)))
            console.print(f"[green]seeded[/] {service}")


async def _database_problem(settings: ServiceSettings) -> str | None:
    database = Database(settings.database_url, pool_size=1)
    try:
        await database.ping()
        if await database.migration_head() is None:
            return "the database has no schema yet; run `refex migrate` first"
    except Exception as error:
        return f"database unreachable ({type(error).__name__}); check it runs and the URL is right"
    finally:
        await database.dispose()
    return None


@app.command()
def serve(
    service: ServiceName,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run one service in this process (what `refex up` and containers call)."""
    import uvicorn

    settings = load_settings(service.value, **({"port": port} if port else {}))
    problem = asyncio.run(_database_problem(settings))
    if problem:
        variable = type(settings).env_name("database_url")
        err.print(f"refex {service.value}: {variable}: {problem}", markup=False, highlight=False)
        raise typer.Exit(2)
    factory = importlib.import_module(f"services.{service.value}.app").create_app
    uvicorn.run(
        factory(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def _with_service_clients(env: dict[str, str]) -> dict[str, str]:
    """Give the services the demo credentials they use to call each other, unless set."""
    if not SERVICE_CLIENTS_FILE.exists():
        return env
    for service, creds in json.loads(SERVICE_CLIENTS_FILE.read_text()).items():
        env.setdefault(f"REFEX_{service.upper()}_CLIENT_ID", creds["client_id"])
        env.setdefault(f"REFEX_{service.upper()}_CLIENT_SECRET", creds["client_secret"])
    return env


def _print_welcome(ports: dict[str, int], seconds: float) -> None:
    base = f"http://127.0.0.1:{ports['gateway']}"
    console.print(f"[bold green]refex is ready[/] in {seconds:.1f} s")
    for name, port in ports.items():
        console.print(f"  {name:<10} http://127.0.0.1:{port}")
    console.print(f"API docs: [bold]{base}/docs[/]   (ReDoc: {base}/redoc)")
    if DEMO_CLIENTS_FILE.exists():
        console.print(f"Demo credentials ({DEMO_CLIENTS_FILE}, demo only):")
        for role, creds in json.loads(DEMO_CLIENTS_FILE.read_text()).items():
            console.print(
                f"  {role:<28} {creds['client_id']}  {creds['client_secret']}",
                markup=False,
                highlight=False,
            )
    console.print("Next, in another terminal: [bold].venv/bin/refex demo[/]   Stop: Ctrl-C")


class _Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop


@app.command()
def up(
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for /readyz.")] = 60.0,
    run_migrations: Annotated[
        bool, typer.Option("--migrate", help="Apply migrations first.")
    ] = False,
    seed_demo: Annotated[bool, typer.Option("--seed-demo", help="Load demo data first.")] = False,
) -> None:
    """Start the four services (gateway on 8000), wait until ready, stop all on Ctrl-C."""
    import os

    if run_migrations:
        migrate(service=None)
    if seed_demo:
        seed(only=None)

    ports = {
        name: int(os.environ.get(f"REFEX_{name.upper()}_PORT", port))
        for name, port in DEFAULT_PORTS.items()
    }
    stack = Stack(ports=ports, env=_with_service_clients(dict(os.environ)))
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        stack.start()
        _print_welcome(ports, stack.wait_ready(ready_timeout))
        while (stopped := stack.first_exited()) is None:
            time.sleep(0.5)
        err.print(f"the {stopped} service stopped; stopping the others")
        raise typer.Exit(1)
    except StackError as error:
        err.print(f"refex up: {error}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    except (KeyboardInterrupt, _Stop):
        console.print("stopping…")
    finally:
        stack.stop()


def main() -> None:
    """Entry point of the `refex` console script."""
    app()


if __name__ == "__main__":
    main()
