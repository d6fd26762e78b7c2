"""`refex ledger verify`: recomputes everything and names the first bad entry; retention purge."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from typer.testing import CliRunner

from services.cli import app as cli
from services.consent import merkle
from services.consent.ledger import canonical_json, purge_expired_bodies
from services.consent.verify import Report, verify_ledger
from shared.clock import utcnow
from shared.i18n import use_language
from tests.consent.conftest import Callers, grant

EVENTS = 12


@pytest.fixture
async def filled(client: httpx.AsyncClient, callers: Callers) -> httpx.AsyncClient:
    """A ledger of 12 events with tree heads at sizes 6 and 12."""
    for number in range(EVENTS):
        await grant(client, callers)
        if number + 1 in (6, EVENTS):
            assert (await client.post("/ledger/tree-head", headers=callers.auditor())).is_success
    return client


def app_of(client: httpx.AsyncClient) -> FastAPI:
    app: FastAPI = client.app  # type: ignore[attr-defined]
    return app


async def verify(client: httpx.AsyncClient, saved: bytes | None = None) -> Report:
    app = app_of(client)
    return await verify_ledger(
        app.state.db.engine, trusted_key=app.state.signer.public_key, saved=saved
    )


async def sql(client: httpx.AsyncClient, statement: str, **params: Any) -> list[Any]:
    async with app_of(client).state.db.engine.begin() as connection:
        result = await connection.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


async def body_of(client: httpx.AsyncClient, index: int) -> bytes:
    [row] = await sql(client, 'SELECT body FROM ledger_entry WHERE "index" = :i', i=index)
    return bytes(row[0])


def forged(body: bytes, **changes: Any) -> bytes:
    event = orjson.loads(body)
    event["data"].update(changes)
    return canonical_json(event)


def first_problem(report: Report) -> tuple[int, str]:
    problem = report.first()
    assert problem is not None, "tampering went unnoticed"
    return problem.index, problem.reason


class TestUntouched:
    async def test_an_untouched_ledger_verifies(self, filled: httpx.AsyncClient) -> None:
        report = await verify(filled)
        assert report.ok, report.problems
        assert (report.size, report.tree_heads) == (EVENTS, 2)


class TestTampering:
    async def test_an_edited_record_is_named(self, filled: httpx.AsyncClient) -> None:
        body = forged(await body_of(filled, 5), categories=["health.mental"])
        await sql(filled, 'UPDATE ledger_entry SET body = :b WHERE "index" = 5', b=body)
        assert first_problem(await verify(filled)) == (
            5,
            "entry 5: its record does not match its leaf hash (edited)",
        )

    async def test_the_reason_is_in_the_readers_language(self, filled: httpx.AsyncClient) -> None:
        body = forged(await body_of(filled, 5), categories=["health.mental"])
        await sql(filled, 'UPDATE ledger_entry SET body = :b WHERE "index" = 5', b=body)
        problem = (await verify(filled)).first()
        assert problem is not None
        with use_language("fr"):
            assert problem.reason == (
                "entrée 5 : son enregistrement ne correspond pas à son empreinte de feuille "
                "(modifié)"
            )
        assert problem.reason == "entry 5: its record does not match its leaf hash (edited)"

    async def test_a_deleted_record_is_named(self, filled: httpx.AsyncClient) -> None:
        await sql(filled, 'DELETE FROM ledger_entry WHERE "index" = 7')
        index, reason = first_problem(await verify(filled))
        assert (index, reason) == (7, "entry 7: its record is missing (deleted)")

    async def test_a_deleted_leaf_is_named(self, filled: httpx.AsyncClient) -> None:
        await sql(filled, "DELETE FROM ledger_node WHERE level = 0 AND position = 3")
        index, reason = first_problem(await verify(filled))
        assert index == 3
        assert "leaf hash is missing" in reason

    async def test_reordered_records_are_named(self, filled: httpx.AsyncClient) -> None:
        third, eighth = await body_of(filled, 3), await body_of(filled, 8)
        await sql(filled, 'UPDATE ledger_entry SET body = :b WHERE "index" = 3', b=eighth)
        await sql(filled, 'UPDATE ledger_entry SET body = :b WHERE "index" = 8', b=third)
        report = await verify(filled)
        assert first_problem(report) == (
            3,
            "entry 3: holds the record of entry 8 (rows moved or inserted)",
        )
        assert {p.index for p in report.problems} == {3, 8}

    async def test_an_inserted_record_is_named(self, filled: httpx.AsyncClient) -> None:
        await sql(filled, 'UPDATE ledger_entry SET "index" = "index" + 1000 WHERE "index" >= 4')
        await sql(filled, 'UPDATE ledger_entry SET "index" = "index" - 999 WHERE "index" >= 1000')
        fake = orjson.loads(await body_of(filled, 3))
        fake["index"] = 4
        await sql(
            filled,
            'INSERT INTO ledger_entry ("index", event_type, appended_at, retain_until, body) '
            "VALUES (4, 'consent.granted', :at, :until, :b)",
            at=utcnow(),
            until=utcnow() + timedelta(days=30),
            b=canonical_json(fake),
        )
        report = await verify(filled)
        assert first_problem(report)[0] == 4
        assert any(p.index == EVENTS and "beyond" in p.reason for p in report.problems)

    async def test_a_consistently_rewritten_leaf_is_caught_by_the_tree(
        self, filled: httpx.AsyncClient
    ) -> None:
        body = forged(await body_of(filled, 5), categories=["health.mental"])
        await sql(filled, 'UPDATE ledger_entry SET body = :b WHERE "index" = 5', b=body)
        await sql(
            filled,
            "UPDATE ledger_node SET hash = :h WHERE level = 0 AND position = 5",
            h=merkle.leaf_hash(body),
        )
        index, reason = first_problem(await verify(filled))
        assert index == 4
        assert reason.startswith("entries 4-5: the stored tree node (level 1) differs")

    async def test_a_fully_rebuilt_tree_is_caught_by_the_signed_tree_heads(
        self, filled: httpx.AsyncClient
    ) -> None:
        body = forged(await body_of(filled, 8), purpose="monitoring")
        await sql(filled, 'UPDATE ledger_entry SET body = :b WHERE "index" = 8', b=body)
        bodies = [await body_of(filled, i) for i in range(EVENTS)]
        tree = merkle.CompactRange()
        for leaf_body in bodies:
            for level, position, value in tree.append(merkle.leaf_hash(leaf_body)):
                await sql(
                    filled,
                    "UPDATE ledger_node SET hash = :h WHERE level = :l AND position = :p",
                    h=value,
                    l=level,
                    p=position,
                )
        await sql(filled, "UPDATE ledger_state SET frontier = :f", f=b"".join(tree.hashes))
        report = await verify(filled)
        assert first_problem(report) == (
            6,
            "tree head #2 (size 12) does not match the entries: "
            "something in entries 6-11 changed after signing",
        )

    async def test_a_forged_tree_head_is_caught(self, filled: httpx.AsyncClient) -> None:
        await sql(filled, "UPDATE tree_head SET root_hash = :r WHERE tree_size = 6", r=b"\x01" * 32)
        reasons = [p.reason for p in (await verify(filled)).problems]
        assert any("invalid signature" in r for r in reasons)

    async def test_truncation_is_caught_by_a_saved_tree_head(
        self, filled: httpx.AsyncClient, callers: Callers
    ) -> None:
        saved = (await filled.get("/ledger/tree-head", headers=callers.auditor())).content
        await sql(filled, 'DELETE FROM ledger_entry WHERE "index" >= 10')
        await sql(filled, "DELETE FROM ledger_node WHERE level = 0 AND position >= 10")
        await sql(filled, "DELETE FROM tree_head WHERE tree_size > 10")
        await sql(filled, "UPDATE ledger_state SET size = 10")
        report = await verify(filled, saved=saved)
        index, reason = first_problem(report)
        assert index == 10
        assert "the saved tree head covers 12 entries but the ledger holds 10" in reason


class TestRetention:
    async def test_purged_bodies_still_verify_and_prove(
        self, filled: httpx.AsyncClient, callers: Callers
    ) -> None:
        async with app_of(filled).state.db.sessionmaker() as session, session.begin():
            assert await purge_expired_bodies(session, now=utcnow()) == 0
            later = utcnow() + timedelta(days=4000)
            assert await purge_expired_bodies(session, now=later) == EVENTS
        report = await verify(filled)
        assert report.ok, report.problems
        assert report.purged == EVENTS
        entries = await filled.get("/ledger/entries?start=0&end=3", headers=callers.auditor())
        assert [e["body"] for e in entries.json()] == [None, None, None]
        proof = await filled.get("/ledger/entries/2/proof", headers=callers.auditor())
        assert proof.status_code == 200

    async def test_a_body_removed_outside_retention_is_named(
        self, filled: httpx.AsyncClient
    ) -> None:
        await sql(filled, 'UPDATE ledger_entry SET body = NULL WHERE "index" = 9')
        assert first_problem(await verify(filled)) == (
            9,
            "entry 9: its body was removed without a retention purge",
        )


class TestCommand:
    async def test_refex_ledger_verify_exits_nonzero_naming_the_index(
        self,
        filled: httpx.AsyncClient,
        callers: Callers,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> None:
        settings = app_of(filled).state.settings
        monkeypatch.setenv("REFEX_ENVIRONMENT", "test")
        monkeypatch.setenv("REFEX_CONSENT_DATABASE_URL", settings.database_url)
        head_file = tmp_path / "head.json"
        head_file.write_bytes(
            (await filled.get("/ledger/tree-head", headers=callers.auditor())).content
        )
        runner = CliRunner()
        good = await asyncio.to_thread(
            runner.invoke, cli, ["ledger", "verify", "--tree-head", str(head_file)]
        )
        assert good.exit_code == 0, good.output
        assert "ledger OK: 12 entries" in good.output
        quiet = await asyncio.to_thread(runner.invoke, cli, ["ledger", "verify", "--quiet"])
        assert quiet.exit_code == 0, quiet.output
        assert quiet.stdout.startswith("note:") or quiet.stdout.startswith("ledger OK")
        body = forged(await body_of(filled, 2), language="fr")
        await sql(filled, 'UPDATE ledger_entry SET body = :b WHERE "index" = 2', b=body)
        bad = await asyncio.to_thread(runner.invoke, cli, ["ledger", "verify"])
        assert bad.exit_code == 1
        assert "first bad index 2" in bad.output
        missing = await asyncio.to_thread(
            runner.invoke, cli, ["ledger", "verify", "--tree-head", str(tmp_path / "none.json")]
        )
        assert missing.exit_code == 2


class TestChunks:
    async def test_problems_are_named_across_chunk_boundaries(
        self, filled: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from services.consent import verify as verify_module

        monkeypatch.setattr(verify_module, "CHUNK", 4)
        assert (await verify(filled)).ok
        body = forged(await body_of(filled, 9), categories=["skills"])
        await sql(filled, 'UPDATE ledger_entry SET body = :b WHERE "index" = 9', b=body)
        await sql(
            filled,
            "UPDATE ledger_node SET hash = :h WHERE level = 0 AND position = 9",
            h=merkle.leaf_hash(body),
        )
        await sql(filled, "DELETE FROM ledger_node WHERE level = 0 AND position = 6")
        report = await verify(filled)
        assert first_problem(report) == (6, "entry 6: its leaf hash is missing from the tree")
        assert any(
            p.reason.startswith("entries 8-9: the stored tree node") for p in report.problems
        )

    async def test_progress_is_reported_after_each_chunk(
        self, filled: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from services.consent import verify as verify_module

        monkeypatch.setattr(verify_module, "CHUNK", 4)
        seen: list[tuple[int, int]] = []
        app = app_of(filled)
        report = await verify_ledger(
            app.state.db.engine,
            trusted_key=app.state.signer.public_key,
            progress=lambda done, total: seen.append((done, total)),
        )
        assert report.ok, report.problems
        assert seen == [(4, EVENTS), (8, EVENTS), (12, EVENTS)]

    @pytest.mark.parametrize("chunk", [4, 8, 16])
    async def test_an_edited_record_is_named_whatever_the_chunking(
        self, filled: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, chunk: int
    ) -> None:
        from services.consent import verify as verify_module

        monkeypatch.setattr(verify_module, "CHUNK", chunk)
        body = forged(await body_of(filled, 10), categories=["skills"])
        await sql(filled, 'UPDATE ledger_entry SET body = :b WHERE "index" = 10', b=body)
        report = await verify(filled)
        assert [(p.index, p.reason) for p in report.problems] == [
            (10, "entry 10: its record does not match its leaf hash (edited)")
        ]

    @pytest.mark.parametrize("chunk", [4, 8])
    async def test_a_rewritten_tree_node_is_named_whatever_the_chunking(
        self, filled: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, chunk: int
    ) -> None:
        from services.consent import verify as verify_module

        monkeypatch.setattr(verify_module, "CHUNK", chunk)
        await sql(
            filled,
            "UPDATE ledger_node SET hash = :h WHERE level = 2 AND position = 1",
            h=bytes(32),
        )
        index, reason = first_problem(await verify(filled))
        assert (index, reason.split(":")[0]) == (4, "entries 4-7")
