"""A service whose token is refused upstream renews it once instead of failing until it expires."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest

from shared.http import ClientCredentialsTokens, ServiceClient


class TokenIssuer:
    """A gateway issuing token-1, token-2, ... and an upstream that accepts only `valid`."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.refuse_all = False
        self.upstream_requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            token = f"token-{next(self._numbers)}"
            self.issued.append(token)
            self.valid = {token}
            return httpx.Response(200, json={"access_token": token, "expires_in": 300})
        self.upstream_requests += 1
        presented = request.headers["Authorization"].removeprefix("Bearer ")
        accepted = presented in self.valid and not self.refuse_all
        return httpx.Response(200 if accepted else 401, json={})


def _client(issuer: TokenIssuer) -> ServiceClient:
    transport = httpx.MockTransport(issuer)
    tokens = ClientCredentialsTokens(
        "http://gateway/oauth/token", "svc", "secret", transport=transport
    )
    return ServiceClient("http://upstream", tokens=tokens, transport=transport)


@pytest.mark.promise(6)
def test_a_refused_token_is_renewed_and_the_request_sent_again() -> None:
    issuer = TokenIssuer()
    client = _client(issuer)

    async def scenario() -> tuple[int, int]:
        first = await client.request("GET", "/thing")
        issuer.valid = set()  # the gateway withdrew the key that signed token-1
        second = await client.request("POST", "/thing", json={"a": 1})
        return first.status_code, second.status_code

    assert asyncio.run(scenario()) == (200, 200)
    assert issuer.issued == ["token-1", "token-2"]


def test_a_token_refused_twice_answers_401_without_a_loop() -> None:
    issuer = TokenIssuer()
    issuer.refuse_all = True
    client = _client(issuer)

    async def scenario() -> int:
        return (await client.request("GET", "/thing")).status_code

    assert asyncio.run(scenario()) == 401
    assert issuer.upstream_requests == 2
    assert issuer.issued == ["token-1", "token-2"]


@pytest.mark.parametrize("concurrent", [8])
def test_concurrent_refusals_fetch_one_new_token(concurrent: int) -> None:
    issuer = TokenIssuer()
    client = _client(issuer)

    async def scenario() -> list[int]:
        await client.request("GET", "/thing")
        issuer.valid = set()
        answers = await asyncio.gather(
            *(client.request("GET", "/thing") for _ in range(concurrent))
        )
        return [a.status_code for a in answers]

    assert asyncio.run(scenario()) == [200] * concurrent
    assert len(issuer.issued) <= 3
