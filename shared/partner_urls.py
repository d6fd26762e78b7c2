"""URLs that partners give the exchange to call (webhooks): refuse the ones that reach inside.

A partner could register `http://127.0.0.1:8002/...`, a cloud metadata address or a host name
that resolves to a private address, and the exchange would then call its own services or its
network for them (server-side request forgery). Every such URL is checked when it is registered
(`check_partner_url`, `resolve_checked`) and again on every call (`guarded_transport`), which
connects only to the addresses it has just resolved and checked, so a name that resolves
differently between check and connect (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpcore
import httpx
from fastapi import Depends, Request

from shared.errors import ServiceError
from shared.i18n import N_, Joined, Message, _l
from shared.settings import ServiceSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_CHARS = 2000
RESOLVE_TIMEOUT_S = 5.0
PUBLIC_ADVICE = N_(
    "Use an https URL on the public internet, for example https://hooks.partner.example/refex."
)
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "redis": 6379, "rediss": 6379}
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
NAME_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
IPV4_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)$")
ENDS_IN_NUMBER = re.compile(r"^([0-9]+|0[xX][0-9a-fA-F]*)$")

THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class UnsafePartnerUrl(ServiceError):
    """A partner-supplied URL would make the exchange call an address it must never call."""

    status = 422
    title = N_("URL not allowed")
    slug = "unsafe-partner-url"
    detail = Message("The exchange will not call this URL. {advice}", advice=_l(PUBLIC_ADVICE))

    def __init__(
        self,
        reason: str | Message | None = None,
        advice: str | Message = PUBLIC_ADVICE,
        *,
        field: str | None = None,
    ) -> None:
        # `reason` and `advice` are msgids (marked with N_ where they are written) or Messages.
        self.reason, self.advice = _text(reason or N_("is not allowed")), _text(advice)
        subject = Message("The '{field}'", field=field) if field else Message("The URL")
        super().__init__(
            Message(
                "{subject} {reason}; the exchange will not call it. {advice}",
                subject=subject,
                reason=self.reason,
                advice=self.advice,
            )
        )

    def for_field(self, field: str, loc: Iterable[str | int]) -> UnsafePartnerUrl:
        """Return the same refusal naming the input field (`loc` as in validation errors)."""
        named = UnsafePartnerUrl(self.reason, self.advice, field=field)
        named.extensions["errors"] = [
            {"loc": list(loc), "msg": self.reason, "type": "unsafe_partner_url"}
        ]
        return named


def _text(value: str | Message) -> Message:
    return value if isinstance(value, Message) else Message(value)


class PartnerAddressRefused(httpx.ConnectError):
    """Raised by the guarded transport instead of connecting: callers see a failed connection."""

    def __init__(self, refusal: UnsafePartnerUrl, request: httpx.Request | None = None) -> None:
        super().__init__(str(refusal.detail), request=request)
        self.refusal = refusal


@dataclass(frozen=True)
class UrlPolicy:
    """What partner URLs may be: https only?, private addresses allowed?, our own addresses."""

    require_https: bool = True
    allow_private: bool = False
    own_addresses: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> UrlPolicy:
        """Build the policy of a service: http only in development, own addresses refused."""
        return cls(
            require_https=settings.environment != "development",
            allow_private=settings.partner_urls_allow_private,
            own_addresses=frozenset(_own_addresses(settings)),
        )


def app_url_policy(request: Request) -> UrlPolicy:
    """FastAPI dependency: the partner-URL policy of the app's settings (built once per app)."""
    state = request.app.state
    if getattr(state, "url_policy", None) is None:
        state.url_policy = UrlPolicy.from_settings(state.settings)
    policy: UrlPolicy = state.url_policy
    return policy


UrlPolicyDep = Annotated[UrlPolicy, Depends(app_url_policy)]


def _own_addresses(settings: ServiceSettings) -> Iterable[tuple[str, int]]:
    """Every host:port this service listens on or reaches: its peers, database, Redis."""
    yield (str(settings.host).lower(), int(settings.port))
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if not (name.endswith("_url") or name == "token_issuer") or not isinstance(value, str):
            continue
        try:
            parts = urlsplit(value)
            port = parts.port or DEFAULT_PORTS.get(parts.scheme.split("+")[0])
        except ValueError:
            continue
        if parts.hostname and port:
            yield (parts.hostname.lower(), port)


# Checking a URL


def check_partner_url(url: str, policy: UrlPolicy) -> str:
    """Return `url` normalised, or raise `UnsafePartnerUrl` saying which rule it breaks."""
    parsed = _parsed(url)
    host, port = _host(parsed), parsed.port or DEFAULT_PORTS[parsed.scheme]
    address = literal_address(host)
    if address is not None:
        _check_address(address, port, policy)
        host = str(address)
    else:
        _check_name(host, port, policy)
    if parsed.scheme == "http" and policy.require_https:
        raise UnsafePartnerUrl(
            N_("uses http"),
            N_("Use https: outside development every partner URL must be https."),
        )
    return str(parsed.copy_with(host=host.strip("[]")))


def _parsed(url: str) -> httpx.URL:
    if len(url) > MAX_URL_CHARS:
        raise UnsafePartnerUrl(
            Message("is longer than {max_url_chars} characters", max_url_chars=MAX_URL_CHARS),
            N_("Use a shorter URL."),
        )
    if any(c.isspace() or ord(c) < 32 or c == "\\" for c in url):
        raise UnsafePartnerUrl(N_("contains spaces, control characters or backslashes"))
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise UnsafePartnerUrl(N_("is not a valid URL")) from None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise UnsafePartnerUrl(N_("is not an absolute http(s) URL"))
    if parsed.userinfo:
        raise UnsafePartnerUrl(
            N_("contains a user name or password"),
            Joined([N_("Remove them: the exchange signs every call instead."), PUBLIC_ADVICE]),
        )
    return parsed


def _host(parsed: httpx.URL) -> str:
    host = parsed.raw_host.decode("ascii", errors="replace").lower()
    if ":" in host:
        return host
    host = host.removesuffix(".")
    labels = host.split(".")
    if len(host) > 253 or not all(NAME_LABEL.match(label) for label in labels):
        raise UnsafePartnerUrl(N_("has a host name that is not a valid DNS name"))
    return host


def literal_address(host: str) -> IPAddress | None:
    """Return the address `host` spells (also 2130706433, 0x7f.1, 0177.0.0.1), or None."""
    host = host.strip("[]").removesuffix(".")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise UnsafePartnerUrl(N_("has an IPv6 address that is not valid")) from None
    parts = host.split(".")
    if not ENDS_IN_NUMBER.match(parts[-1]):
        return None
    return _ipv4(parts)


def _ipv4(parts: list[str]) -> ipaddress.IPv4Address:
    """Parse an IPv4 host as browsers do (WHATWG URL): 1 to 4 decimal, octal or hex parts."""
    if len(parts) > 4 or not all(IPV4_PART.match(part) for part in parts):
        raise UnsafePartnerUrl(N_("has a host that looks like an IPv4 address but is not one"))
    numbers = [_ipv4_number(part) for part in parts]
    last_limit = 256 ** (5 - len(numbers))
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= last_limit:
        raise UnsafePartnerUrl(N_("has a host that looks like an IPv4 address but is not one"))
    value = numbers[-1] + sum(n * 256 ** (3 - i) for i, n in enumerate(numbers[:-1]))
    return ipaddress.IPv4Address(value)


def _ipv4_number(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part[1:], 8)
    return int(part)


# The address rules


def address_problem(address: IPAddress, policy: UrlPolicy) -> str | None:
    """Say why the exchange must not connect to `address`, or None when it may."""
    address = _embedded_ipv4(address)
    never = _never_allowed(address)
    if never or policy.allow_private:
        return never
    return _private_kind(address)


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    """See through IPv6 forms that carry an IPv4 address (::ffff:a.b.c.d, NAT64, 6to4)."""
    if address.version == 4:
        return address
    assert isinstance(address, ipaddress.IPv6Address)
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64 or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _never_allowed(address: IPAddress) -> str | None:
    if address.is_unspecified or address in THIS_NETWORK:
        return N_("points to an unspecified address (0.0.0.0 or ::)")
    if address.is_link_local:
        return N_(
            "points to a link-local address (169.254.x.x, fe80::; cloud metadata lives there)"
        )
    if address.is_multicast:
        return N_("points to a multicast address")
    if address.version == 4 and address.is_reserved:
        return N_("points to a reserved or broadcast address")
    return None


def _private_kind(address: IPAddress) -> str | None:
    if address.is_loopback:
        return N_("points to a loopback address (the exchange's own machine)")
    if any(address in network for network in RFC1918):
        return N_("points to a private network address (RFC 1918)")
    if address in UNIQUE_LOCAL:
        return N_("points to a unique local IPv6 address (RFC 4193)")
    if address in CGNAT:
        return N_("points to a shared carrier-grade NAT address (100.64.0.0/10)")
    if not address.is_global:
        return N_("points to an address that is not reachable on the public internet")
    return None


def _is_own(host: str, port: int, policy: UrlPolicy) -> bool:
    if (host, port) in policy.own_addresses:
        return True
    if not _loopback_host(host):
        return False
    return any(p == port and _loopback_host(h) for h, p in policy.own_addresses)


def _loopback_host(host: str) -> bool:
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = _embedded_ipv4(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _check_address(address: IPAddress, port: int, policy: UrlPolicy) -> None:
    problem = address_problem(address, policy)
    if problem is None and _is_own(str(_embedded_ipv4(address)), port, policy):
        problem = N_("points to one of the exchange's own services")
    if problem is not None:
        raise UnsafePartnerUrl(problem)


def _check_name(host: str, port: int, policy: UrlPolicy) -> None:
    if _is_own(host, port, policy):
        raise UnsafePartnerUrl(N_("points to one of the exchange's own services"))
    if _loopback_host(host) and not policy.allow_private:
        raise UnsafePartnerUrl(N_("points to a loopback address (the exchange's own machine)"))


# Resolving


async def resolve_checked(host: str, port: int, policy: UrlPolicy) -> list[str]:
    """Resolve `host`; return its addresses, or refuse if ANY of them is forbidden.

    Raises `UnsafePartnerUrl` for a forbidden address, `socket.gaierror` or `TimeoutError`
    when the name does not resolve.
    """
    host = host.lower().strip("[]")
    address = literal_address(host)
    if address is None:
        _check_name(host.removesuffix("."), port, policy)
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            addresses = await _lookup(host, port)
    else:
        addresses = [address]
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    for each in addresses:
        _check_address(each, port, policy)
    return [str(each) for each in addresses]


async def _lookup(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    seen: dict[IPAddress, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        seen[ipaddress.ip_address(str(sockaddr[0]).split("%")[0])] = None
    return list(seen)


async def check_registered_url(url: str, policy: UrlPolicy) -> str:
    """Check a URL being registered, including where its name resolves now; return it normalised.

    A name that does not resolve (yet) is accepted: every call checks again before connecting.
    """
    normalised = check_partner_url(url, policy)
    parsed = httpx.URL(normalised)
    host = parsed.raw_host.decode("ascii")
    with contextlib.suppress(OSError, TimeoutError, UnicodeError):
        await resolve_checked(host, parsed.port or DEFAULT_PORTS[parsed.scheme], policy)
    return normalised


# Calling


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore backend that resolves, checks, then connects to the checked address only.

    httpcore still does TLS with the original host name (SNI and certificate check), and the
    Host header is the request's, so only the TCP destination is pinned.
    """

    def __init__(self, policy: UrlPolicy, inner: httpcore.AsyncNetworkBackend) -> None:
        self._policy = policy
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve_checked(host, port, self._policy)
        except UnsafePartnerUrl as refusal:
            raise PartnerAddressRefused(refusal) from None
        except (OSError, TimeoutError, UnicodeError):
            raise httpcore.ConnectError("the partner's host name does not resolve") from None
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as error:
                last = error
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("partner URLs never reach Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport for partner URLs: checks each URL, pins each connection, no proxies."""

    def __init__(self, policy: UrlPolicy, **transport_kwargs: Any) -> None:
        for refused in ("proxy", "uds", "trust_env"):
            if refused in transport_kwargs:
                raise TypeError(f"a guarded transport does not take '{refused}'")
        self._policy = policy
        self._inner = httpx.AsyncHTTPTransport(trust_env=False, **transport_kwargs)
        pool = self._inner._pool
        assert isinstance(pool, httpcore.AsyncConnectionPool)
        pool._network_backend = GuardedNetworkBackend(policy, pool._network_backend)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Refuse a forbidden URL before any connection; redirects come back unfollowed."""
        try:
            check_partner_url(str(request.url), self._policy)
        except UnsafePartnerUrl as refusal:
            raise PartnerAddressRefused(refusal, request) from None
        try:
            return await self._inner.handle_async_request(request)
        except PartnerAddressRefused as refused:
            refused.request = request
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


def guarded_transport(policy: UrlPolicy, **httpx_transport_kwargs: Any) -> GuardedTransport:
    """Return the transport to call partner URLs with (kwargs as for httpx.AsyncHTTPTransport)."""
    return GuardedTransport(policy, **httpx_transport_kwargs)
