"""Hosts on one machine: a network namespace per host, joined by a bridge, addresses from 198.18.0.0/24.

The bridge lives in a namespace of its own (`gwh-switch`), so the machine's own namespace gets no interface,
no address and no route: nothing the harness runs can reach anything but the addresses it made, and the
machine's routing is left as it was. Every host has one veth (`eth0`, its address) whose other end is a port
of the bridge; cutting a host off is taking that port down (its processes go on running, their TCP
connections become half-open, as when a cable or a switch fails).

The range is RFC 2544's benchmarking block. `Network.create()` refuses to start if any of it is already an
address or a route anywhere on the machine (in any namespace), so the harness never talks to something it
did not make; `Network.destroy()` kills every process left in its namespaces and deletes them, which removes
the links with them. Both need root and iproute2 (`ip netns`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass

RANGE = ipaddress.ip_network("198.18.0.0/24")
PREFIX = "gwh-"  # every namespace and link the harness makes starts with it
SWITCH = f"{PREFIX}switch"
BRIDGE = "br0"
CLONE_NEWNET = 0x40000000


class NetworkRefused(RuntimeError):
    """The machine cannot host the harness (not root, no `ip netns`) or its address range is in use."""


@dataclass(frozen=True)
class Host:
    name: str  # short: db, broker, api-1, ...
    address: str

    @property
    def netns(self) -> str:
        return f"{PREFIX}{self.name}"

    @property
    def port(self) -> str:
        """The host's port on the bridge, in the switch namespace (interface names stop at 15 characters)."""
        return f"p-{self.name}"[:15]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def why_unavailable() -> str | None:
    """Why this machine cannot run the harness, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth links, a bridge)"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip`"
    if _ip("netns", "list", check=False).returncode != 0:
        return "`ip netns` does not work here (no network namespace support?)"
    return None


def namespaces() -> list[str]:
    out = _ip("netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _overlaps(entries: Iterable[dict], key: str) -> list[str]:
    found = []
    for entry in entries:
        dst = entry.get(key)
        if not dst or dst == "default":
            continue
        net = ipaddress.ip_network(f"{dst}/{entry.get('prefixlen', 32)}" if "/" not in dst and "prefixlen" in entry
                                   else dst, strict=False)
        if net.version == 4 and net.prefixlen > 0 and net.overlaps(RANGE):
            found.append(str(net))
    return found


def range_in_use() -> list[str]:
    """Where 198.18.0.0/24 is already an address or a route on this machine (every namespace); empty if free.
    The default route is not counted: it sends everything it has no better route for, not this range."""
    uses = []
    for netns in [None, *namespaces()]:
        where = netns or "the machine's own namespace"
        ns = ["-n", netns] if netns else []
        routes = json.loads(_ip(*ns, "-j", "-4", "route", "show", "table", "all").stdout or "[]")
        uses += [f"route to {r} in {where}" for r in _overlaps(routes, "dst")]
        for link in json.loads(_ip(*ns, "-j", "-4", "addr", "show").stdout or "[]"):
            addrs = [{"dst": a["local"], "prefixlen": 32} for a in link.get("addr_info", [])]
            uses += [f"address {a} on {link.get('ifname')} in {where}" for a in _overlaps(addrs, "dst")]
    return uses


class Network:
    """The hosts' namespaces and links. Use as a context manager, or call destroy() in a finally."""

    def __init__(self, hosts: list[Host]) -> None:
        for host in hosts:
            if ipaddress.ip_address(host.address) not in RANGE:
                raise ValueError(f"{host.name}: {host.address} is outside {RANGE}")
        self.hosts = {h.name: h for h in hosts}
        self._made: list[str] = []
        self._home: int | None = None  # the namespace the process started in, to go back to before destroying

    def __enter__(self) -> Network:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def create(self) -> None:
        if reason := why_unavailable():
            raise NetworkRefused(reason)
        leftovers = [ns for ns in namespaces() if ns.startswith(PREFIX)]
        if leftovers:
            raise NetworkRefused(f"namespaces of an earlier run are still there: {', '.join(leftovers)} "
                                 "(remove them with `bench/hosts.py --cleanup`)")
        if uses := range_in_use():
            raise NetworkRefused(f"{RANGE} is already in use on this machine, refusing to start: " + "; ".join(uses))
        try:
            self._add_ns(SWITCH)
            _ip("-n", SWITCH, "link", "add", BRIDGE, "type", "bridge")
            _ip("-n", SWITCH, "link", "set", BRIDGE, "up")
            for host in self.hosts.values():
                self._add_ns(host.netns)
                # Made inside the switch namespace, then one end moved: the machine's namespace never has it.
                _ip("-n", SWITCH, "link", "add", host.port, "type", "veth", "peer", "name", "eth0",
                    "netns", host.netns)
                _ip("-n", SWITCH, "link", "set", host.port, "master", BRIDGE)
                _ip("-n", SWITCH, "link", "set", host.port, "up")
                _ip("-n", host.netns, "addr", "add", f"{host.address}/{RANGE.prefixlen}", "dev", "eth0")
                _ip("-n", host.netns, "link", "set", "eth0", "up")
        except BaseException:
            self.destroy()
            raise

    def _add_ns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def cut(self, host: str) -> None:
        """Take the host's port on the bridge down: a partition, its processes left running."""
        _ip("-n", SWITCH, "link", "set", self.hosts[host].port, "down")

    def mend(self, host: str) -> None:
        _ip("-n", SWITCH, "link", "set", self.hosts[host].port, "up")

    def exec_argv(self, host: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.hosts[host].netns, *argv]

    def enter(self, host: str) -> None:
        """Move the calling thread (call it before any other thread starts: new threads inherit it) into the
        host's namespace; sockets made afterwards are that host's."""
        if self._home is None:
            self._home = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.hosts[host].netns}", os.O_RDONLY)
        try:
            _setns(fd)
        finally:
            os.close(fd)

    def destroy(self) -> None:
        if self._home is not None:  # out of the host's namespace first, or it could not be deleted
            _setns(self._home)
            os.close(self._home)
            self._home = None
        for name in reversed(self._made):
            kill_namespace_processes(name)
            _ip("netns", "del", name, check=False)
        self._made.clear()


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


def kill_namespace_processes(netns: str, grace: float = 5.0) -> None:
    """TERM, then KILL, every process still in one of the harness's namespaces (each was started there by it)."""
    def pids() -> list[int]:
        done = _ip("netns", "pids", netns, check=False)
        found = [int(p) for p in done.stdout.split()] if done.returncode == 0 else []
        return [p for p in found if p != os.getpid()]  # the harness itself may have entered the namespace

    for sig, wait in ((signal.SIGCONT, 0.0), (signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        for pid in pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while pids() and time.monotonic() < deadline:
            time.sleep(0.1)


def cleanup_leftovers() -> list[str]:
    """Remove the namespaces an interrupted run left (those named gwh-*), with their processes and links."""
    left = [ns for ns in namespaces() if ns.startswith(PREFIX)]
    for ns in left:
        kill_namespace_processes(ns)
        _ip("netns", "del", ns, check=False)
    return left
