"""The ledger over HTTP: signed tree heads, inclusion and consistency proofs, entries, key."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.consent import merkle
from services.consent.app import create_app
from tests.consent.conftest import Callers, consent_body, grant


async def fill(client: httpx.AsyncClient, callers: Callers, count: int) -> list[dict[str, Any]]:
    return [await grant(client, callers) for _ in range(count)]


async def sign(client: httpx.AsyncClient, callers: Callers) -> dict[str, Any]:
    response = await client.post("/ledger/tree-head", headers=callers.auditor())
    assert response.status_code == 201
    head: dict[str, Any] = response.json()
    return head


def canonical(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


class TestTreeHeads:
    async def test_a_tree_head_is_signed_with_the_published_key(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        await fill(client, callers, 3)
        head = await sign(client, callers)
        key = (await client.get("/ledger/public-key", headers=callers.provider())).json()
        assert key["jwk"]["kty"] == "OKP"
        assert key["key_id"] == head["key_id"]
        statement = orjson.loads(head["signed_statement"])
        assert statement["tree_size"] == head["tree_size"] == 3
        assert statement["root_hash"] == head["root_hash"]
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
        public.verify(base64.b64decode(head["signature"]), head["signed_statement"].encode())
        latest = await client.get("/ledger/tree-head", headers=callers.service())
        assert latest.json() == head

    async def test_the_first_read_signs_the_empty_tree_and_roles_are_checked(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        head = (await client.get("/ledger/tree-head", headers=callers.host())).json()
        assert head["tree_size"] == 0
        assert head["root_hash"] == merkle.EMPTY_ROOT.hex()
        assert (await client.post("/ledger/tree-head", headers=callers.host())).status_code == 403
        assert (await client.get("/ledger/entries", headers=callers.host())).status_code == 403


class TestProofs:
    async def test_every_entry_is_provably_in_the_signed_tree(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        await fill(client, callers, 7)
        head = await sign(client, callers)
        entries = (
            await client.get("/ledger/entries?start=0&end=7", headers=callers.auditor())
        ).json()
        for entry in entries:
            proof = (
                await client.get(
                    f"/ledger/entries/{entry['index']}/proof?tree_size=7", headers=callers.host()
                )
            ).json()
            leaf = merkle.leaf_hash(canonical(entry["body"]))
            assert proof["leaf_hash"] == entry["leaf_hash"] == leaf.hex()
            assert proof["root_hash"] == head["root_hash"]
            merkle.verify_inclusion(
                index=entry["index"],
                size=7,
                leaf=leaf,
                proof=[bytes.fromhex(h) for h in proof["audit_path"]],
                root=bytes.fromhex(head["root_hash"]),
            )

    async def test_an_older_tree_head_is_consistent_with_a_newer_one(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        await fill(client, callers, 3)
        old = await sign(client, callers)
        await fill(client, callers, 4)
        new = await sign(client, callers)
        proof = (
            await client.get(
                f"/ledger/consistency?first={old['tree_size']}&second={new['tree_size']}",
                headers=callers.auditor(),
            )
        ).json()
        assert (proof["first_root"], proof["second_root"]) == (old["root_hash"], new["root_hash"])
        merkle.verify_consistency(
            first=3,
            second=7,
            proof=[bytes.fromhex(h) for h in proof["proof"]],
            first_root=bytes.fromhex(old["root_hash"]),
            second_root=bytes.fromhex(new["root_hash"]),
        )

    async def test_sizes_outside_the_ledger_are_422(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        await fill(client, callers, 2)
        for path in (
            "/ledger/entries/2/proof",
            "/ledger/entries/0/proof?tree_size=3",
            "/ledger/consistency?first=3",
            "/ledger/consistency?first=2&second=1",
            "/ledger/entries?start=0&end=5000",
        ):
            response = await client.get(path, headers=callers.auditor())
            assert response.status_code == 422, path
            assert response.json()["detail"]


class TestConcurrentWriters:
    async def test_fifty_parallel_grants_and_withdrawals_leave_one_sequence(
        self, client: httpx.AsyncClient, callers: Callers
    ) -> None:
        existing = await fill(client, callers, 25)

        async def withdraw(consent_id: str) -> int:
            response = await client.post(
                f"/consents/{consent_id}/withdraw", json={"reason": "other"}, headers=callers.host()
            )
            return response.status_code

        async def grant_one() -> int:
            return (
                await client.post("/consents", json=consent_body(), headers=callers.host())
            ).status_code

        jobs = [withdraw(c["id"]) for c in existing] + [grant_one() for _ in range(25)]
        racing = [withdraw(existing[0]["id"]) for _ in range(3)]
        statuses = await asyncio.gather(*jobs, *racing)
        succeeded = [s for s in statuses if s in (200, 201)]
        assert len(succeeded) == 50
        assert statuses.count(409) == 3
        entries = (
            await client.get("/ledger/entries?start=0&end=200", headers=callers.auditor())
        ).json()
        assert [e["index"] for e in entries] == list(range(75))
        assert [e["body"]["index"] for e in entries] == list(range(75))
        head = await sign(client, callers)
        assert head["tree_size"] == 75
        leaves = [canonical(e["body"]) for e in entries]
        assert head["root_hash"] == merkle.tree_hash(leaves).hex()


class TestBackgroundSigning:
    async def test_tree_heads_follow_new_entries_without_being_asked(
        self, consent_settings: Any, in_process: Any, callers: Callers
    ) -> None:
        settings = await asyncio.to_thread(
            consent_settings, workers_enabled=True, tree_head_interval_s=0.05
        )
        async with in_process(create_app(settings)) as client:
            empty = (await client.get("/ledger/tree-head", headers=callers.auditor())).json()
            assert empty["tree_size"] == 0
            await fill(client, callers, 2)
            for _ in range(200):
                head = (await client.get("/ledger/tree-head", headers=callers.auditor())).json()
                if head["tree_size"] == 2:
                    break
                await asyncio.sleep(0.02)
            assert head["tree_size"] == 2
            await asyncio.sleep(0.2)
            again = (await client.get("/ledger/tree-head", headers=callers.auditor())).json()
        assert again == head, "no new head is signed while nothing new arrives"
