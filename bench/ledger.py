"""The consent ledger on PostgreSQL: append rate, verification time, inclusion-proof time.

Creates its own database, measures, and drops it. Figures that count are ratios measured in
this run: ledger appends per second against plain single-row inserts through the same engine
and concurrency; inclusion-proof time at 1M entries against 1k entries. Verification of 1M
entries is timed absolutely (the issue's budget is 10 s).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Target, parse_args, report
from services.consent import merkle
from services.consent.group_commit import GroupCommit
from services.consent.ledger import Ledger, event_body, inclusion_proof, sign_tree_head
from services.consent.signing import TreeHeadSigner
from services.consent.verify import verify_ledger
from shared.db import Database
from shared.migrations import upgrade

ADMIN_URL = os.environ.get(
    "REFEX_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
CONCURRENCY = 8
PLAIN_INSERT = text("INSERT INTO bench_plain (event_type, appended_at, body) VALUES (:t, :a, :b)")
EVENT = {
    "consent_id": "0192f0c4-7d1e-7cc3-9a55-3c1f2a3b4c5d",
    "subject_ref": "rtn_7Qk2vX9mB4sLp0Wz",
    "categories": ["identity.basic", "contact", "health.physical"],
    "recipient_org_id": "0192f000-0000-7000-8000-000000000002",
    "sender_org_id": "0192f000-0000-7000-8000-000000000001",
    "basis": "consent",
}


async def admin(statement: str) -> None:
    """Run one statement on the maintenance database."""
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def url_of(name: str, scheme: str = "postgresql+asyncpg") -> str:
    """Return the URL of database `name` on the benchmark server."""
    base = ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0]
    return f"{scheme}://{base}/{name}"


async def rate(work: Callable[[], Awaitable[None]], *, seconds: float, concurrency: int) -> float:
    """Return operations per second of `work` run by `concurrency` workers for `seconds`."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await work()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def append_rates(database: Database, seconds: float) -> list[dict[str, Any]]:
    """Measure ledger appends against plain inserts, alternating, three rounds each."""
    async with database.engine.begin() as connection:
        await connection.exec_driver_sql(
            "CREATE TABLE bench_plain (id bigserial PRIMARY KEY, event_type text, "
            "appended_at timestamptz, body bytea)"
        )

    writer = GroupCommit(database.sessionmaker)

    async def append_in(session: AsyncSession) -> int:
        ledger = await Ledger.lock(session)
        return await ledger.append(
            event_type="disclosure.made", data=EVENT, at=datetime.now(UTC), retain_days=3650
        )

    async def grouped() -> None:
        await writer.run(append_in)

    async def one_transaction_each() -> None:
        async with database.sessionmaker() as session, session.begin():
            await append_in(session)

    async def plain() -> None:
        body = event_body(index=0, event_type="x", occurred_at=datetime.now(UTC), data=EVENT)
        async with database.sessionmaker() as session, session.begin():
            await session.execute(
                PLAIN_INSERT, {"t": "disclosure.made", "a": datetime.now(UTC), "b": body}
            )

    rows = []
    try:
        for concurrency in (1, CONCURRENCY):
            runs: dict[str, list[float]] = {"plain": [], "grouped": [], "each": []}
            batches = 0
            for _ in range(3):
                runs["plain"].append(await rate(plain, seconds=seconds, concurrency=concurrency))
                before = writer.batches
                runs["grouped"].append(
                    await rate(grouped, seconds=seconds, concurrency=concurrency)
                )
                batches += writer.batches - before
                runs["each"].append(
                    await rate(one_transaction_each, seconds=seconds, concurrency=concurrency)
                )
            plain_rate = statistics.median(runs["plain"])
            grouped_rate = statistics.median(runs["grouped"])
            each_rate = statistics.median(runs["each"])
            rows.append(
                {
                    "measurement": f"appends/s, {concurrency} writer(s)",
                    "ledger": round(grouped_rate, 1),
                    "plain insert": round(plain_rate, 1),
                    "ratio": round(grouped_rate / plain_rate, 3),
                    "one txn per append (before)": round(each_rate / plain_rate, 3),
                    "appends per commit": round(
                        sum(runs["grouped"]) * seconds / max(batches, 1), 1
                    ),
                }
            )
    finally:
        await writer.close()
    return rows


async def bulk_fill(name: str, *, start: int, end: int, tree: merkle.CompactRange) -> None:
    """Append entries [start, end) fast with COPY, exactly as appends would store them."""
    at = datetime.now(UTC)
    retain = at + timedelta(days=3650)
    nodes: list[tuple[int, int, bytes]] = []
    entries: list[tuple[int, str, datetime, datetime, bytes]] = []
    for index in range(start, end):
        body = event_body(index=index, event_type="disclosure.made", occurred_at=at, data=EVENT)
        nodes.extend(tree.append(merkle.leaf_hash(body)))
        entries.append((index, "disclosure.made", at, retain, body))
    connection = await asyncpg.connect(url_of(name, "postgresql"))
    try:
        async with connection.transaction():
            await connection.copy_records_to_table(
                "ledger_node", records=nodes, columns=["level", "position", "hash"]
            )
            await connection.copy_records_to_table(
                "ledger_entry",
                records=entries,
                columns=["index", "event_type", "appended_at", "retain_until", "body"],
            )
            await connection.execute(
                "UPDATE ledger_state SET size = $1, frontier = $2 WHERE id = 1",
                tree.size,
                b"".join(tree.hashes),
            )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def read_and_hash_floor(name: str, size: int) -> float:
    """Seconds to read every leaf hash and body once and SHA-256 each body: the least work
    any full verification must do, measured in the same run to judge the verify figure."""
    connection = await asyncpg.connect(url_of(name, "postgresql"))
    started = time.perf_counter()
    try:
        for start in range(0, size, 1 << 14):
            rows = await connection.fetch(
                'SELECT n.hash, e.body FROM ledger_node n JOIN ledger_entry e ON e."index" = '
                "n.position WHERE n.level = 0 AND n.position >= $1 AND n.position < $2 "
                'AND e."index" >= $1 AND e."index" < $2',
                start,
                start + (1 << 14),
            )
            for leaf, body in rows:
                _ = hashlib.sha256(b"\x00" + body).digest() == leaf
    finally:
        await connection.close()
    return time.perf_counter() - started


async def proof_time(database: Database, size: int, samples: int) -> float:
    """Return the median milliseconds of one inclusion proof (a database read and hashing)."""
    timings = []
    async with database.sessionmaker() as session:
        for _ in range(samples):
            index = random.randrange(size)
            started = time.perf_counter()
            await inclusion_proof(session, index=index, tree_size=size)
            timings.append((time.perf_counter() - started) * 1000)
            await session.rollback()
    return statistics.median(timings)


async def sign(database: Database, signer: TreeHeadSigner) -> None:
    """Sign a tree head of the current size."""
    async with database.sessionmaker() as session, session.begin():
        await sign_tree_head(session, signer=signer, only_if_grown=False)


async def run(quick: bool) -> None:
    """Create the database, measure, report, drop it."""
    big = 100_000 if quick else 1_000_000
    name = f"refex_bench_ledger_{secrets.token_hex(4)}"
    await admin(f'CREATE DATABASE "{name}"')
    try:
        await asyncio.to_thread(upgrade, "consent", url_of(name))
        await measure(name, big=big, quick=quick)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def measure(name: str, *, big: int, quick: bool) -> None:
    """Take every measurement on database `name`."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signer = TreeHeadSigner(Ed25519PrivateKey.generate())
    database = Database(url_of(name), pool_size=CONCURRENCY)
    try:
        rows = await append_rates(database, seconds=1.0 if quick else 3.0)
        async with database.engine.begin() as connection:
            for table in ("ledger_node", "ledger_entry", "tree_head"):
                await connection.exec_driver_sql(f"TRUNCATE {table}")
            await connection.exec_driver_sql("UPDATE ledger_state SET size = 0, frontier = ''")
        tree = merkle.CompactRange()
        await bulk_fill(name, start=0, end=1000, tree=tree)
        await sign(database, signer)
        samples = 300 if quick else 1000
        small = await proof_time(database, 1000, samples)
        fill_started = time.perf_counter()
        for start in range(1000, big, 100_000):
            await bulk_fill(name, start=start, end=min(big, start + 100_000), tree=tree)
            await sign(database, signer)
        fill_s = time.perf_counter() - fill_started
        large = await proof_time(database, big, samples)
        started = time.perf_counter()
        verified = await verify_ledger(database.engine, trusted_key=signer.public_key)
        verify_s = time.perf_counter() - started
        assert verified.ok, verified.first()
        floor_s = await read_and_hash_floor(name, big)
    finally:
        await database.dispose()
    rows += [
        {"measurement": "inclusion proof, 1k entries (ms, median)", "ledger": round(small, 3)},
        {
            "measurement": f"inclusion proof, {big:,} entries (ms, median)",
            "ledger": round(large, 3),
            "ratio": round(large / small, 3),
        },
        {
            "measurement": f"verify {big:,} entries, {verified.tree_heads} tree heads (s)",
            "ledger": round(verify_s, 2),
        },
        {
            "measurement": f"floor: read + hash every body once, {big:,} (s)",
            "ledger": round(floor_s, 2),
        },
        {
            "measurement": "verify / floor",
            "ledger": round(verify_s / floor_s, 2),
        },
        {
            "measurement": f"bulk load of {big:,} entries by COPY (s, setup)",
            "ledger": round(fill_s, 1),
        },
    ]
    concurrent = next(r for r in rows if r["measurement"].endswith(f"{CONCURRENCY} writer(s)"))
    single = rows[0]
    targets = [
        Target("appends vs plain insert, 1 writer", single["ratio"], 0.5, ">=", "x"),
        Target(
            f"appends vs plain insert, {CONCURRENCY} writers", concurrent["ratio"], 0.5, ">=", "x"
        ),
        Target(
            f"verify {big:,} entries", verify_s * (1_000_000 / big), 10.0, "<=", "s (scaled to 1M)"
        ),
        Target("inclusion proof 1M / 1k", large / small, 2.0, "<=", "x"),
    ]
    notes = [
        "PostgreSQL on loopback; appends go through GroupCommit.run(Ledger.lock + Ledger.append), "
        "the service's path: the writes waiting at a moment share one transaction, one row lock "
        "on ledger_state and one commit; 'one txn per append (before)' is the earlier path (each "
        "append its own transaction holding the lock through its commit), as a ratio to plain.",
        "plain insert: one INSERT of the same body per transaction through the same engine.",
    ]
    notes.append(
        "load average (1/5/15 min) at the end of the run: "
        + " / ".join(f"{value:.1f}" for value in os.getloadavg())
        + f" on {os.cpu_count()} CPUs (absolute times suffer on a shared machine)"
    )
    if quick:
        notes.append(f"--quick: {big:,} entries; the verify figure is scaled linearly to 1M")
    report("ledger", targets, rows, notes)


def main() -> None:
    """Entry point."""
    args = parse_args(__doc__ or "")
    asyncio.run(run(args.quick))


if __name__ == "__main__":
    main()
