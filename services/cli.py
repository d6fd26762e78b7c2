"""The `refex` command: migrate, serve, start the stack, and each service's admin commands."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from services.cli_errors import OperableGroup, fail, report
from services.config_docs import config_docs
from services.consent import commands as consent_commands
from services.demo import demo
from services.directory import commands as directory_commands
from services.gateway import commands as gateway_commands
from services.referral import commands as referral_commands
from services.registry import (
    DEFAULT_PORTS,
    SERVICE_NAMES,
    SERVICES,
    WITH_DEMO_DATA,
    WITH_MIGRATIONS,
    get_service,
    load_settings,
)
from services.stack import Stack, StackError, fork_call, seconds_since_start
from shared.demo import DEMO_CLIENTS_FILE, DEMO_USER_PASSWORD, DEMO_USERS, SERVICE_CLIENTS_FILE
from shared.i18n import N_, Message, cli_language, gettext, set_language
from shared.logging import set_process_service
from shared.settings import ServiceSettings

app = typer.Typer(
    cls=OperableGroup,
    help="Referral Exchange: run and administer the refex services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)  # one message, one line, whatever the width
err = Console(stderr=True, soft_wrap=True)


@app.callback()
def _language(
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            help="Language of messages and tables: en or fr (default: LC_ALL, LC_MESSAGES, LANG).",
        ),
    ] = None,
) -> None:
    """Referral Exchange: run and administer the refex services."""
    set_language(cli_language(lang, os.environ))


app.command("config-docs")(config_docs)
app.add_typer(referral_commands.keys, name="keys")
app.add_typer(referral_commands.provider, name="provider")
app.add_typer(referral_commands.audit, name="audit")
app.command("demo")(demo)
app.add_typer(consent_commands.app, name="ledger")
app.add_typer(gateway_commands.app, name="admin")
app.add_typer(directory_commands.app, name="directory")


# Typer offers choices for an Enum; mypy cannot follow one built from the registry's names.
if TYPE_CHECKING:
    ServiceName = str
else:
    ServiceName = StrEnum("ServiceName", {name: name for name in SERVICE_NAMES})


@app.command()
def version() -> None:
    """Print the refex version."""
    from shared.app import refex_version

    console.print(f"refex {refex_version()}")


@contextmanager
def _settings_for_migrations() -> Iterator[None]:
    """Read settings as in development: migrations need the database URLs, not the secrets."""
    saved = os.environ.get("REFEX_ENVIRONMENT")
    os.environ["REFEX_ENVIRONMENT"] = "development"
    try:
        yield
    finally:
        if saved is None:
            del os.environ["REFEX_ENVIRONMENT"]
        else:
            os.environ["REFEX_ENVIRONMENT"] = saved


@app.command()
def migrate(
    service: Annotated[ServiceName | None, typer.Option(help="Only this service.")] = None,
) -> None:
    """Apply every service's database migrations (or one service's)."""
    from shared.migrations import upgrade

    chosen = [get_service(str(service))] if service else list(WITH_MIGRATIONS)
    with _settings_for_migrations():
        every = [(entry, load_settings(entry.name)) for entry in chosen]  # all valid, or none run
        for entry, settings in every:
            if entry.migrations is None:
                continue
            try:
                upgrade(entry.migrations, settings.database_url)
            except Exception as error:
                fail("migrate", error, service=entry.name)
            console.print(
                Message(
                    "[green]migrated[/] {service} ({backend})",
                    service=entry.name,
                    backend=settings.database_backend,
                ).render()
            )


@app.command()
def seed(
    only: Annotated[
        ServiceName | None, typer.Option("--service", help="Only this service.")
    ] = None,
) -> None:
    """Load the demo data (organisations, agreements, keys, API clients); safe to repeat."""
    chosen = [entry for entry in WITH_DEMO_DATA if only is None or str(only) == entry.name]
    every = [(entry, load_settings(entry.name)) for entry in chosen]  # all valid, or none run
    for entry, settings in every:
        seeder = entry.seeder()
        try:
            asyncio.run(seeder(settings))
        except Exception as error:
            fail("seed", error, service=entry.name)
        console.print(Message("[green]seeded[/] {service}", service=entry.name).render())


async def _database_problem(settings: ServiceSettings) -> str | None:
    from shared.db import Database

    database = Database(settings.database_url, pool_size=1)
    try:
        await database.ping()
        if await database.migration_head() is None:
            return gettext(N_("the database has no schema yet; run `refex migrate` first"))
    except Exception as error:
        return Message(
            "database unreachable ({kind}); check it runs and the URL is right",
            kind=type(error).__name__,
        ).render()
    finally:
        await database.dispose()
    return None


@app.command()
def serve(
    service: ServiceName,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run one service in this process (what `refex up` and containers call)."""
    _run_service(_ready_to_serve(str(service), **({"port": port} if port else {})))


def _ready_to_serve(service: str, **overrides: Any) -> ServiceSettings:
    """Load the settings and check the database, or exit with one line saying what to fix."""
    settings = load_settings(service, **overrides)
    if get_service(service).migrations is not None:  # the workspace keeps no database
        _check_database(settings)
    return settings


def _check_database(settings: ServiceSettings) -> None:
    """Exit with one line naming the variable when the database cannot serve."""
    problem = asyncio.run(_database_problem(settings))
    if problem:
        variable = type(settings).env_name("database_url")
        name = settings.service_name
        err.print(f"refex {name}: {variable}: {problem}", markup=False, highlight=False)
        raise typer.Exit(2)


def _run_service(settings: ServiceSettings) -> None:
    import uvicorn

    set_process_service(settings.service_name)
    uvicorn.run(
        get_service(settings.service_name).create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


# Imported once by `refex up` before forking, so each child starts without importing anything.
PRELOAD = (
    "uvicorn",
    "uvicorn.loops.auto",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.on",
    *(entry.app_module for entry in SERVICES),
)


def _exit_code(command: str, work: Callable[[], None]) -> int:
    """Run `work` where no `refex` command catches its failure (a forked child): its exit code."""
    try:
        work()
    except typer.Exit as stop:
        return stop.exit_code
    except Exception as error:
        return report(command, error)
    return 0


def _migrate_and_seed(*, run_migrations: bool, seed_demo: bool) -> None:
    """Migrate and seed as asked."""
    if run_migrations:
        migrate(service=None)
    if seed_demo:
        seed(only=None)


def _prepare(*, run_migrations: bool, seed_demo: bool, fork: bool) -> None:
    """Migrate and seed; when forking, in a child while this process imports the services."""
    setup = partial(
        _exit_code,
        "up",
        partial(_migrate_and_seed, run_migrations=run_migrations, seed_demo=seed_demo),
    )
    if not fork:
        code = setup()
    else:
        child = fork_call(setup) if run_migrations or seed_demo else None
        try:
            for module in PRELOAD:
                importlib.import_module(module)
            code = child.wait() if child else 0
        finally:
            if child and child.poll() is None:
                child.kill()
                child.wait()
    if code:
        raise typer.Exit(code)


def _serve_forked(service: str, port: int) -> int:
    """Run `service` in a child forked by `refex up`; its database was checked before."""
    return _exit_code("up", lambda: _run_service(load_settings(service, port=port)))


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
    console.print(
        Message("[bold green]refex is ready[/] in {seconds:.1f} s", seconds=seconds).render()
    )
    for name, port in ports.items():
        console.print(f"  {name:<10} http://127.0.0.1:{port}")
    console.print(
        Message("API docs: [bold]{base}/docs[/]   (ReDoc: {base}/redoc)", base=base).render()
    )
    if "web" in ports:
        workspace = f"http://127.0.0.1:{ports['web']}"
        console.print(Message("Workspace: [bold]{url}[/]", url=workspace).render())
    if DEMO_CLIENTS_FILE.exists():
        console.print(
            Message("Demo credentials ({file}, demo only):", file=DEMO_CLIENTS_FILE).render()
        )
        for role, creds in json.loads(DEMO_CLIENTS_FILE.read_text()).items():
            console.print(
                f"  {role:<28} {creds['client_id']}  {creds['client_secret']}",
                markup=False,
                highlight=False,
            )
        console.print(
            Message(
                "Demo people (sign in through the workspace; password {password}, demo only):",
                password=DEMO_USER_PASSWORD,
            ).render(),
            markup=False,
            highlight=False,
        )
        for role, (email, _org) in DEMO_USERS.items():
            console.print(f"  {role:<28} {email}", markup=False, highlight=False)
    console.print(
        gettext(N_("Next, in another terminal: [bold].venv/bin/refex demo[/]   Stop: Ctrl-C"))
    )


class _Stop(Exception):
    pass


# Also remembered: an exception raised by a signal handler inside a __del__ is swallowed.
_stop_requested = threading.Event()


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    _stop_requested.set()
    raise _Stop


@app.command()
def up(
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for /readyz.")] = 60.0,
    run_migrations: Annotated[
        bool, typer.Option("--migrate", help="Apply migrations first.")
    ] = False,
    seed_demo: Annotated[bool, typer.Option("--seed-demo", help="Load demo data first.")] = False,
    fork: Annotated[
        bool, typer.Option(help="Fork the services from this process (fast start); Linux only.")
    ] = sys.platform == "linux",
) -> None:
    """Start every service (gateway 8000, workspace 8005), wait until ready; Ctrl-C stops all."""
    ports = {
        name: int(os.environ.get(f"REFEX_{name.upper()}_PORT", port))
        for name, port in DEFAULT_PORTS.items()
    }
    stack = Stack(ports=ports, runner=_serve_forked if fork else None, echo=sys.stdout.buffer)
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        stack.check_ports()
        _prepare(run_migrations=run_migrations, seed_demo=seed_demo, fork=fork)
        every = [load_settings(name) for name in SERVICE_NAMES]  # all valid, or none start
        for entry, settings in zip(SERVICES, every, strict=True):
            if entry.migrations is not None:
                _check_database(settings)
        stack.env = _with_service_clients(dict(os.environ))
        stack.start()
        stack.wait_ready(ready_timeout)
        _print_welcome(ports, seconds_since_start())
        while (stopped := stack.first_exited()) is None:
            if _stop_requested.wait(0.5):
                raise _Stop
        err.print(
            Message("the {service} service stopped; stopping the others", service=stopped).render()
        )
        raise typer.Exit(1)
    except StackError as error:
        err.print(f"refex up: {error}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    except (KeyboardInterrupt, _Stop):
        console.print(gettext(N_("stopping…")))
    finally:
        stack.stop()


def main() -> None:
    """Entry point of the `refex` console script."""
    app()


if __name__ == "__main__":
    main()
