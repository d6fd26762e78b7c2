"""Bytes on the wire of an inbox page of 50 referrals through the gateway.

Starts the four services on fresh SQLite files (what is on the wire does not depend on the
database), records 50 consents and sends 50 referrals as the demo host office, then reads the
provider's inbox page of 50 four ways: with and without gzip, with and without
`include=payload`. Counted: the status line, the headers and the body exactly as received
(nothing decompressed). The goal is the default page a provider's inbox asks for, gzipped.

    .venv/bin/python bench/inbox.py [--quick]
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Target, parse_args, report
from bench._stack import RunningStack, running_stack
from bench.referral_create import record_consents, referral_request, token

PAGE = 50
GOAL_BYTES = 20 * 1024
VARIANTS = (
    ("identity", False),
    ("identity", True),
    ("gzip", False),
    ("gzip", True),
)


async def send_referrals(base: str, bearer: str, count: int) -> None:
    """Consent for and refer `count` returnees, eight at a time."""
    subjects = [f"bench-{secrets.token_hex(10)}" for _ in range(count)]
    await record_consents(base, bearer, subjects)
    create = referral_request(base, bearer, subjects)
    async with aiohttp.ClientSession(trust_env=False) as session:
        for start in range(0, count, 8):
            created = await asyncio.gather(
                *(create(session, n) for n in range(start, min(count, start + 8)))
            )
            if not all(created):
                raise RuntimeError("a referral was refused; see the service logs")


def _header_bytes(response: aiohttp.ClientResponse) -> int:
    status_line = len(f"HTTP/1.1 {response.status} {response.reason}\r\n")
    return status_line + sum(len(k) + len(v) + 4 for k, v in response.raw_headers) + 2


async def page_on_wire(
    session: aiohttp.ClientSession, base: str, bearer: str, encoding: str, payload: bool
) -> dict[str, Any]:
    params = {"box": "received", "limit": str(PAGE), **({"include": "payload"} if payload else {})}
    headers = {"Authorization": f"Bearer {bearer}", "Accept-Encoding": encoding}
    started = time.perf_counter()
    async with session.get(f"{base}/api/v1/referrals", params=params, headers=headers) as reply:
        body = await reply.read()
        if reply.status != 200:
            raise RuntimeError(f"inbox refused: {reply.status} {body[:200]!r}")
        return {
            "body_bytes": len(body),
            "header_bytes": _header_bytes(reply),
            "encoding": reply.headers.get("Content-Encoding", "identity"),
            "ms": (time.perf_counter() - started) * 1000,
        }


async def measure(stack: RunningStack, repeats: int) -> list[dict[str, Any]]:
    base = stack.url("gateway")
    async with aiohttp.ClientSession(trust_env=False) as session:
        host = await token(session, base, stack.credentials["host_office"])
        provider = await token(session, base, stack.credentials["provider"])
    await send_referrals(base, host, PAGE)
    rows = []
    # No automatic decompression: what is counted is what crossed the wire.
    async with aiohttp.ClientSession(trust_env=False, auto_decompress=False) as session:
        for encoding, payload in VARIANTS:
            runs = [
                await page_on_wire(session, base, provider, encoding, payload)
                for _ in range(repeats)
            ]
            wire = [r["body_bytes"] + r["header_bytes"] for r in runs]
            rows.append(
                {
                    "accept_encoding": encoding,
                    "include": "payload" if payload else "-",
                    "content_encoding": runs[-1]["encoding"],
                    "body_bytes": int(statistics.median(r["body_bytes"] for r in runs)),
                    "wire_bytes": int(statistics.median(wire)),
                    "per_item_bytes": round(statistics.median(wire) / PAGE),
                    "p50_ms": round(statistics.median(r["ms"] for r in runs), 2),
                }
            )
    return rows


def main() -> None:
    args = parse_args(__doc__ or "")
    repeats = 5 if args.quick else 21
    with running_stack("inbox", "sqlite", profile=args.profile) as stack:
        rows = asyncio.run(measure(stack, repeats))
    by_variant = {(r["accept_encoding"], r["include"]): r for r in rows}
    default_gzip = by_variant[("gzip", "-")]["wire_bytes"]
    report(
        "inbox",
        [
            Target(f"inbox page of {PAGE}, gzip, on the wire", default_gzip, GOAL_BYTES, "<=", "B"),
        ],
        rows,
        notes=[
            f"one page of {PAGE} referrals received by the demo provider, through the gateway, "
            f"SQLite; median of {repeats} reads per variant (sizes do not vary; times are "
            "loopback and only indicative)",
            "wire_bytes = status line + headers + body as received (not decompressed)",
            "include=payload adds each referral's JWE (the case file encrypted to two keys): "
            "the payload is read with the single GET /referrals/{id}",
        ],
    )


if __name__ == "__main__":
    main()
