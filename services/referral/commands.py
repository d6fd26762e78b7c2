"""`refex keys`, `refex provider` and `refex audit` commands."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from services.cli_progress import QUIET_HELP, Advance, progress_bar
from shared.i18n import N_, Message, gettext

if TYPE_CHECKING:
    from services.referral.settings import ReferralSettings

keys = typer.Typer(
    help="Encryption keys of your organisation (kept on your machine).", no_args_is_help=True
)
provider = typer.Typer(
    help="A provider's view: inbox and decryption with your own key.", no_args_is_help=True
)
audit = typer.Typer(help="The referral audit trail.", no_args_is_help=True)
console = Console()
INBOX_COLUMNS = (
    N_("id"),
    N_("status"),
    N_("category"),
    N_("shared"),
    N_("respond by"),
    N_("overdue"),
)
notice = Console(stderr=True)  # messages about files, so stdout carries only the public JWK
GatewayOption = Annotated[str, typer.Option(envvar="REFEX_URL", help="Gateway base URL.")]
ClientIdOption = Annotated[str, typer.Option(envvar="REFEX_CLIENT_ID", help="Your client id.")]
SecretOption = Annotated[
    str, typer.Option(envvar="REFEX_CLIENT_SECRET", help="Your client secret.")
]


@keys.command("generate")
def generate(
    out: Annotated[Path, typer.Option(help="Where to write the PRIVATE key (JWK).")],
    kid: Annotated[str | None, typer.Option(help="Key id to register it under.")] = None,
    use: Annotated[str, typer.Option(help="enc (referral payloads) or sig (webhooks).")] = "enc",
) -> None:
    """Write a new key pair locally and print the public JWK to register in the directory."""
    from shared.crypto import generate_encryption_key, public_part
    from shared.webhooks import generate_signing_key

    if out.exists():
        notice.print(
            Message(
                "[red]{path} exists[/]; choose another path so no key is overwritten.", path=out
            ).render()
        )
        raise typer.Exit(2)
    private = generate_encryption_key(kid) if use == "enc" else generate_signing_key(kid)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(private))
    os.chmod(out, 0o600)
    notice.print(
        Message("private key written to {path} (keep it secret, back it up)", path=out).render()
    )
    print(json.dumps(public_part(private), indent=2))


@provider.command("inbox")
def inbox(
    url: GatewayOption = "http://127.0.0.1:8000",
    client_id: ClientIdOption = "",
    client_secret: SecretOption = "",
) -> None:
    """List the referrals your organisation received."""
    from shared.client import RefexClient

    with RefexClient(url, client_id, client_secret) as client:
        table = Table(*(gettext(h) for h in INBOX_COLUMNS))
        for item in client.inbox():
            table.add_row(
                item["id"],
                item["status"],
                item["service_category"],
                ", ".join(item["shared_categories"]),
                str(item["respond_by"] or ""),
                gettext(N_("yes")) if item["overdue"] else "",
            )
        console.print(table)


@provider.command("open")
def open_referral(
    referral_id: str,
    key: Annotated[Path, typer.Option(help="Your organisation's PRIVATE key (JWK file).")],
    url: GatewayOption = "http://127.0.0.1:8000",
    client_id: ClientIdOption = "",
    client_secret: SecretOption = "",
) -> None:
    """Decrypt a referral locally with your key; show what was shared and what was withheld."""
    from shared.client import RefexClient, open_payload

    with RefexClient(url, client_id, client_secret) as client:
        referral = client.get(f"referrals/{referral_id}")
    casefile = open_payload(referral, orjson.loads(key.read_bytes()))
    shared = ", ".join(referral["shared_categories"])
    console.print(Message("shared: {categories}", categories=shared).render())
    for withheld in referral["withheld"]:
        console.print(
            Message("withheld: {category} ({reason}): {explanation}", **withheld).render()
        )
    for warning in referral["warnings"]:
        console.print(Message("[yellow]warning:[/] {warning}", warning=warning).render())
    console.print_json(data=casefile)


@audit.command("verify")
def verify(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
) -> None:
    """Recompute the audit hash chain from the referral database; name the first bad row."""
    from services.referral.settings import ReferralSettings
    from services.registry import load_settings

    settings = load_settings("referral")
    assert isinstance(settings, ReferralSettings)
    with progress_bar(gettext("verifying audit rows"), console=notice, quiet=quiet) as bar:
        found = asyncio.run(_verify(settings, bar))
    if found is None:
        console.print(gettext(N_("[green]audit chain verifies[/]")))
        return
    console.print(
        Message(
            "[red]audit chain broken at row {row}[/]: {reason}", row=found[0], reason=found[1]
        ).render()
    )
    raise typer.Exit(1)


async def _verify(settings: ReferralSettings, bar: Advance | None) -> tuple[int, str] | None:
    from services.referral.audit import verify_stored_chain
    from shared.db import Database

    database = Database(settings.database_url, pool_size=1)
    try:
        async with database.sessionmaker() as session:
            found = await verify_stored_chain(session, progress=bar)
    finally:
        await database.dispose()
    return None if found is None else (found.seq, found.reason)
