"""Outbound HTTP to addresses a customer chose (webhooks): SSRF guard and a bounded POST.

``resolve_public(url)`` resolves the host and refuses it unless every address is global unicast:
loopback, private (RFC 1918, unique-local), link-local (and so the cloud metadata address
169.254.169.254), carrier-grade NAT, multicast, reserved and unspecified addresses are refused, as
are IPv4-mapped IPv6 forms of them. ``post_bounded`` then connects to the address that was checked
(the TLS certificate is still verified against the host name), so a DNS answer that changes between
the check and the connection (DNS rebinding) cannot reach an internal address. It follows no
redirect, gives up after ``timeout`` seconds in total, and reads at most ``max_body`` bytes of the
answer.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3

# Names that point at metadata services on some clouds even before DNS answers.
_METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})


class UnsafeUrl(ValueError):
    """The URL may not be called: wrong scheme, or it resolves to a non-public address."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query
    address: str  # the IP address that was checked and is connected to


def _address_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def parse(url: str, *, require_https: bool) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or (require_https and scheme != "https"):
        raise UnsafeUrl("The URL must start with https://." if require_https else "The URL must be http(s).")
    if not parts.hostname:
        raise UnsafeUrl("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeUrl("The URL may not carry a user name or password.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeUrl("The URL's port is not valid.") from exc
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, parts.hostname.lower().rstrip("."), port, path


def resolve(url: str, *, require_https: bool, allow_private: bool) -> Target:
    """Check ``url`` and resolve its host; ``UnsafeUrl`` if it may not be called."""
    scheme, host, port, path = parse(url, require_https=require_https)
    if not allow_private and (host in _METADATA_HOSTS or host == "localhost" or host.endswith(".localhost")):
        raise UnsafeUrl("The URL points at an internal address.")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"The host {host} could not be resolved.") from exc
    # The address of an AF_INET/AF_INET6 sockaddr is text (an int only for other families).
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise UnsafeUrl(f"The host {host} could not be resolved.")
    if not allow_private:
        for address in addresses:
            if not _address_allowed(ipaddress.ip_address(address.split("%", 1)[0])):
                raise UnsafeUrl("The URL resolves to a private, loopback, link-local or reserved address.")
    return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # at most max_body bytes
    truncated: bool
    elapsed_ms: int


def post_bounded(target: Target, *, body: bytes, headers: dict, timeout: float, max_body: int) -> Answer:
    """POST ``body`` to the checked address. Raises ``urllib3.exceptions.HTTPError`` (and
    ``TimeoutError``) on connection errors and timeouts; any HTTP status is an ``Answer``."""
    started = time.monotonic()
    deadline = started + timeout
    host_header = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
    common: dict[str, Any] = {
        "host": target.address,
        "port": target.port,
        "timeout": urllib3.Timeout(connect=timeout, read=timeout),
    }
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            **common, server_hostname=target.host, assert_hostname=target.host, cert_reqs="CERT_REQUIRED", maxsize=1
        )
    else:
        pool = urllib3.HTTPConnectionPool(**common, maxsize=1)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        chunks: list[bytes] = []
        size = 0
        truncated = False
        try:
            while size < max_body:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the answer took longer than {timeout:g} s")
                chunk = response.read(min(16384, max_body - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            else:
                truncated = bool(response.read(1))
        finally:
            # Never drain the rest: a 10 MB answer is cut here, and its connection dropped.
            response.close()
        return Answer(
            status=response.status,
            body=b"".join(chunks),
            truncated=truncated,
            elapsed_ms=int((time.monotonic() - started) * 1000),
        )
    finally:
        pool.close()
