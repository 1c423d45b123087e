"""SSRF guard for callback URLs: checked when saved, and again at connect time."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from urllib.parse import urlsplit

import httpcore
import httpx

# Cloud metadata services that sit outside the usual private ranges.
_METADATA = {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}


class UnsafeUrl(ValueError):
    """The URL's scheme or address is not allowed for callbacks."""


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, IPv4-compatible), if any:
    on networks that translate them they reach that IPv4 host."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or ip in _IPV4_TRANSLATED or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_allowed(address: str) -> bool:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0]
    )
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast and ip not in _METADATA


async def resolve(host: str, port: int) -> list[str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeUrl(f"cannot resolve {host!r}: {exc.strerror}") from None
    except UnicodeError:  # a DNS label that is empty or longer than 63 characters
        raise UnsafeUrl(f"{host!r} is not a valid host name") from None
    return sorted({str(info[4][0]) for info in infos})


async def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse non-https URLs and hosts resolving to loopback, private, link-local or metadata
    addresses (every resolved address must be public)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeUrl("must be an absolute https:// URL")
    if parts.username or parts.password:
        raise UnsafeUrl("must not contain credentials")
    try:
        parts.hostname.encode("idna")  # empty labels, labels over 63 characters
    except UnicodeError:
        raise UnsafeUrl(f"{parts.hostname!r} is not a valid host name") from None
    if allow_private:
        return
    if parts.scheme != "https":
        raise UnsafeUrl("must use https")
    for address in await resolve(parts.hostname, parts.port or 443):
        if not address_allowed(address):
            raise UnsafeUrl(f"{parts.hostname} resolves to {address}, a non-public address")


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to the checked address itself: DNS cannot change the
    answer between the check and the connection (no rebinding). TLS still verifies the name."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        target = host
        if not self.allow_private:
            try:
                addresses = await resolve(host, port)
            except UnsafeUrl as exc:  # an httpcore error, so the attempt is recorded as failed
                raise httpcore.ConnectError(str(exc)) from None
            unsafe = [a for a in addresses if not address_allowed(a)]
            if unsafe or not addresses:
                raise httpcore.ConnectError(
                    f"{host} resolves to non-public address {unsafe[0]}"
                    if unsafe
                    else f"{host} resolves to no address"
                )
            target = addresses[0]
        return await self.inner.connect_tcp(
            target,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed for callbacks")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_client(*, allow_private: bool, connect: float, read: float) -> httpx.AsyncClient:
    """An httpx client that never follows redirects and only reaches allowed addresses."""
    transport = httpx.AsyncHTTPTransport(retries=0)
    # httpx exposes no hook for the network backend, so the pool is replaced.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=30,
        network_backend=_GuardedBackend(allow_private),
    )
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        timeout=httpx.Timeout(connect=connect, read=read, write=read, pool=connect),
        trust_env=False,
    )
