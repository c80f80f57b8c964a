"""bench/_cpu.py counts as `rabbitmq` only the broker the stacks use, not every broker on the machine.

A multi-host harness beside a benchmark runs RabbitMQ servers of its own (each a beam.smp); counting them made
the benchmark's RabbitMQ CPU per event carry the neighbours' work (1.5 ms per event became 3.8-5.8 in a busy
hour) and once go negative when one of them stopped.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def cpu():
    spec = importlib.util.spec_from_file_location("bench_cpu_under_test", BENCH / "_cpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def _line(n: int, local: str, remote: str, state: str, inode: int) -> str:
    return (f"  {n}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000   106        0 {inode} 1 "
            "0000000000000000 100 0 0 10 0\n")


def test_listening_inodes_are_the_listeners_on_the_port_only(cpu):
    text = HEADER + "".join([
        _line(0, "0100007F:1628", "00000000:0000", "0A", 111),  # 127.0.0.1:5672, listening
        _line(1, "0100007F:1628", "0100007F:B894", "01", 222),  # an established connection to it
        _line(2, "0100007F:6448", "00000000:0000", "0A", 333),  # 127.0.0.1:25672, the broker's other port
        _line(3, "0C0012C6:1628", "00000000:0000", "0A", 444),  # 198.18.0.12:5672, another address
    ])
    assert cpu.listening_inodes(text, 5672) == {"111", "444"}
    assert cpu.listening_inodes(text, 25672) == {"333"}
    assert cpu.listening_inodes(HEADER, 5672) == set()


def test_the_broker_role_is_the_one_listening_on_the_port_and_its_children(cpu, tmp_path, monkeypatch):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(HEADER + _line(0, "0100007F:1628", "00000000:0000", "0A", 111))
    (tmp_path / "net" / "tcp6").write_text(HEADER)
    for pid, socket in ((100, "socket:[111]"), (200, "socket:[999]")):  # ours, and a neighbour's broker
        (tmp_path / str(pid) / "fd").mkdir(parents=True)
        (tmp_path / str(pid) / "fd" / "7").symlink_to(socket)
    monkeypatch.setattr(cpu, "PROC", tmp_path)
    table = {p.pid: p for p in (
        cpu.Proc(100, 1, "beam.smp", 500, 0), cpu.Proc(101, 100, "erl_child_setup", 5, 0),
        cpu.Proc(102, 101, "inet_gethost", 1, 0), cpu.Proc(90, 1, "epmd", 1, 0),
        cpu.Proc(200, 1, "beam.smp", 900, 0), cpu.Proc(201, 200, "erl_child_setup", 9, 0))}

    assert cpu.broker_pids(table, 5672) == {100, 101, 102}

    # No broker found on the port (another network namespace): every broker process, as before.
    assert cpu.broker_pids(table, 5673) == {100, 101, 102, 90, 200, 201}
