"""Tampering: edit, delete, reorder and insert ledger and audit rows directly in the database.

Each case works on its own copy of a database a journey filled, then runs the operator's command
(`refex ledger verify`, `refex audit verify`) as a subprocess: it must exit non-zero and name the
first bad entry. An untouched copy must verify (so a check that always fails cannot pass).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncSession

from proof.harness import within
from services.referral.audit import audit_hash
from services.referral.models import AuditEvent
from shared.db import Database
from tests.postgres import create_database, drop_database

LEDGER_NAMED = re.compile(r"first bad index (\d+)")
AUDIT_NAMED = re.compile(r"audit chain broken at row (\d+)")
OFFSET = 1_000_000


class Rows:
    """Plain SQL on one database copy; `?` placeholders on both backends."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")

    def run(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Execute statements in one transaction."""
        if self.sqlite:
            with sqlite3.connect(self.url.split("///", 1)[1]) as connection:
                for sql, args in statements:
                    connection.execute(sql, args)
            return
        asyncio.run(self._pg(statements, fetch=False))

    def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Return rows as tuples."""
        if self.sqlite:
            with sqlite3.connect(self.url.split("///", 1)[1]) as connection:
                return [tuple(r) for r in connection.execute(sql, args)]
        rows: list[tuple[Any, ...]] = asyncio.run(self._pg([(sql, args)], fetch=True))
        return rows

    async def _pg(self, statements: list[tuple[str, tuple[Any, ...]]], *, fetch: bool) -> Any:
        connection = await asyncpg.connect(self.url.replace("+asyncpg", ""))
        try:
            async with connection.transaction():
                rows: list[tuple[Any, ...]] = []
                for sql, args in statements:
                    numbered = _numbered(sql)
                    if fetch:
                        rows = [tuple(r) for r in await connection.fetch(numbered, *args)]
                    else:
                        await connection.execute(numbered, *args)
                return rows
        finally:
            await connection.close()


def _numbered(sql: str) -> str:
    parts = sql.split("?")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]


Tamper = Callable[[Rows, int], int | tuple[int, int]]  # -> the index (or range) to be named


def _flip(body: bytes) -> bytes:
    return body[:-2] + bytes([body[-2] ^ 0x01]) + body[-1:]


def _entry(rows: Rows, index: int) -> tuple[Any, ...]:
    return rows.fetch(
        'SELECT "index", event_type, appended_at, retain_until, body, purged_at '
        'FROM ledger_entry WHERE "index" = ?',
        index,
    )[0]


def ledger_edit_body(rows: Rows, size: int) -> int:
    """Change one byte of an entry's record."""
    k = size // 2
    rows.run(
        [('UPDATE ledger_entry SET body = ? WHERE "index" = ?', (_flip(_entry(rows, k)[4]), k))]
    )
    return k


def ledger_edit_body_and_leaf(rows: Rows, size: int) -> tuple[int, int]:
    """Change a record and recompute its leaf hash too (the tree above no longer matches)."""
    k = size // 2
    body = _flip(_entry(rows, k)[4])
    leaf = hashlib.sha256(b"\x00" + body).digest()
    rows.run([
        ('UPDATE ledger_entry SET body = ? WHERE "index" = ?', (body, k)),
        ("UPDATE ledger_node SET hash = ? WHERE level = 0 AND position = ?", (leaf, k)),
    ])  # fmt: skip
    # Two sibling leaves that each match their record cannot tell which was rewritten: the
    # verifier names the pair's first entry (their parent node no longer matches).
    return (k & ~1, k)


def ledger_delete(rows: Rows, size: int) -> int:
    """Delete one entry."""
    k = size // 2
    rows.run([('DELETE FROM ledger_entry WHERE "index" = ?', (k,))])
    return k


def ledger_reorder(rows: Rows, size: int) -> int:
    """Swap the records of two neighbouring entries."""
    k = size // 2
    first, second = _entry(rows, k)[4], _entry(rows, k + 1)[4]
    rows.run([
        ('UPDATE ledger_entry SET body = ? WHERE "index" = ?', (second, k)),
        ('UPDATE ledger_entry SET body = ? WHERE "index" = ?', (first, k + 1)),
    ])  # fmt: skip
    return k


def ledger_insert_middle(rows: Rows, size: int) -> int:
    """Shift entries up by one and slip a forged copy of the previous record in between."""
    k = size // 2
    forged = list(_entry(rows, k - 1))
    forged[0] = k
    rows.run([
        ('UPDATE ledger_entry SET "index" = "index" + ? WHERE "index" >= ?', (OFFSET, k)),
        ('UPDATE ledger_entry SET "index" = "index" - ? WHERE "index" >= ?', (OFFSET - 1, OFFSET)),
        ('INSERT INTO ledger_entry ("index", event_type, appended_at, retain_until, body, '
         "purged_at) VALUES (?, ?, ?, ?, ?, ?)", tuple(forged)),
    ])  # fmt: skip
    return k


def ledger_insert_end(rows: Rows, size: int) -> int:
    """Append a forged entry past the ledger's recorded size."""
    forged = list(_entry(rows, size - 1))
    forged[0] = size
    rows.run([
        ('INSERT INTO ledger_entry ("index", event_type, appended_at, retain_until, body, '
         "purged_at) VALUES (?, ?, ?, ?, ?, ?)", tuple(forged)),
    ])  # fmt: skip
    return size


AUDIT_COLUMNS = (
    "seq, id, referral_id, action, actor_client_id, actor_org_id, actor_roles, request_id, "
    "details, at, prev_hash, hash"
)


def _audit_row(rows: Rows, seq: int) -> tuple[Any, ...]:
    return rows.fetch(f"SELECT {AUDIT_COLUMNS} FROM audit_event WHERE seq = ?", seq)[0]  # noqa: S608


def audit_edit(rows: Rows, size: int) -> int:
    """Change the action a row records."""
    k = size // 2
    # Appending keeps the edit a real change whatever the row held (a no-op would verify).
    rows.run([("UPDATE audit_event SET action = action || ? WHERE seq = ?", (".edited", k))])
    return k


def audit_edit_rehashed(rows: Rows, size: int) -> int:
    """Change a row and store its correctly recomputed hash: the next row no longer follows."""
    k = size // 2

    async def change(session: AsyncSession) -> None:
        row = await session.get(AuditEvent, k)
        assert row is not None
        row.actor_org_id = "someone-else"
        row.hash = audit_hash(row)

    _with_orm(rows.url, change)
    return k + 1


def audit_delete(rows: Rows, size: int) -> int:
    """Delete a row in the middle: the row after it no longer follows its predecessor."""
    k = size // 2
    rows.run([("DELETE FROM audit_event WHERE seq = ?", (k,))])
    return k + 1


def audit_truncate(rows: Rows, size: int) -> int:
    """Delete the newest row: the stored chain head no longer matches."""
    rows.run([("DELETE FROM audit_event WHERE seq = ?", (size,))])
    return size


def audit_reorder(rows: Rows, size: int) -> int:
    """Swap the positions of two neighbouring rows."""
    k = size // 2
    rows.run([
        ("UPDATE audit_event SET seq = ? WHERE seq = ?", (-1, k)),
        ("UPDATE audit_event SET seq = ? WHERE seq = ?", (k, k + 1)),
        ("UPDATE audit_event SET seq = ? WHERE seq = ?", (k + 1, -1)),
    ])  # fmt: skip
    return k


def audit_insert(rows: Rows, size: int) -> int:
    """Shift rows up and insert a forged row that correctly chains to its predecessor."""
    k = size // 2
    rows.run([
        ("UPDATE audit_event SET seq = seq + ? WHERE seq >= ?", (OFFSET, k)),
        ("UPDATE audit_event SET seq = seq - ? WHERE seq >= ?", (OFFSET - 1, OFFSET)),
    ])  # fmt: skip

    async def insert(session: AsyncSession) -> None:
        previous = await session.get(AuditEvent, k - 1)
        assert previous is not None
        forged = AuditEvent(
            seq=k, id=uuid.uuid4(), referral_id=None, action="referral.read",
            actor_client_id="intruder", actor_org_id="intruder", actor_roles=["admin"],
            request_id=None, details={}, at=previous.at, prev_hash=previous.hash,
        )  # fmt: skip
        forged.hash = audit_hash(forged)
        session.add(forged)

    _with_orm(rows.url, insert)
    return k + 1


def _with_orm(url: str, change: Callable[[AsyncSession], Awaitable[None]]) -> None:
    async def run() -> None:
        database = Database(url)
        try:
            async with database.sessionmaker() as session, session.begin():
                await change(session)
        finally:
            await database.dispose()

    asyncio.run(run())


LEDGER_CASES: dict[str, Tamper] = {
    "edit record": ledger_edit_body,
    "edit record and leaf hash": ledger_edit_body_and_leaf,
    "delete entry": ledger_delete,
    "reorder entries": ledger_reorder,
    "insert entry (middle)": ledger_insert_middle,
    "insert entry (end)": ledger_insert_end,
}
AUDIT_CASES: dict[str, Tamper] = {
    "edit row": audit_edit,
    "edit row with new hash": audit_edit_rehashed,
    "delete row": audit_delete,
    "delete newest row": audit_truncate,
    "reorder rows": audit_reorder,
    "insert re-hashed forged row": audit_insert,
}


@dataclass
class CaseResult:
    """One tampering case and what the verifier said."""

    chain: str
    case: str
    backend: str
    expected: tuple[int, int]
    exit_code: int
    named_index: int | None

    @property
    def caught(self) -> bool:
        """Detected (non-zero exit) and the first bad entry named correctly."""
        low, high = self.expected
        named = self.named_index
        return self.exit_code != 0 and named is not None and low <= named <= high


def copy_database(url: str, workdir: Path, label: str) -> str:
    """A consistent copy of the database at `url` (SQLite backup or PostgreSQL template)."""
    if url.startswith("sqlite"):
        target = workdir / f"tamper-{label}-{uuid.uuid4().hex[:8]}.db"
        with sqlite3.connect(url.split("///", 1)[1]) as source, sqlite3.connect(target) as copy:
            source.backup(copy)
        return f"sqlite+aiosqlite:///{target}"
    base, source_name = url.rsplit("/", 1)
    name = f"{source_name[:40]}_t{uuid.uuid4().hex[:8]}"
    create_database(_admin(url), name, template=source_name)
    return f"{base}/{name}"


def _admin(url: str) -> str:
    return url.replace("+asyncpg", "").rsplit("/", 1)[0] + "/postgres"


def drop_copy(url: str) -> None:
    """Remove a copy made by `copy_database`."""
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).unlink(missing_ok=True)
    else:
        drop_database(_admin(url), url.rsplit("/", 1)[1])


def verify_command(chain: str, url: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run `refex ledger verify` or `refex audit verify` against `url`; (exit code, output).

    The command runs in process through typer's runner: the same code path and exit code as the
    shell command, without paying an interpreter start per case.
    """
    from typer.testing import CliRunner

    from services.cli import app

    service = "consent" if chain == "ledger" else "referral"
    run_env = {**env, f"REFEX_{service.upper()}_DATABASE_URL": url, "COLUMNS": "250"}
    with within(cwd):
        done = CliRunner().invoke(app, [chain, "verify"], env=run_env)
    return done.exit_code, done.output


def _size(chain: str, rows: Rows) -> int:
    if chain == "ledger":
        return int(rows.fetch("SELECT count(*) FROM ledger_entry")[0][0])
    return int(rows.fetch("SELECT max(seq) FROM audit_event")[0][0])


def run_cases(
    database_urls: dict[str, str], env: dict[str, str], workdir: Path, backend: str
) -> tuple[list[CaseResult], dict[str, int]]:
    """Every tampering case on both chains; also the exit codes of untouched copies."""
    results: list[CaseResult] = []
    controls: dict[str, int] = {}
    for chain, service, cases, pattern in (
        ("ledger", "consent", LEDGER_CASES, LEDGER_NAMED),
        ("audit", "referral", AUDIT_CASES, AUDIT_NAMED),
    ):
        control = copy_database(database_urls[service], workdir, f"{chain}-control")
        controls[chain] = verify_command(chain, control, env, workdir)[0]
        drop_copy(control)
        for name, tamper in cases.items():
            copy = copy_database(database_urls[service], workdir, chain)
            try:
                rows = Rows(copy)
                found = tamper(rows, _size(chain, rows))
                expected = found if isinstance(found, tuple) else (found, found)
                code, output = verify_command(chain, copy, env, workdir)
                named = pattern.search(output)
                results.append(CaseResult(chain, name, backend, expected, code,
                                          int(named.group(1)) if named else None))  # fmt: skip
            finally:
                drop_copy(copy)
    return results, controls


def env_without_databases(env: dict[str, str]) -> dict[str, str]:
    """The stack's environment (signing keys, environment name) for the verify commands."""
    return {k: v for k, v in env.items() if k in os.environ or k.startswith("REFEX_")}
