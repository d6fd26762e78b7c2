"""Group commit: concurrent appends share commits, yet indexes stay 0..n-1 and the tree adds up."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.consent import merkle
from services.consent.group_commit import GroupCommit
from services.consent.ledger import Ledger, ledger_size
from services.consent.models import Consent, LedgerEntry
from services.consent.verify import verify_ledger
from tests.consent.conftest import Callers, consent_body

WRITERS = 40


def app_of(client: httpx.AsyncClient) -> FastAPI:
    app: FastAPI = client.app  # type: ignore[attr-defined]
    return app


async def append_one(session: AsyncSession, tag: str) -> int:
    ledger = await Ledger.lock(session)
    return await ledger.append(
        event_type="test.appended", data={"tag": tag}, at=datetime.now(UTC), retain_days=1
    )


async def entries(client: httpx.AsyncClient, callers: Callers) -> list[dict[str, Any]]:
    response = await client.get("/ledger/entries?start=0&end=500", headers=callers.auditor())
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.json()
    return found


class TestConcurrentAppendsOverHttp:
    async def test_parallel_grants_share_commits_and_leave_one_provable_sequence(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        writer: GroupCommit = app_of(client).state.ledger_writer
        responses = await asyncio.gather(
            *(
                client.post("/consents", json=consent_body(), headers=callers.host())
                for _ in range(WRITERS)
            )
        )
        assert [r.status_code for r in responses] == [201] * WRITERS
        assert sorted(r.json()["ledger_index"] for r in responses) == list(range(WRITERS))
        assert writer.batches < WRITERS, "every write paid its own commit"
        stored = await entries(client, callers)
        assert [e["index"] for e in stored] == list(range(WRITERS))
        head = (await client.post("/ledger/tree-head", headers=callers.auditor())).json()
        leaves = [orjson.dumps(e["body"], option=orjson.OPT_SORT_KEYS) for e in stored]
        assert (head["tree_size"], head["root_hash"]) == (WRITERS, merkle.tree_hash(leaves).hex())
        for index in (0, 17, WRITERS - 1):
            proof = (
                await client.get(f"/ledger/entries/{index}/proof", headers=callers.auditor())
            ).json()
            merkle.verify_inclusion(
                index=index,
                size=WRITERS,
                leaf=merkle.leaf_hash(leaves[index]),
                proof=[bytes.fromhex(h) for h in proof["audit_path"]],
                root=bytes.fromhex(head["root_hash"]),
            )


class TestBatches:
    async def test_a_failing_write_rolls_back_alone_and_leaves_no_gap(
        self, client: httpx.AsyncClient
    ) -> None:
        app = app_of(client)
        writer = GroupCommit(app.state.db.sessionmaker)

        async def fails(session: AsyncSession) -> int:
            await append_one(session, "doomed")
            session.add(
                Consent(**{**_consent_columns(), "ledger_index": 99})  # stored, then rolled back
            )
            await session.flush()
            raise ValueError("refused after appending")

        try:
            results = await asyncio.gather(
                writer.run(lambda s: append_one(s, "a")),
                writer.run(fails),
                writer.run(lambda s: append_one(s, "b")),
                return_exceptions=True,
            )
        finally:
            await writer.close()
        assert results[0] == 0 and results[2] == 1
        assert isinstance(results[1], ValueError)
        assert writer.batches == 1
        async with app.state.db.sessionmaker() as session:
            assert await ledger_size(session) == 2
            assert await session.scalar(select(func.count()).select_from(Consent)) == 0
            tags = (
                await session.scalars(select(LedgerEntry.body).order_by(LedgerEntry.index))
            ).all()
        assert [orjson.loads(body or b"{}")["data"]["tag"] for body in tags] == ["a", "b"]
        report = await verify_ledger(app.state.db.engine, trusted_key=None)
        assert report.ok, report.problems

    async def test_writes_that_fail_anywhere_in_a_batch_are_taken_out_in_order(
        self, client: httpx.AsyncClient
    ) -> None:
        app = app_of(client)
        writer = GroupCommit(app.state.db.sessionmaker)

        async def appends_then_fails(session: AsyncSession) -> int:
            await append_one(session, "doomed")
            raise LookupError("no such thing")

        plan = [appends_then_fails, *[lambda s, n=n: append_one(s, f"k{n}") for n in range(3)]]
        plan.insert(2, appends_then_fails)
        plan.append(appends_then_fails)
        try:
            results = await asyncio.gather(*(writer.run(w) for w in plan), return_exceptions=True)
        finally:
            await writer.close()
        assert [type(r).__name__ if isinstance(r, Exception) else r for r in results] == [
            "LookupError",
            0,
            "LookupError",
            1,
            2,
            "LookupError",
        ]
        assert writer.batches == 1
        report = await verify_ledger(app.state.db.engine, trusted_key=None)
        assert report.ok and report.size == 3, report.problems

    async def test_two_writers_of_two_processes_never_share_an_index(
        self, client: httpx.AsyncClient
    ) -> None:
        app = app_of(client)
        replicas = [GroupCommit(app.state.db.sessionmaker) for _ in range(2)]
        try:
            indexes = await asyncio.gather(
                *(replicas[n % 2].run(lambda s, n=n: append_one(s, f"w{n}")) for n in range(30))
            )
        finally:
            for replica in replicas:
                await replica.close()
        assert sorted(indexes) == list(range(30))
        report = await verify_ledger(app.state.db.engine, trusted_key=None)
        assert report.ok and report.size == 30, report.problems

    async def test_a_write_runs_in_its_callers_context(self, client: httpx.AsyncClient) -> None:
        writer = GroupCommit(app_of(client).state.db.sessionmaker)
        request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")

        async def seen(session: AsyncSession) -> str:
            return request_id.get("none")

        async def as_request(name: str) -> str:
            request_id.set(name)
            return await writer.run(seen)

        try:
            assert await asyncio.gather(as_request("r1"), as_request("r2")) == ["r1", "r2"]
        finally:
            await writer.close()

    async def test_a_closed_writer_starts_again_on_the_next_write(
        self, client: httpx.AsyncClient
    ) -> None:
        writer = GroupCommit(app_of(client).state.db.sessionmaker)
        assert await writer.run(lambda s: append_one(s, "x")) == 0
        await writer.close()
        assert await writer.run(lambda s: append_one(s, "y")) == 1
        await writer.close()


def _consent_columns() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": uuid.uuid4(),
        "subject_ref": "rtn_test",
        "grantor": "self",
        "grantee_org_id": "org",
        "grantee_service_category": None,
        "grantee_country": None,
        "purpose": "referral",
        "categories": ["contact"],
        "valid_from": now,
        "valid_until": now,
        "evidence_method": "written",
        "evidence_sha256": "0" * 64,
        "language": "en",
        "recorded_by_org": "org",
        "recorded_by_client": "client",
        "recorded_at": now,
        "expiry_recorded": False,
    }
