"""Free TCP ports on the loopback interface, chosen by the kernel."""

import socket
from contextlib import ExitStack

LOOPBACK = "127.0.0.1"


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Return `count` distinct TCP ports that were free on `host` a moment ago.

    All sockets are held open until every port is chosen, so the ports differ from each other.
    Another process may still take a port before the caller binds it; callers surface the
    resulting bind error rather than retrying silently.
    """
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


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
