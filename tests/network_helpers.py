"""Test helpers for the server-side request guard: record the connections urllib3 opens, fake DNS answers."""

from __future__ import annotations

import socket
from typing import Any

import pytest


def record_connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every socket connection urllib3 opens from now on, as ``(host, port)`` (a refused request opens none).

    Only loopback connections are really made: any other is recorded and fails with ``ECONNREFUSED``, so a
    test never sends a packet off the machine, even if the guard it checks were broken.
    """
    import ipaddress

    import urllib3.connection
    from urllib3.util import connection

    calls: list[Any] = []
    real = connection.create_connection

    def recording(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        calls.append(address)
        try:
            loopback = ipaddress.ip_address(str(address[0])).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConnectionRefusedError(111, "test: only loopback connections are made")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(connection, "create_connection", recording)
    monkeypatch.setattr(urllib3.connection.connection, "create_connection", recording)
    return calls


def fake_dns(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> None:
    """Make ``socket.getaddrinfo`` answer ``names`` (host -> addresses); other names resolve as usual.

    Stands in for a DNS server an attacker controls: no packet leaves the machine.
    """
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in names:
            return [
                (
                    socket.AF_INET6 if ":" in address else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (address, int(port or 80)),
                )
                for address in names[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
