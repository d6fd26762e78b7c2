"""One actionable line instead of a traceback when a `refex` command cannot do its work.

Only exception types and addresses go into the line: messages of database drivers and HTTP
libraries can quote SQL parameters or URLs with personal data.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

import httpx
import sqlalchemy.exc
import typer
from rich.console import Console
from typer.core import TyperGroup
from typer.exceptions import TyperException

from services.cli_language import localize_usage_error, start_in_language
from services.registry import InvalidSettings, settings_class
from shared.client import RefexError
from shared.i18n import N_, Message, gettext

err = Console(stderr=True, soft_wrap=True)
GATEWAY_HINT = N_("start it with `make run`, or point --url (REFEX_URL) at a running gateway")
MIGRATE_HINT = N_("run `refex migrate` first")
RETRY_HINT = N_("check that it runs, then try again")
# Which service's database each command group reads.
COMMAND_DATABASES = {
    "ledger": "consent",
    "audit": "referral",
    "admin": "gateway",
    "directory": "directory",
}
UNDEFINED_TABLE, UNDEFINED_COLUMN, UNKNOWN_DATABASE = "42P01", "42703", "3D000"


def _origin(error: httpx.RequestError) -> str:
    try:
        url = error.request.url
    except RuntimeError:
        return gettext(N_("the configured address"))
    return f"{url.scheme}://{url.host}:{url.port}" if url.port else f"{url.scheme}://{url.host}"


def gateway_problem(error: BaseException) -> str | None:
    """Say what went wrong talking to the gateway, or None when it was something else."""
    problem = _gateway_problem(error)
    return None if problem is None else problem.render()


def _gateway_problem(error: BaseException) -> Message | None:
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
        return Message(
            "cannot reach the gateway at {origin} — {hint}",
            origin=_origin(error),
            hint=Message(GATEWAY_HINT),
        )
    if isinstance(error, httpx.TimeoutException):
        return Message(
            "the gateway at {origin} did not answer in time — {hint}",
            origin=_origin(error),
            hint=Message(RETRY_HINT),
        )
    if isinstance(error, httpx.TransportError):
        return Message(
            "the connection to the gateway at {origin} broke — check it runs, then retry",
            origin=_origin(error),
        )
    if isinstance(error, RefexError):
        if error.problem.get("title") in ("invalid_client", "unauthorized_client"):
            return Message(
                "the gateway refused the client id or secret — check --client-id and "
                "--client-secret (REFEX_CLIENT_ID, REFEX_CLIENT_SECRET)"
            )
        return Message("the gateway answered {answer}", answer=str(error))
    return None


def _sqlstate(error: BaseException) -> str | None:
    state = getattr(getattr(error, "orig", None), "sqlstate", None)
    return state if isinstance(state, str) else None


def database_problem(error: BaseException) -> str | None:
    """Say what is wrong with the database, or None when the error is not the database's."""
    problem = _database_problem(error)
    return None if problem is None else problem.render()


def _database_problem(error: BaseException) -> Message | None:
    state = _sqlstate(error)
    text = str(getattr(error, "orig", "")) if isinstance(error, sqlalchemy.exc.DBAPIError) else ""
    if state == UNDEFINED_TABLE or "no such table" in text:
        return Message("the database has no schema yet — {hint}", hint=Message(MIGRATE_HINT))
    if state == UNDEFINED_COLUMN or "no such column" in text:
        return Message(
            "the database schema is older than this refex — {hint}", hint=Message(MIGRATE_HINT)
        )
    if state == UNKNOWN_DATABASE:
        return Message("the database does not exist — create it, or correct the URL")
    if isinstance(
        error, OSError | sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError
    ) and not isinstance(error, FileNotFoundError | PermissionError):
        kind = type(error).__name__
        return Message(
            "cannot reach the database ({kind}) — check that it runs and that the URL is right",
            kind=kind,
        )
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        return Message(
            "the database refused a statement ({kind}) — {hint}",
            kind=type(error).__name__,
            hint=Message(MIGRATE_HINT),
        )
    return None


def _database_variable(service: str | None) -> str:
    if service is None:
        return gettext(N_("the database"))
    return settings_class(service).env_name("database_url")


def explain(error: BaseException, *, service: str | None = None) -> str:
    """Return one line saying what is wrong and what to do."""
    if isinstance(error, InvalidSettings):
        return str(error)
    gateway = gateway_problem(error)
    if gateway is not None:
        return gateway
    database = database_problem(error)
    if database is not None:
        return f"{_database_variable(service)}: {database}"
    if isinstance(error, FileNotFoundError | PermissionError | IsADirectoryError):
        return Message(
            "cannot read {filename}: {reason}", filename=error.filename, reason=error.strerror
        ).render()
    return Message(
        "failed with {kind}, which is a bug in refex — please report it with the command you "
        "ran; REFEX_TRACEBACK=1 shows where it happened",
        kind=type(error).__name__,
    ).render()


def report(command: str, error: BaseException, *, service: str | None = None) -> int:
    """Print the one line for `error` and return the exit code: 2 for bad settings, else 1."""
    if os.environ.get("REFEX_TRACEBACK"):
        raise error
    err.print(f"refex {command}: {explain(error, service=service)}", markup=False, highlight=False)
    return 2 if isinstance(error, InvalidSettings) else 1


def fail(command: str, error: BaseException, *, service: str | None = None) -> NoReturn:
    """Print the one line for `error` and exit, unless REFEX_TRACEBACK asks for the trace."""
    raise typer.Exit(report(command, error, service=service)) from None


class OperableGroup(TyperGroup):
    """The root `refex` group: any subcommand's failure becomes one line and exit code 1."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        if parent is None:  # the root: choose the language before any help is shown
            start_in_language(self, args)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except TyperException as error:  # a usage error of the root's own options
            localize_usage_error(error)
            raise

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        words = [name or ""]
        if isinstance(command, TyperGroup) and rest and not rest[0].startswith("-"):
            words.append(rest[0])
        ctx.meta["refex.command"] = " ".join(words).strip()
        return name, command, rest

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TyperException as error:  # usage errors below the root
            localize_usage_error(error)
            raise
        except (typer.Exit, typer.Abort):  # chosen exits
            raise
        except Exception as error:
            command = str(ctx.meta.get("refex.command", ""))
            fail(command, error, service=COMMAND_DATABASES.get(command.split(" ")[0]))
