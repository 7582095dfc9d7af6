"""Free TCP ports on the loopback interface, outside the kernel's ephemeral range."""

import random
import socket
from contextlib import ExitStack
from pathlib import Path

LOOPBACK = "127.0.0.1"
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10_000  # below: ports more often taken by services installed on the machine
TRIES = 200  # per port, before the kernel's own choice is taken instead

_random = random.SystemRandom()  # tests seed `random`; two processes must not pick alike


def unassigned_ports(ephemeral_range: str | None) -> list[range]:
    """The port ranges the kernel never hands out by itself, given ip_local_port_range's text
    ("32768\t60999"); [] when it cannot be read or leaves no room."""
    try:
        low, high = map(int, (ephemeral_range or "").split())
    except ValueError:
        return []
    ranges = [range(LOWEST, low), range(high + 1, 65536)]
    return [r for r in ranges if len(r) >= 1000]


def _ephemeral_range() -> str | None:
    try:
        return EPHEMERAL_RANGE.read_text()
    except OSError:
        return None


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Return `count` distinct TCP ports that were free on `host` a moment ago.

    Chosen at random outside the kernel's ephemeral range where it leaves room: a port bound to
    0 comes from that range, the one every outgoing connection's local port comes from too, so
    between the choice and the server's own bind (a broker's JVM takes seconds to get there) any
    client connecting anywhere could take it. Outside it, only another process choosing the
    same port can. All sockets are held open until every port is chosen, so the ports differ
    from each other. Callers surface a bind error rather than retrying silently.
    """
    ranges = unassigned_ports(_ephemeral_range())
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            ports.append(_bind(sock, host, ranges))
        return ports


def _bind(sock: socket.socket, host: str, ranges: list[range]) -> int:
    for _ in range(TRIES if ranges else 0):
        port = _random.choice(_random.choice(ranges))
        try:
            sock.bind((host, port))
        except OSError:  # in use, or held by a socket in TIME_WAIT
            continue
        return port
    sock.bind((host, 0))
    return sock.getsockname()[1]


def free_port(host: str = LOOPBACK) -> int:
    """Return one TCP port that was free on `host` a moment ago."""
    return free_ports(1, host)[0]


def port_is_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on `host:port`."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
