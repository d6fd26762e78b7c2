"""`refex directory import PATH [--partial]` and `refex directory export PATH` (HSDS 3.0)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from shared.i18n import N_, Message, gettext

if TYPE_CHECKING:
    from shared.partner_urls import UrlPolicy

app = typer.Typer(help="Import and export the directory as Open Referral HSDS 3.0 data packages.")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _database_url() -> str:
    from services.registry import load_settings

    return load_settings("directory").database_url


def _url_policy() -> UrlPolicy:
    from services.registry import load_settings
    from shared.partner_urls import UrlPolicy

    return UrlPolicy.from_settings(load_settings("directory"))


@app.command("export")
def export_package(
    path: Annotated[Path, typer.Argument(help="Folder to write the data package into.")],
) -> None:
    """Write the whole directory as an HSDS 3.0 data package (JSON + CSV), validated first."""
    from services.directory import hsds
    from shared.db import Database

    async def run() -> hsds.Package:
        database = Database(_database_url(), pool_size=1)
        try:
            async with database.sessionmaker() as session:
                return await hsds.build_package(session)
        finally:
            await database.dispose()

    package = asyncio.run(run())
    problems = hsds.package_problems(package)
    if problems:
        for problem in problems[:50]:
            err.print(problem, markup=False, highlight=False)
        err.print(
            Message(
                "export refused: {count} record(s) break the HSDS 3.0 schema", count=len(problems)
            ).render()
        )
        raise typer.Exit(1)
    counts = hsds.write_package(package, path)
    summary = ", ".join(f"{count} {name}" for name, count in counts.items())
    console.print(
        Message(
            "[green]exported[/] {summary} to {path} (valid HSDS 3.0)", summary=summary, path=path
        ).render()
    )


@app.command("import")
def import_package(
    path: Annotated[Path, typer.Argument(help="Folder of an HSDS 3.0 data package (JSON files).")],
    partial: Annotated[
        bool, typer.Option("--partial", help="Store the valid records even if others are invalid.")
    ] = False,
) -> None:
    """Validate every record, then upsert by id; nothing is stored if any record is invalid."""
    from services.directory import hsds

    try:
        package = hsds.read_package(path)
    except (OSError, ValueError) as error:
        err.print(f"refex directory import: {error}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(gettext(N_("validating")), total=hsds.record_count(package))
        plan = hsds.plan_import(package, progress=lambda: progress.advance(task))
    if plan.rejected and not partial:
        _report(plan.accepted, plan.rejected)
        err.print(
            gettext(N_("nothing was stored; fix the rejected records or rerun with --partial"))
        )
        raise typer.Exit(1)
    refused = asyncio.run(_store(plan, partial=partial))
    _report(plan.accepted - len(refused), plan.rejected + refused)
    if refused and not partial:
        err.print(
            gettext(N_("nothing was stored; fix the refused records or rerun with --partial"))
        )
        raise typer.Exit(1)
    if plan.rejected or refused:
        raise typer.Exit(1)


async def _store(plan: object, *, partial: bool) -> list[object]:
    from services.directory import hsds
    from shared.db import Database

    assert isinstance(plan, hsds.Plan)
    database = Database(_database_url(), pool_size=1)
    total = len(plan.organisations) + len(plan.keys) + len(plan.services)
    total += len(plan.focal_points) + len(plan.agreements)
    try:
        async with database.sessionmaker() as session:
            with Progress(console=err, transient=True) as progress:
                task = progress.add_task(gettext(N_("storing")), total=total)
                refused = await hsds.store(
                    session, plan, lambda: progress.advance(task), _url_policy()
                )
            if refused and not partial:
                await session.rollback()
            else:
                await session.commit()
            return list(refused)
    finally:
        await database.dispose()


def _report(accepted: int, rejected: Sequence[object]) -> None:
    from services.directory.hsds import Rejection

    console.print(
        Message(
            "[green]accepted[/] {accepted} record(s), [red]rejected[/] {rejected}",
            accepted=accepted,
            rejected=len(rejected),
        ).render()
    )
    for rejection in rejected:
        assert isinstance(rejection, Rejection)
        where = f"{rejection.file} #{rejection.index}" if rejection.index else rejection.file
        for reason in rejection.reasons:
            console.print(
                f"  {where} id={rejection.record_id or '?'}: {reason}",
                markup=False,
                highlight=False,
            )
