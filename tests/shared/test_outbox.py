"""The shared outbox on a table of its own: claims, leases, settling, limits and back-off."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.clock import utcnow
from shared.db import Database, service_metadata
from shared.outbox import Outbox, OutboxColumns, OutboxPolicy, OutboxSettings
from shared.settings import ServiceSettings


class Base(DeclarativeBase):
    metadata = service_metadata()


class Note(OutboxColumns, Base):
    __tablename__ = "note"

    target: Mapped[str] = mapped_column(String(32))


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    async with database.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield database
    await database.dispose()


async def queue(database: Database, *targets: str) -> None:
    async with database.sessionmaker() as session, session.begin():
        for target in targets:
            session.add(Note(id=uuid.uuid4(), target=target, attempts=0, next_attempt_at=utcnow()))


async def rows(database: Database) -> dict[str, Note]:
    async with database.sessionmaker() as session:
        return {note.target: note for note in (await session.scalars(select(Note))).all()}


def outbox(database: Database, deliver: object, **policy: object) -> Outbox[Note]:
    return Outbox(
        name="notes",
        model=Note,
        enqueued_at=Note.next_attempt_at,
        sessionmaker=database.sessionmaker,
        deliver=deliver,  # type: ignore[arg-type]
        policy=OutboxPolicy(**policy),  # type: ignore[arg-type]
    )


class TestSettling:
    async def test_every_kind_of_failure_is_an_attempt_and_the_others_are_delivered(
        self, database: Database
    ) -> None:
        await queue(database, "ok", "raises", "hangs", "refuses")

        async def deliver(note: Note) -> str | None:
            if note.target == "raises":
                raise ValueError("a broken receiver")
            if note.target == "hangs":
                await asyncio.Event().wait()
            return "HTTP 500" if note.target == "refuses" else None

        assert await outbox(database, deliver, delivery_timeout_s=0.05).deliver_due() == 4
        settled = await rows(database)
        assert settled["ok"].delivered_at is not None and settled["ok"].attempts == 1
        errors = {t: (settled[t].attempts, settled[t].last_error) for t in settled if t != "ok"}
        assert errors == {
            "raises": (1, "ValueError"),
            "hangs": (1, "timeout"),
            "refuses": (1, "HTTP 500"),
        }
        assert all(settled[t].next_attempt_at > utcnow() for t in errors)

    async def test_the_last_attempt_makes_a_dead_letter_that_is_never_claimed(
        self, database: Database
    ) -> None:
        await queue(database, "down")

        async def deliver(note: Note) -> str | None:
            return "HTTP 503"

        box = outbox(database, deliver, max_attempts=1)
        assert await box.deliver_due() == 1
        assert await box.deliver_due() == 0
        [dead] = (await rows(database)).values()
        assert dead.dead_at is not None and dead.attempts == 1
        stats = await box.stats()
        assert (stats.depth, stats.dead_letters) == (0, 1)

    async def test_calls_in_flight_never_exceed_the_concurrency(self, database: Database) -> None:
        await queue(database, *(f"t{n}" for n in range(12)))
        in_flight, peak = 0, 0

        async def deliver(note: Note) -> str | None:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0)
            in_flight -= 1
            return None

        assert await outbox(database, deliver, concurrency=3).deliver_due() == 12
        assert peak == 3

    async def test_a_leased_event_is_not_claimed_again_while_its_call_runs(
        self, database: Database
    ) -> None:
        await queue(database, "slow")
        calls = 0
        release = asyncio.Event()
        started = asyncio.Event()

        async def deliver(note: Note) -> str | None:
            nonlocal calls
            calls += 1
            started.set()
            await release.wait()
            return None

        first = asyncio.create_task(outbox(database, deliver).deliver_due())
        await started.wait()
        assert await outbox(database, deliver).deliver_due() == 0  # a second replica
        release.set()
        assert await first == 1 and calls == 1

    async def test_an_expired_lease_is_claimed_again(self, database: Database) -> None:
        await queue(database, "crashed")
        async with database.sessionmaker() as session, session.begin():
            note = (await session.scalars(select(Note))).one()
            note.leased_until = utcnow() - timedelta(seconds=1)  # its worker died mid-call

        async def deliver(note: Note) -> str | None:
            return None

        assert await outbox(database, deliver).deliver_due() == 1


class TestPolicy:
    @given(attempts=st.integers(min_value=1, max_value=60))
    def test_backoff_doubles_with_jitter_up_to_the_cap(self, attempts: int) -> None:
        policy = OutboxPolicy(backoff_base_s=1.0, backoff_cap_s=600.0)
        ceiling = min(600.0, 2.0 ** (attempts - 1))
        assert ceiling / 2 <= policy.backoff_s(attempts) <= ceiling

    def test_the_backoff_is_jittered(self) -> None:
        policy = OutboxPolicy()
        assert len({policy.backoff_s(5) for _ in range(20)}) > 1

    def test_a_lease_shorter_than_a_batch_is_refused_naming_the_variable(self) -> None:
        class Settings(OutboxSettings):
            service_name = "probe"

        with pytest.raises(ValidationError, match="OUTBOX_LEASE_S"):
            Settings(outbox_lease_s=5, outbox_delivery_timeout_s=10)
        assert issubclass(Settings, ServiceSettings)
