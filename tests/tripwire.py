"""A socket-level tripwire: no test may even *try* to reach a non-loopback address.

While installed, every outgoing connection made through the ``socket`` module
(``socket.socket.connect``/``connect_ex``, hence ``socket.create_connection``,
urllib3, requests, botocore, http.client) is checked *before* the system call:

* loopback (127.0.0.0/8, ::1, ::ffff:127.x) and AF_UNIX are let through;
* anything else is recorded in ``Tripwire.attempts`` and refused with
  :class:`ForbiddenConnection` (a ``ConnectionRefusedError``, so the code under
  test sees an ordinary network failure and no packet ever leaves the host).

Name resolution is faked too, because a real DNS lookup is itself traffic to a
non-loopback resolver: ``getaddrinfo`` answers numeric addresses and
``localhost`` locally, names added with :meth:`Tripwire.resolve` from that
table (an answer may be a sequence, one entry per call, to model DNS
rebinding), and refuses every other name with ``socket.gaierror``.

Use the ``tripwire`` fixture (``pytest_plugins = ["tests.tripwire"]``); it
fails the test at teardown if any forbidden connection was attempted, even one
the code under test caught and swallowed. Tests that *expect* an attempt (to
prove the fixture works) call :meth:`Tripwire.expect_attempts`.
"""
from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

__all__ = ["Attempt", "ForbiddenConnection", "Tripwire", "is_loopback", "tripwire"]


class ForbiddenConnection(ConnectionRefusedError):
    """Raised instead of connecting to a non-loopback address."""


@dataclass(frozen=True)
class Attempt:
    """One refused connection attempt."""

    family: int
    address: Any
    via: str


def is_loopback(host: str) -> bool:
    """True for a loopback IP literal (IPv4, IPv6, IPv4-mapped IPv6)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@dataclass
class Tripwire:
    """Records and refuses connections to non-loopback addresses (see module doc)."""

    attempts: list[Attempt] = field(default_factory=list)
    #: every connection checked, allowed (loopback) or not: (family, address)
    connections: list[tuple[int, Any]] = field(default_factory=list)
    #: every name looked up through getaddrinfo, in order
    lookups: list[str] = field(default_factory=list)
    _table: dict[str, list[Sequence[str]]] = field(default_factory=dict)
    _expected: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- configuration -------------------------------------------------------

    def resolve(self, name: str, *answers: str | Sequence[str]) -> None:
        """Make ``name`` resolve to ``answers``: each a list of IPs (or one IP)
        served on successive lookups; the last answer repeats."""
        self._table[name.lower().rstrip(".")] = [[a] if isinstance(a, str) else list(a) for a in answers]

    def expect_attempts(self) -> None:
        """This test means to trip the wire: do not fail it at teardown."""
        self._expected = True

    # --- checks ----------------------------------------------------------------

    def check(self, family: int, address: Any, via: str) -> None:
        if family == getattr(socket, "AF_UNIX", None):
            return
        host = address[0] if isinstance(address, tuple) else str(address)
        with self._lock:
            self.connections.append((family, address))
        if is_loopback(str(host)):
            return
        with self._lock:
            self.attempts.append(Attempt(family, address, via))
        raise ForbiddenConnection(111, f"tripwire: connection to non-loopback {address!r} refused")

    def lookup(self, host: Any) -> list[str]:
        """The fake resolver: IP literals, localhost, then the table."""
        if isinstance(host, bytes):
            host = host.decode("idna")
        name = str(host).lower().rstrip(".")
        with self._lock:
            self.lookups.append(name)
        try:
            ipaddress.ip_address(name.split("%", 1)[0])
            return [name]
        except ValueError:
            pass
        if name in ("localhost", "localhost.localdomain") or name.endswith(".localhost"):
            return ["127.0.0.1"]
        answers = self._table.get(name)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, f"tripwire: no fake DNS entry for {name!r}")
        with self._lock:
            return list(answers.pop(0) if len(answers) > 1 else answers[0])

    @property
    def tripped(self) -> bool:
        return bool(self.attempts)

    def verdict(self) -> None:
        """Fail the running test if a forbidden connection was attempted (unless expected)."""
        if self.attempts and not self._expected:
            pytest.fail("tripwire: the test attempted connections to non-loopback addresses: "
                        + ", ".join(f"{a.address!r} via {a.via}" for a in self.attempts), pytrace=False)

    # --- installation ----------------------------------------------------------

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_getaddrinfo = socket.getaddrinfo
        wire = self

        def connect(sock: socket.socket, address: Any) -> Any:
            wire.check(sock.family, address, "connect")
            return real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> Any:
            wire.check(sock.family, address, "connect_ex")
            return real_connect_ex(sock, address)

        def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                        flags: int = 0) -> list[Any]:
            if host is None:  # a passive/wildcard lookup (bind), no resolver involved
                return real_getaddrinfo(host, port, family, type, proto, flags)
            out: list[Any] = []
            for ip in wire.lookup(host):
                try:
                    out.extend(real_getaddrinfo(ip, port, family, type, proto,
                                                flags | socket.AI_NUMERICHOST))
                except socket.gaierror:
                    continue  # e.g. an IPv6 answer when AF_INET was asked for
            if not out:
                raise socket.gaierror(socket.EAI_NONAME, f"tripwire: no usable address for {host!r}")
            return out

        def gethostbyname(host: str) -> str:
            for ip in wire.lookup(host):
                if ":" not in ip:
                    return ip
            raise socket.gaierror(socket.EAI_NONAME, f"tripwire: no IPv4 address for {host!r}")

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket, "gethostbyname", gethostbyname)
        # create_connection looks getaddrinfo up as a module global: patched above.


@pytest.fixture
def tripwire(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tripwire]:
    """Install the tripwire for one test; fail it if a forbidden connection was attempted."""
    wire = Tripwire()
    wire.install(monkeypatch)
    yield wire
    wire.verdict()
