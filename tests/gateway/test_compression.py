"""gzip on the wire: services compress answers of 1 KiB and more, the gateway relays them as is."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Response
from fastapi.responses import StreamingResponse

from services.directory.settings import DirectorySettings
from services.gateway.app import create_app
from shared.app import build_service_app
from tests.conftest import DatabaseFactory
from tests.gateway.conftest import SettingsFactory, get_token, register
from tests.gateway.upstreams import serve_http
from tests.services_under_test import SERVICES, TEST_SECRETS

BIG = {"items": [{"id": n, "name": f"service {n}", "languages": ["en", "fr"]} for n in range(80)]}
STREAM_LINES = [orjson.dumps({"line": n, "text": "x" * 200}) + b"\n" for n in range(300)]


@pytest.fixture
def gateway_settings(sqlite_gateway_settings: SettingsFactory) -> SettingsFactory:
    """No database behaviour is tested here: one backend is enough."""
    return sqlite_gateway_settings


def upstream(database_factory: DatabaseFactory) -> FastAPI:
    """A service built like ours (the shared app factory), with a big, a small and a streamed
    answer."""
    settings = DirectorySettings(
        environment="test",
        database_url=database_factory.fresh("directory", "sqlite"),
        log_level="WARNING",
    )
    app = build_service_app(title="upstream", description="compression test", settings=settings)

    @app.get("/big")
    async def big(response: Response) -> dict[str, Any]:
        response.headers["ETag"] = '"7"'
        return BIG

    @app.get("/small")
    async def small() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def lines() -> AsyncIterator[bytes]:
            for line in STREAM_LINES:
                yield line

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app


class Wire:
    """The raw bytes and headers of one answer, before any decoding."""

    def __init__(self, status: int, headers: httpx.Headers, raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = raw

    def vary(self) -> set[str]:
        return {v.strip().lower() for h in self.headers.get_list("vary") for v in h.split(",")}

    def content(self) -> bytes:
        gzipped = self.headers.get("content-encoding") == "gzip"
        return gzip.decompress(self.raw) if gzipped else self.raw


async def wire(http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> Wire:
    async with http.stream("GET", path, headers=headers) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        return Wire(response.status_code, response.headers, raw)


@pytest.fixture
async def through(
    gateway_settings: SettingsFactory, in_process: Any, database_factory: DatabaseFactory
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """A real upstream server behind a gateway in process; yields the client and a bearer."""
    async with serve_http(upstream(database_factory)) as url:
        settings = await gateway_settings(directory_url=url, consent_url=url, referral_url=url)
        app = create_app(settings)
        async with in_process(app) as http:
            client_id, secret = await register(app, roles=["host_office"])
            token = await get_token(http, client_id, secret)
            yield http, {"Authorization": f"Bearer {token}"}


class TestThroughTheGateway:
    async def test_a_big_answer_arrives_gzipped_once_with_its_etag_and_vary(
        self, through: tuple[httpx.AsyncClient, dict[str, str]]
    ) -> None:
        http, auth = through
        plain = await wire(http, "/api/v1/directory/big", {**auth, "Accept-Encoding": "identity"})
        packed = await wire(http, "/api/v1/directory/big", {**auth, "Accept-Encoding": "gzip"})
        assert packed.status == plain.status == 200
        assert packed.headers["content-encoding"] == "gzip"
        assert "content-encoding" not in plain.headers
        # Decompressed once, it is the JSON itself: nobody compressed it twice.
        assert orjson.loads(packed.content()) == orjson.loads(plain.raw) == BIG
        assert int(packed.headers["content-length"]) == len(packed.raw) < len(plain.raw) / 4
        assert packed.headers["etag"] == plain.headers["etag"] == '"7"'
        assert {"accept-encoding", "accept-language"} <= packed.vary()

    async def test_gzip_refused_with_q_zero_is_not_sent(
        self, through: tuple[httpx.AsyncClient, dict[str, str]]
    ) -> None:
        http, auth = through
        answer = await wire(
            http, "/api/v1/directory/big", {**auth, "Accept-Encoding": "gzip;q=0, br"}
        )
        assert "content-encoding" not in answer.headers
        assert orjson.loads(answer.raw) == BIG

    async def test_a_small_answer_is_not_compressed(
        self, through: tuple[httpx.AsyncClient, dict[str, str]]
    ) -> None:
        http, auth = through
        answer = await wire(http, "/api/v1/directory/small", {**auth, "Accept-Encoding": "gzip"})
        assert "content-encoding" not in answer.headers
        assert orjson.loads(answer.raw) == {"status": "ok"}

    async def test_a_streamed_answer_stays_streamed_and_whole(
        self, through: tuple[httpx.AsyncClient, dict[str, str]]
    ) -> None:
        http, auth = through
        answer = await wire(http, "/api/v1/directory/stream", {**auth, "Accept-Encoding": "gzip"})
        assert answer.headers["content-encoding"] == "gzip"
        assert "content-length" not in answer.headers
        assert answer.content() == b"".join(STREAM_LINES)

    async def test_the_gateways_own_documents_are_compressed(
        self, through: tuple[httpx.AsyncClient, dict[str, str]]
    ) -> None:
        http, _ = through
        answer = await wire(http, "/openapi.json", {"Accept-Encoding": "gzip, deflate"})
        assert answer.headers["content-encoding"] == "gzip"
        assert "paths" in orjson.loads(answer.content())


# The gateway's document needs its lifespan; TestThroughTheGateway covers it.
@pytest.mark.parametrize("service", sorted(set(SERVICES) - {"gateway"}))
async def test_every_service_compresses_its_answers(service: str) -> None:
    settings_cls, create = SERVICES[service]
    settings = settings_cls(
        environment="development", database_url="", **TEST_SECRETS.get(service, {})
    )
    app = create(settings)
    # The API description needs no database, so the app runs without its lifespan.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://testserver"
    ) as http:
        answer = await wire(http, "/openapi.json", {"Accept-Encoding": "gzip"})
        plain = await wire(http, "/openapi.json", {"Accept-Encoding": "identity"})
    assert answer.headers["content-encoding"] == "gzip"
    assert orjson.loads(answer.content()) == orjson.loads(plain.raw)
