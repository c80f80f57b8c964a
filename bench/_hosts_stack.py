"""The gateway deployed on seven hosts (network namespaces, see _netns.py) plus a load client behind HAProxy.

    client    198.18.0.1   the load and the reconciliation (this process), HAProxy on :8080
    db        198.18.0.2   a PostgreSQL of its own (initdb in the run's temp dir), :5432; the slow-link relay :6543
    broker    198.18.0.3   a RabbitMQ node of its own (own data dir, own epmd in the namespace), :5672
    partners  198.18.0.4   the mocks, one process per partner as in _stack.py, SMTP on :8025
    api-1/2   198.18.0.11/12   `gateway serve` (gunicorn) on :8000
    worker-1/2 198.18.0.21/22  `gateway worker`

The database and the broker are servers of the harness's own, in their namespaces, not the machine's: the
hosts can reach nothing else, and a fault stays inside the run. api-2 and worker-2 reach the database through
the slow-link relay (bench/_slow_link.py), which passes bytes straight through until the slow-link fault.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import requests
from _netns import Host, Network, kill_namespace_processes
from _rabbitmq_node import SERVER as RABBITMQ_SERVER
from _rabbitmq_node import RabbitMQNode
from _stack import MOCK_GROUPS, ROOT, http_ok, reachable, wait_until

HOSTS = [Host("client", "198.18.0.1"), Host("db", "198.18.0.2"), Host("broker", "198.18.0.3"),
         Host("partners", "198.18.0.4"), Host("api-1", "198.18.0.11"), Host("api-2", "198.18.0.12"),
         Host("worker-1", "198.18.0.21"), Host("worker-2", "198.18.0.22")]
ADDRESS = {h.name: h.address for h in HOSTS}
PG_PORT, RELAY_PORT, AMQP_PORT, API_PORT, LB_PORT, SMTP_PORT = 5432, 6543, 5672, 8000, 8080, 8025
MOCK_PORTS = {group: 8101 + n for n, group in enumerate(MOCK_GROUPS)}
THROUGH_RELAY = ("api-2", "worker-2")  # their database link is the one the slow-link fault slows
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), Path("/usr/lib/postgresql/15/bin"))


def missing_tools() -> list[str]:
    """What the machine lacks for the harness, each with how to get it."""
    missing = []
    if shutil.which("haproxy") is None:
        missing.append("haproxy (apt-get install -y haproxy)")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        missing.append("the postgres user (apt-get install -y postgresql)")
    if not (PG_BIN / "initdb").exists():
        missing.append("PostgreSQL's server binaries (apt-get install -y postgresql)")
    if not RABBITMQ_SERVER.exists():
        missing.append("rabbitmq-server (apt-get install -y rabbitmq-server)")
    return missing


HAPROXY_CFG = """\
global
    maxconn 2000
    stats socket {socket} mode 600 level operator
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    # A frozen host accepts connections (its kernel does) and never answers: requests already sent to it wait
    # this long, then the client gets a 504 and sends again (every gateway request may be sent again).
    timeout server {server_timeout}
    # A request whose connection fails goes to the other host.
    retries 2
    option redispatch
backend api
    balance roundrobin
    # /healthz every {inter}; {fall} misses in a row take a host out, {rise} answers bring it back: a frozen
    # host is out after about fall x (inter + timeout check). The check's timeout must outlast a busy but
    # healthy host's answer (its twin out, the whole load on it), or both go (see docs/operations.md).
    option httpchk GET /healthz
    timeout check {check_timeout}
    default-server inter {inter} fall {fall} rise {rise}
    server api-1 {api1}:{port} check
    server api-2 {api2}:{port} check
frontend gateway
    bind {client}:{lb}
    default_backend api
"""


class HostStack:
    """Starts everything in start(); close() stops it (the Network removes the namespaces)."""

    def __init__(self, net: Network, log_dir: Path, extra_env: dict[str, str], api_threads: int = 8,
                 worker_threads: int = 2, health: dict[str, str] | None = None) -> None:
        self.net = net
        self.log_dir = log_dir
        self.api_threads = api_threads
        self.worker_threads = worker_threads
        self.health = {"inter": "1s", "fall": "2", "rise": "2", "check_timeout": "2s", "server_timeout": "10s",
                       **(health or {})}
        self.api_url = f"http://{ADDRESS['client']}:{LB_PORT}"
        self.db_url = f"postgresql+psycopg://postgres@{ADDRESS['db']}:{PG_PORT}/gateway"
        self.amqp_url = f"amqp://guest:guest@{ADDRESS['broker']}:{AMQP_PORT}//"
        self.portal_url = self.mock("/national-portal")
        self.extra_env = extra_env
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: list[IO[str]] = []
        self._relay: subprocess.Popen | None = None
        self.haproxy_socket = log_dir / "haproxy.sock"

    def mock(self, path: str) -> str:
        prefix = "/" + path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        group = next(g for g, prefixes in MOCK_GROUPS.items() if prefix in prefixes)
        return f"http://{ADDRESS['partners']}:{MOCK_PORTS[group]}{path}"

    def env(self, host: str) -> dict[str, str]:
        db = self.db_url if host not in THROUGH_RELAY else self.db_url.replace(f":{PG_PORT}/", f":{RELAY_PORT}/")
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
            "GATEWAY_DATABASE__URL": db,
            "GATEWAY_BROKER__URL": self.amqp_url,
            "GATEWAY_BROKER__QUEUE_PREFIX": "gwh",
            "GATEWAY_NATIONAL_PORTAL__BASE_URL": self.portal_url,
            "GATEWAY_PAYMENT__NATIONAL_PLATFORM__BASE_URL": self.mock("/payment/platform"),
            "GATEWAY_PAYMENT__VNPAY__BASE_URL": self.mock("/payment/vnpay"),
            "GATEWAY_NOTIFICATIONS__SMS__VIETTEL__WSDL_URL": self.mock("/sms/viettel/bulkapi?wsdl"),
            "GATEWAY_NOTIFICATIONS__SMS__VNPT__URL": self.mock("/sms/vnpt/api/send_sms_list"),
            "GATEWAY_NOTIFICATIONS__EMAIL__HOST": ADDRESS["partners"],
            "GATEWAY_NOTIFICATIONS__EMAIL__PORT": str(SMTP_PORT),
            "GATEWAY_POSTAL__BASE_URL": self.mock("/postal"),
            "GATEWAY_ARCHIVE__TSA_URL": self.mock("/tsa/"),
            "GATEWAY_ARCHIVE__FOLDER": str(self.log_dir / "archive" / host),
            "GATEWAY_SIGNATURE__TRUST_DIR": str(self.log_dir / "trust"),
            "GATEWAY_LOG_LEVEL": "warning",
            **self.extra_env,
        }

    # Starting ----------------------------------------------------------------------------------

    def start(self, late: tuple[str, ...] = ()) -> None:
        """Start every host; the workers named in `late` are left for the caller to start."""
        self._start_rabbitmq()  # it boots (several seconds) while the mocks start and PostgreSQL is made
        from mocks.pki import TestPki

        pki = TestPki()
        pki.write_trust_dir(self.log_dir / "trust")
        for group, prefixes in MOCK_GROUPS.items():
            smtp = SMTP_PORT if group == "email" else 0
            self.spawn(f"mock-{group}", "partners", [sys.executable, "-m", "mocks", "--host", ADDRESS["partners"],
                                                     "--port", str(MOCK_PORTS[group]), "--smtp-port", str(smtp),
                                                     *(a for p in prefixes for a in ("--only", p))])
        self._start_postgres()
        wait_until(lambda: self._alive() and reachable(ADDRESS["broker"], AMQP_PORT), 120, "RabbitMQ", interval=0.3)
        migrate = subprocess.run(self.net.exec_argv("api-1", [sys.executable, "-m", "gateway", "migrate"]),
                                 cwd=ROOT, env=self.env("api-1"), capture_output=True, text=True, timeout=180)
        if migrate.returncode != 0:
            raise RuntimeError(f"gateway migrate failed:\n{migrate.stdout}\n{migrate.stderr}")
        for api in ("api-1", "api-2"):
            self.start_api(api)
        for worker in ("worker-1", "worker-2"):
            if worker not in late:
                self.start_worker(worker)
        self._start_haproxy()
        self.wait_ready([w for w in ("worker-1", "worker-2") if w not in late])
        requests.put(self.mock("/tsa/_mock/identity"), json=pki.tsa.as_json(), timeout=10).raise_for_status()
        requests.post(self.mock("/payment/_mock/config"), timeout=5, json={
            "platform_callback_url": f"{self.api_url}/api/v1/callbacks/payments/national_platform"}
        ).raise_for_status()

    def start_api(self, host: str, skew: float = 0) -> None:
        self.spawn(host, host, [*_python(skew), "-m", "gateway", "serve", "--host", ADDRESS[host],
                                "--port", str(API_PORT), "--workers", "1", "--threads", str(self.api_threads)])

    def start_worker(self, host: str, skew: float = 0) -> None:
        self.spawn(host, host, [*_python(skew), "-m", "gateway", "worker", "--threads", str(self.worker_threads),
                                "--metrics-port", "9100", "--metrics-host", ADDRESS[host]])

    def _start_postgres(self) -> None:
        data = self.log_dir / "pg"
        data.mkdir()
        shutil.chown(data, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
        done = subprocess.run([*as_postgres, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                               "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"], capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr[-500:]}")
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {ADDRESS['db'].rsplit('.', 1)[0]}.0/24 trust\n")
        # fsync off: the run is about hosts and networks, not the database's own crash safety; it keeps
        # the shared 2-core machine's disk out of the figures.
        self.spawn("postgres", "db", [*as_postgres, str(PG_BIN / "postgres"), "-D", str(data),
                                      "-c", f"listen_addresses={ADDRESS['db']},127.0.0.1", "-c", f"port={PG_PORT}",
                                      "-c", f"unix_socket_directories={data}", "-c", "fsync=off",
                                      "-c", "max_connections=200", "-c", "shared_buffers=64MB"])
        wait_until(lambda: self._alive() and reachable(ADDRESS["db"], PG_PORT), 60, "PostgreSQL", interval=0.2)
        import sqlalchemy as sa

        admin = sa.create_engine(self.db_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        wait_until(lambda: _try(lambda: admin.connect().close()), 30, "PostgreSQL to accept connections")
        with admin.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE gateway"))
        admin.dispose()
        self._relay = self.spawn("db-link-relay", "db", [
            sys.executable, str(ROOT / "bench" / "_slow_link.py"), "--listen", f"{ADDRESS['db']}:{RELAY_PORT}",
            "--to", f"127.0.0.1:{PG_PORT}"])
        wait_until(lambda: self._alive() and reachable(ADDRESS["db"], RELAY_PORT), 30, "the db link relay")

    def _start_rabbitmq(self) -> None:
        node = RabbitMQNode(self.log_dir / "rabbitmq", "gwh", ADDRESS["broker"], AMQP_PORT)
        self.spawn("rabbitmq", "broker", node.server_argv())

    def _start_haproxy(self) -> None:
        cfg = self.log_dir / "haproxy.cfg"
        cfg.write_text(HAPROXY_CFG.format(api1=ADDRESS["api-1"], api2=ADDRESS["api-2"], port=API_PORT,
                                          client=ADDRESS["client"], lb=LB_PORT, socket=self.haproxy_socket,
                                          **self.health))
        self.spawn("haproxy", "client", ["haproxy", "-db", "-f", str(cfg)])

    def wait_ready(self, workers: list[str], timeout: float = 90) -> None:
        for group, port in MOCK_PORTS.items():
            wait_until(lambda port=port: self._alive() and http_ok(f"http://{ADDRESS['partners']}:{port}/healthz"),
                       timeout, f"the {group} mock")
        for api in ("api-1", "api-2"):
            wait_until(lambda api=api: self._alive() and http_ok(f"http://{ADDRESS[api]}:{API_PORT}/healthz"),
                       timeout, api)
        for worker in workers:
            self.wait_worker(worker, timeout)
        wait_until(lambda: self._alive() and http_ok(f"{self.api_url}/healthz"), timeout, "HAProxy")

    def wait_worker(self, worker: str, timeout: float = 90) -> None:
        wait_until(lambda: self._alive() and http_ok(f"http://{ADDRESS[worker]}:9100/metrics"), timeout, worker)

    # Processes ---------------------------------------------------------------------------------

    def spawn(self, name: str, host: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "a")  # noqa: SIM115 - closed in close()
        self._logs.append(log)
        # A session of its own: a host's processes are frozen or stopped together (gunicorn's workers too).
        proc = subprocess.Popen(self.net.exec_argv(host, argv), cwd=ROOT, env=env or self.env(host), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def _alive(self) -> bool:
        dead = [f"{name} (exit {p.returncode})" for name, p in self.procs.items() if p.poll() is not None]
        if dead:
            raise RuntimeError(f"process ended early: {', '.join(dead)}; see the logs in {self.log_dir}")
        return True

    def check_alive(self) -> None:
        self._alive()

    def signal_host(self, host: str, sig: int) -> None:
        """Every process of the host's namespace (SIGSTOP freezes the host, SIGCONT resumes it)."""
        done = subprocess.run(["ip", "netns", "pids", self.net.hosts[host].netns], capture_output=True, text=True)
        for pid in map(int, done.stdout.split()):
            if pid != os.getpid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def balancer_view(self) -> dict[str, str]:
        """Each API host's state at HAProxy (UP, DOWN, ...), from its runtime API."""
        import socket

        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(self.haproxy_socket))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        rows = [line.split(",") for line in data.decode().splitlines() if line.startswith("api,")]
        return {row[1]: row[17] for row in rows if row[1] in ("api-1", "api-2")}

    def slow_db_link(self, slow: bool) -> None:
        assert self._relay is not None
        self._relay.send_signal(signal.SIGUSR1 if slow else signal.SIGUSR2)

    def close(self) -> None:
        # Each host's namespace emptied, clients first; the Network then deletes the namespaces.
        for host in ("client", "api-1", "api-2", "worker-1", "worker-2", "partners", "broker", "db"):
            kill_namespace_processes(self.net.hosts[host].netns)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        for log in self._logs:
            log.close()


def _python(skew: float) -> list[str]:
    """The interpreter, with its wall clock `skew` seconds off when asked (see _skewed.py)."""
    return [sys.executable, str(ROOT / "bench" / "_skewed.py"), f"{skew:+g}"] if skew else [sys.executable]


def _try(fn) -> bool:  # noqa: ANN001
    try:
        fn()
        return True
    except Exception:  # noqa: BLE001 - not yet
        return False
