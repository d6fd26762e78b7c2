"""`refex audit verify` reads the chain in batches and still names the first bad row."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from services.cli import app as cli
from services.referral import audit as audit_module
from services.referral.audit import append_audit, verify_stored_chain
from services.referral.models import AuditEvent
from shared.db import Database
from shared.i18n import use_language

ROWS = 23
BATCH = 5  # several batches, with breaks placed on and off their edges


@pytest.fixture
async def database(fresh_database: Callable[[str], str]) -> AsyncIterator[Database]:
    """A referral database whose audit chain holds 23 rows."""
    database = Database(fresh_database("referral"), pool_size=2)
    for number in range(ROWS):
        async with database.sessionmaker() as session, session.begin():
            await append_audit(
                session,
                action="referral.created",
                actor=None,
                referral_id=None,
                request_id=f"req-{number}",
                details={"n": number},
            )
    yield database
    await database.dispose()


async def sql(database: Database, statement: str, **params: Any) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(text(statement), params)


async def verify(database: Database) -> tuple[int, str] | None:
    async with database.sessionmaker() as session:
        found = await verify_stored_chain(session, batch=BATCH)
    return None if found is None else (found.seq, found.reason)


class TestStreamedVerification:
    async def test_an_untouched_chain_verifies_across_batches(self, database: Database) -> None:
        seen: list[tuple[int, int]] = []
        async with database.sessionmaker() as session:
            found = await verify_stored_chain(
                session, batch=BATCH, progress=lambda done, total: seen.append((done, total))
            )
        assert found is None
        assert seen == [(5, 23), (10, 23), (15, 23), (20, 23), (23, 23)]

    @pytest.mark.parametrize("seq", [1, 5, 6, 17, 23])
    async def test_an_edited_row_is_named_in_any_batch(self, database: Database, seq: int) -> None:
        await sql(
            database, "UPDATE audit_event SET details = :d WHERE seq = :s", d='{"n": -1}', s=seq
        )
        assert await verify(database) == (seq, "content does not match its hash (row edited)")

    async def test_the_reason_is_in_the_readers_language(self, database: Database) -> None:
        await sql(database, "UPDATE audit_event SET action = 'forged' WHERE seq = 3")
        async with database.sessionmaker() as session:
            found = await verify_stored_chain(session, batch=BATCH)
        assert found is not None
        with use_language("fr"):
            assert found.reason == "le contenu ne correspond pas à son empreinte (ligne modifiée)"
        assert found.reason == "content does not match its hash (row edited)"

    @pytest.mark.parametrize("seq", [5, 11])
    async def test_a_deleted_row_is_named_by_its_successor(
        self, database: Database, seq: int
    ) -> None:
        await sql(database, "DELETE FROM audit_event WHERE seq = :s", s=seq)
        found = await verify(database)
        assert found is not None and found[0] == seq + 1 and "deleted" in found[1]

    async def test_a_truncated_tail_is_named_against_the_head(self, database: Database) -> None:
        await sql(database, "DELETE FROM audit_event WHERE seq > 20")
        assert await verify(database) == (
            21,
            "rows after this point are missing (chain truncated)",
        )

    async def test_a_row_appended_behind_the_heads_back_is_caught(self, database: Database) -> None:
        async with database.sessionmaker() as session:
            head = (await session.execute(text("SELECT seq, hash FROM audit_chain_head"))).one()
        async with database.sessionmaker() as session, session.begin():
            await append_audit(session, action="x", actor=None, referral_id=None, request_id=None)
        await sql(
            database, "UPDATE audit_chain_head SET seq = :s, hash = :h", s=head.seq, h=head.hash
        )
        found = await verify(database)
        assert found is not None and found[0] == ROWS + 2

    async def test_a_batch_is_forgotten_once_checked(
        self, database: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        held: list[int] = []
        feed = audit_module.ChainChecker.feed

        def counting(checker: audit_module.ChainChecker, row: AuditEvent) -> Any:
            session = next(iter(sessions))
            held.append(len(session.identity_map))
            return feed(checker, row)

        monkeypatch.setattr(audit_module.ChainChecker, "feed", counting)
        async with database.sessionmaker() as session:
            sessions = {session}
            assert await verify_stored_chain(session, batch=BATCH) is None
        assert max(held) <= BATCH + 1  # the batch and the head row, never the whole chain


class TestCommand:
    async def test_refex_audit_verify_names_the_row_and_stays_quiet(
        self, database: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("REFEX_ENVIRONMENT", "test")
        monkeypatch.setenv(
            "REFEX_REFERRAL_DATABASE_URL", database.engine.url.render_as_string(hide_password=False)
        )
        monkeypatch.setenv("REFEX_REFERRAL_SUBJECT_HASH_KEY", secrets.token_urlsafe(32))
        monkeypatch.setattr(audit_module, "VERIFY_BATCH", BATCH)
        runner = CliRunner()
        good = await asyncio.to_thread(runner.invoke, cli, ["audit", "verify", "--quiet"])
        assert good.exit_code == 0, good.output
        assert good.stdout.strip() == "audit chain verifies"
        await sql(database, "UPDATE audit_event SET action = 'forged' WHERE seq = 12")
        bad = await asyncio.to_thread(runner.invoke, cli, ["audit", "verify"])
        assert bad.exit_code == 1
        assert "broken at row 12" in bad.output
        async with database.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(AuditEvent)) == ROWS
