"""CPU time per role (API, workers, mocks, PostgreSQL, RabbitMQ, the load client) from /proc.

Linux only; elsewhere every reading is empty and the report says so. A role's CPU is the user+system
time of its processes, plus the time of children they already reaped (so PostgreSQL backends that
exit between two readings are still counted, through the postmaster).

Given the stack's database, `postgres` is only the backends serving it (their command line names it), so
two stacks measured side by side, or other users of the same server, do not count in each other's
figures; the server's shared processes (WAL writer, checkpointer, autovacuum) then fall under `other`.
Likewise `rabbitmq` is only the broker listening on the stacks' AMQP port (BENCH_AMQP, 5672) with the processes
it started: a broker of another harness on the same machine (each with its own beam.smp) is `other`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
POSTGRES_NAMES = frozenset({"postgres", "postmaster"})
RABBIT_NAMES = frozenset({"beam.smp", "erl_child_setup", "epmd", "inet_gethost"})
BROKER_PORT = urlsplit(os.environ.get("BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672//")).port or 5672


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    name: str
    own_ticks: int  # utime + stime
    reaped_ticks: int  # cutime + cstime


@dataclass(frozen=True)
class Reading:
    wall: float
    roles: dict[str, float]  # CPU seconds so far
    busy: float  # machine-wide busy CPU seconds so far (all cores)
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)


def _read_proc(pid_dir: Path) -> Proc | None:
    try:
        raw = (pid_dir / "stat").read_text()
    except OSError:  # gone in the meantime, or not ours to read
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in rest[11:15])
    return Proc(int(pid_dir.name), int(rest[1]), name, utime + stime, cutime + cstime)


def process_table() -> dict[int, Proc]:
    if not PROC.is_dir():
        return {}
    procs = (_read_proc(p) for p in PROC.iterdir() if p.name.isdigit())
    return {p.pid: p for p in procs if p is not None}


def descendants(table: dict[int, Proc], roots: Iterable[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found, todo = set(), [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def _machine_busy_seconds() -> float:
    try:
        fields = [int(v) for v in (PROC / "stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / TICKS


def _serves(pid: int, database: str) -> bool:
    """Whether a PostgreSQL process is a backend of `database` ('postgres: [cluster:] user db host(port) state')."""
    try:
        words = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").split()
    except OSError:
        return False
    return bool(words) and words[0] == "postgres:" and database in words[1:4]


def listening_inodes(net_tcp: str, port: int) -> set[str]:
    """The socket inodes listening on `port`, from the text of /proc/net/tcp or tcp6 (state 0A is LISTEN)."""
    found = set()
    for line in net_tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
            found.add(fields[9])
    return found


def broker_pids(table: dict[int, Proc], port: int) -> set[int]:
    """The broker listening on `port` and the processes it started; every broker-named process if none is
    found (another network namespace, /proc not readable)."""
    inodes: set[str] = set()
    for name in ("tcp", "tcp6"):
        try:
            inodes |= listening_inodes((PROC / "net" / name).read_text(), port)
        except OSError:
            continue
    sockets = {f"socket:[{inode}]" for inode in inodes}
    for proc in table.values():
        if proc.name == "beam.smp" and sockets and _holds_any(proc.pid, sockets):
            return descendants(table, [proc.pid])
    return {p.pid for p in table.values() if p.name in RABBIT_NAMES}


def _holds_any(pid: int, sockets: set[str]) -> bool:
    try:
        fds = list((PROC / str(pid) / "fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) in sockets:
                return True
        except OSError:
            continue
    return False


class CpuMeter:
    """Readings of CPU seconds per role; `roots()` names each role's root pids at reading time; with
    `database`, PostgreSQL is only that database's backends."""

    def __init__(self, roots: Callable[[], dict[str, list[int]]], database: str | None = None) -> None:
        self.roots = roots
        self.database = database

    def read(self) -> Reading:
        table = process_table()
        roles: dict[str, float] = {}
        for role, pids in self.roots().items():
            roles[role] = self._seconds(table, descendants(table, pids))
        roles["postgres"] = self._seconds(table, {p.pid for p in table.values() if p.name in POSTGRES_NAMES and (
            self.database is None or _serves(p.pid, self.database))})
        roles["rabbitmq"] = self._seconds(table, broker_pids(table, BROKER_PORT))
        me = table.get(os.getpid())
        roles["bench client"] = me.own_ticks / TICKS if me else 0.0
        return Reading(time.monotonic(), roles, _machine_busy_seconds())

    @staticmethod
    def _seconds(table: dict[int, Proc], pids: set[int]) -> float:
        return sum(table[p].own_ticks + table[p].reaped_ticks for p in pids) / TICKS


def cpu_seconds(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each named group of processes (with their descendants), e.g. one per mock."""
    table = process_table()
    return {name: CpuMeter._seconds(table, descendants(table, pids)) for name, pids in groups.items()}


def usage(start: Reading, end: Reading) -> dict[str, float]:
    """Per role: percent of one core over the interval; 'machine' is percent of all cores together."""
    wall = max(end.wall - start.wall, 1e-9)
    out = {role: 100 * (end.roles[role] - start.roles.get(role, 0.0)) / wall for role in end.roles}
    out["other"] = max(0.0, 100 * (end.busy - start.busy) / wall - sum(out.values()))
    out["machine"] = 100 * (end.busy - start.busy) / wall / end.cores
    return out


def ms_per_unit(start: Reading, end: Reading, units: int) -> dict[str, float]:
    """CPU milliseconds per unit of work (e.g. per accepted event) by role; 'machine' is all CPU used."""
    n = max(units, 1)
    out = {role: 1000 * (end.roles[role] - start.roles.get(role, 0.0)) / n for role in end.roles}
    out["machine"] = 1000 * (end.busy - start.busy) / n
    out["other"] = max(0.0, out["machine"] - sum(v for k, v in out.items() if k != "machine"))
    return out
