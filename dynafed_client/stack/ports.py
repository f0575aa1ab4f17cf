"""Free loopback TCP ports.

SeaweedFS opens a gRPC listener at ``port + 10000`` for each HTTP port, so
its ports are picked where both are free, and below the kernel's ephemeral
range so that outgoing connections cannot grab them between the pick and
the bind.
"""
from __future__ import annotations

import random
import socket
from collections.abc import Collection
from pathlib import Path

LOOPBACK = "127.0.0.1"
GRPC_OFFSET = 10000
_LOW = 10000


def is_free(port: int, host: str = LOOPBACK) -> bool:
    """True if a server could bind ``host:port`` now.

    Uses ``SO_REUSEADDR`` like the servers themselves do, so ports held only
    by connections in TIME_WAIT count as free, while any listener (including
    one on the wildcard address) makes the port busy.
    """
    if not 0 < port < 65536:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing (auto-bound) ports."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(exclude: Collection[int] = ()) -> int:
    """A port the kernel reports free on loopback, not in ``exclude``."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        if port not in exclude:
            return port
    raise OSError("no free loopback port found")


def free_ports_with_grpc(count: int, exclude: Collection[int] = (),
                         offset: int = GRPC_OFFSET) -> list[int]:
    """``count`` distinct ports such that each ``port`` and ``port + offset`` are free.

    Ports are drawn at random below the ephemeral range (so ``port + offset``
    stays below it too); neither a port nor its ``+offset`` twin collides
    with ``exclude`` or with another chosen port.
    """
    high = min(ephemeral_range()[0], 65536) - offset - 1
    if high <= _LOW:
        high = 65535 - offset
    taken: set[int] = set(exclude)
    chosen: list[int] = []
    rng = random.SystemRandom()
    for _ in range(count * 200):
        if len(chosen) == count:
            break
        port = rng.randint(_LOW, high)
        twin = port + offset
        if port in taken or twin in taken:
            continue
        if is_free(port) and is_free(twin):
            chosen.append(port)
            taken.update((port, twin))
    if len(chosen) != count:
        raise OSError(f"could not find {count} free loopback ports with free +{offset} twins")
    return chosen
