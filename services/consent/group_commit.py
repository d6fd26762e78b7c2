"""Group commit: concurrent ledger writes share one transaction, one ledger lock, one commit.

Every append must hold the ledger lock until its transaction commits (the next append reads the
committed size), so per-request transactions serialise their commits one by one. Here one task
takes the writes waiting at that moment, runs each in its own savepoint, in arrival order, and
commits them together: the lock is taken once per batch and the appends of the whole batch are
written in one statement. Each write still sees the ones before it; a failing write is taken out
and the others run again from the same state (so no index is skipped); other processes queue on
the same row lock as before.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.consent.ledger import Ledger, release

T = TypeVar("T")
Work = Callable[[AsyncSession], Coroutine[Any, Any, Any]]
MAX_BATCH = 64


@dataclass
class _Pending:
    work: Work
    done: asyncio.Future[Any]
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    outcome: tuple[bool, Any] | None = None  # (succeeded, result or exception)


class GroupCommit:
    """One writer task per process that batches whatever writes arrive while it commits."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, max_batch: int = MAX_BATCH
    ) -> None:
        self._sessionmaker = sessionmaker
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # for tests and benchmarks: how many commits served the writes

    async def run(self, work: Callable[[AsyncSession], Coroutine[Any, Any, T]]) -> T:
        """Run `work(session)` in the next batch; return its result once the batch committed."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._serve(), name="ledger-group-commit")
        pending = _Pending(work, asyncio.get_running_loop().create_future())
        pending.done.add_done_callback(_retrieved)  # a caller that gave up leaves no warning
        await self._queue.put(pending)
        result: T = await asyncio.shield(pending.done)
        return result

    async def close(self) -> None:
        """Stop the writer task; writes already queued fail with CancelledError."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        while not self._queue.empty():
            self._queue.get_nowait().done.cancel()

    async def _serve(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                for pending in batch:
                    if not pending.done.done():
                        pending.done.cancel()
                raise

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            async with self._sessionmaker() as session, session.begin():
                ledger = await Ledger.lock(session, deferred=True)
                await self._run_all(session, ledger, batch)
                release(session)
                await ledger.flush()
        except Exception as error:  # the commit failed: nothing of the batch is stored
            for pending in batch:
                if pending.outcome is None or pending.outcome[0]:
                    pending.outcome = (False, error)
        self.batches += 1
        for pending in batch:
            _settle(pending)

    async def _run_all(self, session: AsyncSession, ledger: Ledger, batch: list[_Pending]) -> None:
        """Run the batch in order; when one write fails, roll back and run the others again.

        One savepoint per attempt, not per write: failures are rare, round trips are not. The
        ledger stays locked throughout, so the retry sees what the first attempt saw.
        """
        remaining = list(batch)
        while remaining:
            failed = None
            async with session.begin_nested() as attempt:
                for pending in remaining:
                    pending.outcome = await self._one(session, pending)
                    if not pending.outcome[0]:
                        failed = pending
                        break
                if failed is None:
                    return
                await attempt.rollback()
            ledger.rewind()
            remaining.remove(failed)
            for pending in remaining:
                pending.outcome = None

    async def _one(self, session: AsyncSession, pending: _Pending) -> tuple[bool, Any]:
        try:
            # In the caller's context, so its request id and language stay in force.
            task = asyncio.create_task(pending.work(session), context=pending.context)
            return True, await task
        except Exception as error:
            return False, error


def _settle(pending: _Pending) -> None:
    if pending.done.done() or pending.outcome is None:
        return
    succeeded, value = pending.outcome
    if succeeded:
        pending.done.set_result(value)
    else:
        pending.done.set_exception(value)


def _retrieved(done: asyncio.Future[Any]) -> None:
    if not done.cancelled():
        done.exception()
