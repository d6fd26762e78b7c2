"""`refex ledger ...`: verify the consent ledger, sign a tree head, purge bodies, make a key."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from services.cli_progress import QUIET_HELP, Advance, progress_bar
from shared.i18n import N_, Message, gettext

app = typer.Typer(help="The consent ledger: verify, sign, purge, keys.", no_args_is_help=True)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _settings() -> Any:
    from services.registry import load_settings

    return load_settings("consent")


@app.command()
def verify(
    tree_head: Annotated[
        Path | None,
        typer.Option(
            "--tree-head", help="A tree head saved from GET /ledger/tree-head to check against."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
) -> None:
    """Recompute leaves, nodes, roots, signatures and consistency; exit 1 naming the bad entry."""
    from services.consent.signing import SigningKeyError, configured_public_key
    from services.consent.verify import SavedHeadError, verify_ledger
    from shared.db import build_engine

    settings = _settings()
    saved = _read(tree_head) if tree_head else None

    async def run(advance: Advance | None) -> Any:
        engine = build_engine(settings.database_url, pool_size=2)
        try:
            return await verify_ledger(
                engine, trusted_key=configured_public_key(settings), saved=saved, progress=advance
            )
        finally:
            await engine.dispose()

    try:
        with progress_bar(gettext(N_("verifying ledger entries")), console=err, quiet=quiet) as bar:
            report = asyncio.run(run(bar))
    except SavedHeadError as error:
        err.print(f"refex ledger verify: {tree_head}: {error}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except SigningKeyError as error:
        _unusable_key("verify", error)
    for note in report.notes:
        console.print(Message("note: {note}", note=note).render(), markup=False, highlight=False)
    first = report.first()
    if first is not None:
        err.print(
            Message(
                "ledger INVALID: first bad index {index}: {reason} ({count} problem(s) found)",
                index=first.index,
                reason=first.message,
                count=len(report.problems),
            ).render(),
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1)
    console.print(
        Message(
            "ledger OK: {size} entries ({purged} bodies purged), {heads} tree heads verified",
            size=report.size,
            purged=report.purged,
            heads=report.tree_heads,
        ).render(),
        markup=False,
        highlight=False,
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        problem = Message("cannot read {filename}: {reason}", filename=path, reason=error.strerror)
        err.print(f"refex ledger verify: {problem}", markup=False)
        raise typer.Exit(2) from None


@app.command()
def sign() -> None:
    """Sign a tree head now and print it as JSON (save it to check later with --tree-head)."""
    from services.consent.ledger import sign_tree_head
    from services.consent.shaping import tree_head_read
    from services.consent.signing import SigningKeyError, load_signer
    from shared.db import Database

    settings = _settings()

    async def run() -> str:
        database = Database(settings.database_url, pool_size=1)
        try:
            async with database.sessionmaker() as session, session.begin():
                head = await sign_tree_head(
                    session, signer=load_signer(settings), only_if_grown=False
                )
                assert head is not None
                return tree_head_read(head).model_dump_json(indent=2)
        finally:
            await database.dispose()

    try:
        print(asyncio.run(run()))
    except SigningKeyError as error:
        _unusable_key("sign", error)


def _unusable_key(command: str, error: ValueError) -> NoReturn:
    """Say which key setting to fix, in one line, and exit 2 (a setting, not a bug)."""
    err.print(f"refex ledger {command}: {error}", markup=False, highlight=False)
    raise typer.Exit(2) from None


@app.command()
def purge() -> None:
    """Delete event bodies past their retention period; the tree still verifies afterwards."""
    from services.consent.ledger import purge_expired_bodies
    from shared.clock import utcnow
    from shared.db import Database

    settings = _settings()

    async def run() -> int:
        database = Database(settings.database_url, pool_size=1)
        try:
            async with database.sessionmaker() as session, session.begin():
                return await purge_expired_bodies(session, now=utcnow())
        finally:
            await database.dispose()

    purged = asyncio.run(run())
    console.print(
        Message("purged {count} event bodies past their retention", count=purged).render()
    )


@app.command()
def keygen() -> None:
    """Print a new Ed25519 signing key for REFEX_CONSENT_LEDGER_SIGNING_KEY (keep it secret)."""
    from services.consent.signing import generate_key_text

    console.print(json.dumps({"REFEX_CONSENT_LEDGER_SIGNING_KEY": generate_key_text()}))
