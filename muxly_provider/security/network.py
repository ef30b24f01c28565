"""Server-side requests: Muxly's HTTP requests never reach link-local or cloud metadata addresses.

Connectors and destinations send requests to URLs that configurers write, from Airflow's workers and (for
connector tests) from the api-server. The instance metadata services of the clouds answer on link-local
addresses (``169.254.169.254``, ``fd00:ec2::254``, ...) with the machine's own credentials, so Muxly refuses:

* every link-local address (``169.254.0.0/16``, ``fe80::/10``) and the known metadata addresses outside that
  range (:data:`METADATA_ADDRESSES`), also written as IPv4-mapped IPv6;
* the metadata host names (:data:`METADATA_HOSTS`), before any DNS look-up (this also covers a proxy).

The check runs where the connection is made, on each address the host name resolves to, inside
:class:`GuardedAdapter` (mounted on every ``requests`` session of Muxly's HTTP clients): a DNS name that
resolves to such an address, and a redirect that leads there, are refused before any connection is opened,
and the connection goes to the very address that was checked (no second look-up). ``[muxly]
allow_link_local_requests = True`` lifts the restriction (an admin decision, e.g. for an on-prem API on a
link-local network).

Loopback (``127.0.0.0/8``, ``::1``) and private ranges (``10/8``, ``172.16/12``, ``192.168/16``, ``fc00::/7``)
stay allowed: on-prem APIs and tests live there, and blocking them would block the product's own use. Limit
what Muxly's workers can reach on those networks with the network's own controls.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError

from muxly_provider.exceptions import MuxlyError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES: Final[frozenset[IPAddress]] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer
        "192.0.0.192",  # Oracle Cloud (legacy)
    )
)
"""Cloud metadata endpoints refused by address (link-local ones are refused anyway)."""

METADATA_HOSTS: Final[frozenset[str]] = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)
"""Cloud metadata host names refused by name."""


class BlockedAddressError(MuxlyError, requests.exceptions.InvalidURL):
    """A request to a link-local or metadata address that ``[muxly] allow_link_local_requests`` forbids.

    A :class:`requests.RequestException` too (an invalid URL: not retried), so that every caller's handling
    of failed requests applies.

    :param host: the host of the request (a name or an address; never a URL with credentials)
    :param reason: why it is refused
    """

    remedy = "an admin can allow it with [muxly] allow_link_local_requests"

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        MuxlyError.__init__(self, f"request to {host!r} refused: {reason} ({self.remedy})")


class _Refused(Exception):
    """Raised inside urllib3, which would turn an ``OSError`` (as every requests error is) into a retry."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(host, reason)
        self.host = host
        self.reason = reason


def _allowed_by_setting() -> bool:
    from muxly_provider import settings

    return settings.allow_link_local_requests()


def address_problem(address: IPAddress) -> str | None:
    """Why ``address`` may not be reached (``None`` when it may), regardless of the setting."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    return None


def _host_problem(host: str) -> str | None:
    name = host.strip("[]").rstrip(".").lower()
    if name in METADATA_HOSTS:
        return f"{name} is a cloud metadata host"
    try:
        return address_problem(ipaddress.ip_address(name.split("%", 1)[0]))
    except ValueError:
        return None  # a name: its addresses are checked when the connection is made


def check_url(url: str, allowed: Callable[[], bool] = _allowed_by_setting) -> None:
    """Refuse a URL whose host is a metadata name or a link-local or metadata address literal.

    :raises BlockedAddressError: unless ``[muxly] allow_link_local_requests`` is set
    """
    host = urlsplit(url).hostname or ""
    problem = _host_problem(host)
    if problem is not None and not allowed():
        raise BlockedAddressError(host, problem)


def resolve_allowed(host: str, port: int, allowed: Callable[[], bool] = _allowed_by_setting) -> list[str]:
    """The addresses of ``host`` to connect to, each checked.

    :raises BlockedAddressError: when the name or any of its addresses is refused
    :raises socket.gaierror: when the name does not resolve
    """
    try:
        return _resolve(host, port, allowed)
    except _Refused as exc:
        raise BlockedAddressError(exc.host, exc.reason) from None


def _resolve(host: str, port: int, allowed: Callable[[], bool]) -> list[str]:
    problem = _host_problem(host)
    if problem is not None and not allowed():
        raise _Refused(host, problem)
    addresses: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        text = str(sockaddr[0])
        problem = address_problem(ipaddress.ip_address(text.split("%", 1)[0]))
        if problem is not None and not allowed():
            raise _Refused(host, problem)
        if text not in addresses:
            addresses.append(text)
    return addresses


class _GuardedConnectionMixin:
    """Connect only to checked addresses of the host (``_dns_host`` is urllib3's connect target)."""

    host: str
    port: int
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        try:
            addresses = _resolve(self._dns_host, self.port, _allowed_by_setting)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        name = self._dns_host
        error: Exception | None = None
        for address in addresses:
            self._dns_host = address  # the checked address itself: no second look-up to rebind
            try:
                sock: socket.socket = super()._new_conn()  # type: ignore[misc]
                return sock
            except Exception as exc:  # urllib3's connection errors; the last one is raised
                error = exc
            finally:
                self._dns_host = name
        assert error is not None
        raise error


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A ``requests`` adapter whose connections go only to allowed addresses (see the module docstring).

    :param socket_options: urllib3 socket options (kept from an adapter it replaces, e.g. TCP keep-alive)
    """

    def __init__(self, *args: Any, socket_options: Any = None, **kwargs: Any) -> None:
        self.socket_options = socket_options  # before HTTPAdapter.__init__, which builds the pool manager
        super().__init__(*args, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if self.socket_options is not None:
            kwargs.setdefault("socket_options", self.socket_options)
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        check_url(request.url or "")  # names and literals, also when a proxy makes the connection
        try:
            return super().send(request, *args, **kwargs)
        except _Refused as exc:
            raise BlockedAddressError(exc.host, exc.reason) from None


def guard_session(session: requests.Session) -> requests.Session:
    """Mount :class:`GuardedAdapter` for ``http://`` and ``https://`` on ``session`` (idempotent).

    Adapters the session already had (also for more specific prefixes) are replaced, so no URL escapes the
    guard; their retry settings and socket options (the HTTP provider's TCP keep-alive) are kept.
    """
    for prefix, adapter in list(session.adapters.items()):
        if prefix.startswith(("http://", "https://")) and not isinstance(adapter, GuardedAdapter):
            session.adapters[prefix] = GuardedAdapter(
                max_retries=getattr(adapter, "max_retries", 0),
                socket_options=getattr(adapter, "socket_options", None),
            )
    for prefix in ("https://", "http://"):
        if not isinstance(session.adapters.get(prefix), GuardedAdapter):
            session.mount(prefix, GuardedAdapter())
    return session


def guarded_session() -> requests.Session:
    """A new ``requests`` session with the guard mounted."""
    return guard_session(requests.Session())
