"""Free ports are chosen where no outgoing connection can take them before the server binds."""

import socket

from services.platform.localstack import ports
from services.platform.localstack.ports import LOOPBACK, free_ports, unassigned_ports


def test_the_unassigned_ranges_lie_outside_the_ephemeral_range():
    assert unassigned_ports("32768\t60999\n") == [range(10_000, 32768), range(61000, 65536)]
    assert unassigned_ports("1024 65535") == []  # no room: the kernel's own choice
    assert unassigned_ports("15000 64900") == [range(10_000, 15000)]
    assert unassigned_ports(None) == [] and unassigned_ports("") == []
    assert unassigned_ports("not a range") == []


def test_ports_are_distinct_bindable_and_outside_this_machines_ephemeral_range():
    ranges = unassigned_ports(ports._ephemeral_range())
    chosen = free_ports(40)
    assert len(set(chosen)) == 40
    if ranges:
        assert all(any(p in r for r in ranges) for p in chosen)
    for port in chosen:
        with socket.socket() as server:
            server.bind((LOOPBACK, port))
            server.listen()
            assert ports.port_is_open(port)


def test_a_port_in_use_is_not_chosen(monkeypatch):
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        busy = taken.getsockname()[1]
        # the busy port and one other to choose from (or the kernel's choice, if that one is
        # taken too): never the busy one
        monkeypatch.setattr(ports, "unassigned_ports", lambda _: [range(busy, busy + 2)])
        assert busy not in {free_ports(1)[0] for _ in range(20)}


def test_with_no_room_outside_the_range_the_kernel_chooses(monkeypatch):
    monkeypatch.setattr(ports, "_ephemeral_range", lambda: "1024 65535")
    assert len(set(free_ports(5))) == 5
