"""Partner URLs: the rules, resolution, and a transport that connects only where it checked."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.directory.settings import DirectorySettings
from services.referral.settings import ReferralSettings
from shared.partner_urls import (
    PartnerAddressRefused,
    UnsafePartnerUrl,
    UrlPolicy,
    check_partner_url,
    check_registered_url,
    guarded_transport,
    resolve_checked,
)

STRICT = UrlPolicy(require_https=True, allow_private=False)
LOCAL = UrlPolicy(require_https=False, allow_private=True)
PUBLIC_IP = "93.184.216.34"

FORBIDDEN = [
    ("http://127.0.0.1:8002/consents", "loopback"),
    ("https://127.0.0.1/", "loopback"),
    ("https://localhost/hook", "loopback"),
    ("https://2130706433/", "loopback"),  # 127.0.0.1 in decimal
    ("https://0x7f.1/", "loopback"),
    ("https://127.1/", "loopback"),
    ("https://[::1]/", "loopback"),
    ("https://[::ffff:127.0.0.1]/", "loopback"),
    ("https://[::ffff:a9fe:a9fe]/", "link-local"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ("https://[fe80::1]/", "link-local"),
    ("https://10.0.0.5/hook", "RFC 1918"),
    ("https://172.16.3.4/hook", "RFC 1918"),
    ("https://192.168.1.1/hook", "RFC 1918"),
    ("https://[64:ff9b::a00:5]/", "RFC 1918"),  # NAT64 form of 10.0.0.5
    ("https://[fd12:3456::1]/", "RFC 4193"),
    ("https://100.64.0.1/", "carrier-grade NAT"),
    ("https://224.0.0.1/", "multicast"),
    ("https://[ff02::1]/", "multicast"),
    ("https://0.0.0.0/", "unspecified"),
    ("https://0/", "unspecified"),
    ("https://[::]/", "unspecified"),
    ("https://255.255.255.255/", "broadcast"),
    ("https://192.0.2.10/", "not reachable on the public internet"),
    ("https://1.2.3.4.5/", "not one"),
    ("https://user:secret@hooks.partner.example/", "user name or password"),
    ("ftp://hooks.partner.example/", "absolute http(s)"),
    ("/relative/hook", "absolute http(s)"),
    ("https://hooks.partner.example/" + "a" * 2000, "longer than"),
    ("https://hooks partner.example/", "spaces"),
    ("https://%31%32%37.0.0.1/", "not a valid DNS name"),
]


class TestTheRules:
    @pytest.mark.promise(3)
    @pytest.mark.parametrize(("url", "rule"), FORBIDDEN)
    def test_forbidden_urls_are_refused_saying_which_rule(self, url: str, rule: str) -> None:
        with pytest.raises(UnsafePartnerUrl) as refused:
            check_partner_url(url, STRICT)
        assert refused.value.status == 422
        assert rule in str(refused.value.detail)
        assert "public internet" in str(refused.value.detail) or "Use" in str(refused.value.detail)

    @pytest.mark.promise(3)
    def test_http_is_refused_outside_development(self) -> None:
        with pytest.raises(UnsafePartnerUrl, match="Use https"):
            check_partner_url("http://hooks.partner.example/refex", STRICT)
        dev = UrlPolicy(require_https=False)
        assert check_partner_url("http://hooks.partner.example/refex", dev).startswith("http:")

    @pytest.mark.parametrize(
        ("url", "normalised"),
        [
            ("https://hooks.partner.example/refex?x=1", "https://hooks.partner.example/refex?x=1"),
            ("https://HOOKS.Partner.Example./refex", "https://hooks.partner.example/refex"),
            ("https://BÜCHER.example/hook", "https://xn--bcher-kva.example/hook"),
            ("https://134744072/hook", "https://8.8.8.8/hook"),
            ("https://[2606:4700::1111]:8443/x", "https://[2606:4700::1111]:8443/x"),
        ],
    )
    def test_public_urls_pass_normalised(self, url: str, normalised: str) -> None:
        assert check_partner_url(url, STRICT) == normalised

    def test_allowing_private_still_refuses_link_local_multicast_and_unspecified(self) -> None:
        assert check_partner_url("http://127.0.0.1:9000/hook", LOCAL)
        assert check_partner_url("http://10.1.2.3/hook", LOCAL)
        for url in ("http://169.254.169.254/", "http://224.0.0.1/", "http://0.0.0.0:9000/"):
            with pytest.raises(UnsafePartnerUrl):
                check_partner_url(url, LOCAL)

    @pytest.mark.promise(3)
    def test_the_exchanges_own_services_are_refused_even_when_private_is_allowed(self) -> None:
        settings = ReferralSettings(environment="development", partner_urls_allow_private=True)
        policy = UrlPolicy.from_settings(settings)
        assert policy.allow_private and not policy.require_https
        for url in (
            "http://127.0.0.1:8002/consents",  # the consent service, from consent_url
            "http://localhost:8001/organisations",  # the directory, by another loopback name
            "http://[::1]:8003/referrals",  # the referral service itself
            "http://127.0.0.1:8000/oauth/token",  # the gateway, from token_url
        ):
            with pytest.raises(UnsafePartnerUrl, match="own services"):
                check_partner_url(url, policy)
        assert check_partner_url("http://127.0.0.1:9000/hook", policy)

    def test_policy_from_settings_requires_https_outside_development(self) -> None:
        test = UrlPolicy.from_settings(DirectorySettings(environment="test"))
        assert test.require_https and not test.allow_private
        redis = ReferralSettings(environment="development", redis_url="redis://cache:6380/0")
        assert ("cache", 6380) in UrlPolicy.from_settings(redis).own_addresses


# Resolution


class FakeDns:
    """Answers for made-up names (a list per name: one answer per lookup); others resolve."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[list[str]]]):
        self.answers = answers
        self.lookups: list[str] = []
        self._real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in self.answers:
            return self._real(host, port, *args, **kwargs)
        self.lookups.append(name)
        queue = self.answers[name]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [_info(address, int(port)) for address in addresses]


def _info(address: str, port: int) -> tuple[Any, ...]:
    if ipaddress.ip_address(address).version == 6:
        return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))


class TestResolution:
    @pytest.mark.promise(3)
    async def test_a_name_is_refused_when_any_of_its_addresses_is_forbidden(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        FakeDns(monkeypatch, {"mixed.partner.example": [[PUBLIC_IP, "10.0.0.7"]]})
        with pytest.raises(UnsafePartnerUrl, match="RFC 1918"):
            await resolve_checked("mixed.partner.example", 443, STRICT)

    async def test_public_answers_are_returned(self, monkeypatch: pytest.MonkeyPatch) -> None:
        FakeDns(monkeypatch, {"hooks.partner.example": [[PUBLIC_IP, "2606:4700::1111"]]})
        addresses = await resolve_checked("hooks.partner.example", 443, STRICT)
        assert addresses == [PUBLIC_IP, "2606:4700::1111"]

    @pytest.mark.promise(3)
    async def test_registration_refuses_a_name_that_resolves_inside(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        FakeDns(monkeypatch, {"intranet.partner.example": [["192.168.4.4"]]})
        with pytest.raises(UnsafePartnerUrl, match="RFC 1918"):
            await check_registered_url("https://intranet.partner.example/hook", STRICT)

    async def test_registration_accepts_a_name_that_does_not_resolve_yet(self) -> None:
        url = "https://not-yet.partner.invalid/hook"
        assert await check_registered_url(url, STRICT) == url


# The guarded transport, against a real local server


class LocalServer:
    """A tiny HTTP/1.1 server on 127.0.0.1 that records every request it receives."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.close()
            return
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        self.requests.append(head + await reader.readexactly(length))
        writer.write(self.reply)
        await writer.drain()
        writer.close()


NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
REDIRECT_TO_METADATA = (
    b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\n"
    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
)


async def _serve(reply: bytes, ssl_context: ssl.SSLContext | None = None) -> Any:
    server = LocalServer(reply)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=ssl_context)
    server.port = listener.sockets[0].getsockname()[1]
    return server, listener


@pytest.fixture
async def local_server() -> AsyncIterator[Callable[..., Any]]:
    """`await local_server(reply, ssl_context=None)` starts a server; all stop after the test."""
    listeners: list[asyncio.Server] = []

    async def start(reply: bytes = NO_CONTENT, ssl_context: ssl.SSLContext | None = None) -> Any:
        server, listener = await _serve(reply, ssl_context)
        listeners.append(listener)
        return server

    yield start
    for listener in listeners:
        listener.close()
        await listener.wait_closed()


def _self_signed(name: str, folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for `name` and the file that makes clients trust it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    return server_context, cert_file


async def post(policy: UrlPolicy, url: str, **client_kwargs: Any) -> httpx.Response:
    transport = guarded_transport(policy, **client_kwargs.pop("transport_kwargs", {}))
    async with httpx.AsyncClient(transport=transport, timeout=5, **client_kwargs) as client:
        return await client.post(url, content=b'{"event":"referral.created"}')


class TestGuardedTransport:
    async def test_an_allowed_address_is_called(self, local_server: Any) -> None:
        server = await local_server()
        response = await post(LOCAL, f"http://127.0.0.1:{server.port}/hooks")
        assert response.status_code == 204
        assert len(server.requests) == 1
        assert server.requests[0].endswith(b'{"event":"referral.created"}')

    @pytest.mark.promise(3)
    async def test_a_forbidden_address_is_refused_before_connecting(
        self, local_server: Any
    ) -> None:
        server = await local_server()
        for policy in (
            UrlPolicy(require_https=False, allow_private=False),
            UrlPolicy(
                require_https=False,
                allow_private=True,
                own_addresses=frozenset({("127.0.0.1", server.port)}),
            ),
        ):
            with pytest.raises(PartnerAddressRefused) as refused:
                await post(policy, f"http://localhost:{server.port}/hooks")
            assert isinstance(refused.value, httpx.ConnectError)  # callers see a failed call
            assert refused.value.refusal.status == 422
        assert server.requests == []

    @pytest.mark.promise(3)
    async def test_a_name_resolving_inside_is_refused_before_connecting(
        self, local_server: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        server = await local_server()
        dns = FakeDns(monkeypatch, {"hooks.partner.example": [["127.0.0.1"]]})
        strict_http = UrlPolicy(require_https=False, allow_private=False)
        with pytest.raises(PartnerAddressRefused, match="loopback"):
            await post(strict_http, f"http://hooks.partner.example:{server.port}/hooks")
        assert dns.lookups == ["hooks.partner.example"]
        assert server.requests == []

    @pytest.mark.promise(3)
    async def test_dns_rebinding_after_registration_is_refused_at_delivery(
        self, local_server: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        server = await local_server()
        name = "rebind.partner.example"
        FakeDns(monkeypatch, {name: [[PUBLIC_IP], ["127.0.0.1"]]})
        strict_http = UrlPolicy(require_https=False, allow_private=False)
        url = f"http://{name}:{server.port}/hooks"
        assert await check_registered_url(url, strict_http) == url  # public when registered
        with pytest.raises(PartnerAddressRefused, match="loopback"):
            await post(strict_http, url)  # loopback when called
        assert server.requests == []

    @pytest.mark.promise(3)
    async def test_it_connects_to_the_address_it_checked_not_a_second_answer(
        self, local_server: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        server = await local_server()
        name = "flip.partner.example"
        # A transport that checked one lookup and let the connection resolve again would
        # connect to the second answer: the metadata address.
        dns = FakeDns(monkeypatch, {name: [["127.0.0.1"], ["169.254.169.254"]]})
        response = await post(LOCAL, f"http://{name}:{server.port}/hooks")
        assert response.status_code == 204
        assert dns.lookups == [name]
        assert f"host: {name}:{server.port}".encode() in server.requests[0].lower()

    async def test_tls_is_checked_against_the_partners_name(
        self, local_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        name = "secure.partner.example"
        server_context, trusted = _self_signed(name, tmp_path)
        server = await local_server(ssl_context=server_context)
        FakeDns(monkeypatch, {name: [["127.0.0.1"]], "other.partner.example": [["127.0.0.1"]]})
        client_context = ssl.create_default_context(cafile=str(trusted))
        https_local = UrlPolicy(require_https=True, allow_private=True)
        kwargs = {"transport_kwargs": {"verify": client_context}}
        response = await post(https_local, f"https://{name}:{server.port}/hooks", **kwargs)
        assert response.status_code == 204
        with pytest.raises(httpx.ConnectError, match=r"(?i)certificate"):
            await post(https_local, f"https://other.partner.example:{server.port}/hooks", **kwargs)
        assert len(server.requests) == 1

    @pytest.mark.promise(3)
    async def test_redirects_are_not_followed_into_the_network(self, local_server: Any) -> None:
        server = await local_server(REDIRECT_TO_METADATA)
        url = f"http://127.0.0.1:{server.port}/hooks"
        response = await post(LOCAL, url)
        assert response.status_code == 302  # handed back, not followed
        with pytest.raises(PartnerAddressRefused, match="link-local"):
            await post(LOCAL, url, follow_redirects=True)

    def test_proxies_and_unix_sockets_cannot_be_configured(self) -> None:
        for kwargs in ({"proxy": "http://proxy.example:3128"}, {"uds": "/tmp/x.sock"}):
            with pytest.raises(TypeError):
                guarded_transport(LOCAL, **kwargs)
