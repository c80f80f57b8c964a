"""The system under test as subprocesses: a fresh PostgreSQL database, a RabbitMQ queue prefix of its own,
the mocks, the API (gunicorn) and gateway workers. Everything it creates, close() removes.

Each partner's mock runs in a process of its own (`python -m mocks --only PREFIX`), with its `/_mock` API
under its usual prefix, so that no partner waits for another's GIL: one process playing every partner was
the first thing to saturate under the mixed load (it stopped answering within 10 s at 150 events/s).
A mock keeps its state in its process's memory, which is why it is a process per partner and not one
app under several gunicorn workers (each would hold a different state and a different `/_mock` log).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672//")


# The mocks' processes: each group shares a process because its parts share state or serve one purpose (the
# email blueprint reads the SMTP server's store; the TSA, OCSP and CA are the archive's trust services).
MOCK_GROUPS: dict[str, tuple[str, ...]] = {
    "national-portal": ("/national-portal",), "payment": ("/payment",), "sms": ("/sms",), "postal": ("/postal",),
    "email": ("/email",), "trust": ("/tsa", "/ocsp", "/ca"), "one-stop": ("/one-stop",),
}


@dataclass(frozen=True)
class StackOptions:
    api_workers: int
    api_threads: int
    gateway_workers: int
    worker_threads: int
    log_level: str
    extra_env: dict[str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `predicate` until it is truthy; raise TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


def _admin_sql(statement: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(statement))
    finally:
        admin.dispose()


def queue_consumers(queue: str) -> int:
    """Consumers on a RabbitMQ queue, 0 while it does not exist yet."""
    from kombu import Connection

    try:
        with Connection(AMQP_URL, connect_timeout=3) as conn:
            return conn.channel().queue_declare(queue=queue, passive=True).consumer_count
    except Exception:  # noqa: BLE001 - not declared yet (404 closes the channel) or broker busy: not ready
        return 0


def delete_broker_objects(queues: list[str], exchanges: list[str]) -> None:
    from kombu import Connection

    with Connection(AMQP_URL, connect_timeout=3) as conn:
        for queue in queues:
            with contextlib.suppress(Exception):  # already gone: fine
                conn.channel().queue_delete(queue)
        for exchange in exchanges:
            with contextlib.suppress(Exception):
                conn.channel().exchange_delete(exchange)


class Stack:
    """One gateway deployment on this machine; use as a context manager so it is always torn down."""

    def __init__(self, options: StackOptions, log_dir: Path) -> None:
        from gateway.bootstrap import QUEUES

        self.options = options
        self.log_dir = log_dir
        self.tag = f"gwbench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.job_queues = [f"{self.tag}.{q}" for q in QUEUES]
        self.mock_ports = {group: free_port() for group in MOCK_GROUPS}
        self.smtp_port = free_port()
        self.api_url = f"http://127.0.0.1:{free_port()}"
        self.portal_url = self.mock("/national-portal")
        self.db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.tag}"
        self.env = {
            **os.environ,
            "GATEWAY_DATABASE__URL": self.db_url,
            "GATEWAY_BROKER__URL": AMQP_URL,
            "GATEWAY_BROKER__QUEUE_PREFIX": self.tag,
            # Every partner is the mocks server's.
            "GATEWAY_NATIONAL_PORTAL__BASE_URL": self.portal_url,
            "GATEWAY_PAYMENT__NATIONAL_PLATFORM__BASE_URL": self.mock("/payment/platform"),
            "GATEWAY_PAYMENT__VNPAY__BASE_URL": self.mock("/payment/vnpay"),
            "GATEWAY_NOTIFICATIONS__SMS__VIETTEL__WSDL_URL": self.mock("/sms/viettel/bulkapi?wsdl"),
            "GATEWAY_NOTIFICATIONS__SMS__VNPT__URL": self.mock("/sms/vnpt/api/send_sms_list"),
            "GATEWAY_NOTIFICATIONS__EMAIL__PORT": str(self.smtp_port),
            "GATEWAY_POSTAL__BASE_URL": self.mock("/postal"),
            # A finished dossier's archive package: sealed by this stack's TSA mock, written in the log dir
            # (not the working tree's var/archive, and never another stack's mocks on the default port).
            "GATEWAY_ARCHIVE__TSA_URL": self.mock("/tsa/"),
            "GATEWAY_ARCHIVE__FOLDER": str(log_dir / "archive"),
            # The roots of the mocks' test PKI (written at start, see there).
            "GATEWAY_SIGNATURE__TRUST_DIR": str(log_dir / "trust"),
            # The figures are the dossier path's; citizen notifications have their own queue and would add
            # two sends per step to the same two cores.
            "GATEWAY_NOTIFICATIONS__ENABLED": "false",
            "GATEWAY_JOBS__WORKER_THREADS": str(options.worker_threads),
            "GATEWAY_LOG_LEVEL": options.log_level,
            **options.extra_env,
        }
        self.procs: dict[str, list[subprocess.Popen]] = {"api": [], "workers": [], "mocks": []}
        self.worker_metrics: list[str] = []  # each worker's /metrics URL
        self._logs: list[IO[str]] = []
        self._spawned: dict[str, int] = {}
        self._db_created = False

    # Lifecycle ---------------------------------------------------------------------------------

    def mock(self, path: str) -> str:
        """The URL of a mock's path, e.g. mock("/payment/_mock/state"), at the process serving that mock."""
        prefix = "/" + path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        group = next(g for g, prefixes in MOCK_GROUPS.items() if prefix in prefixes)
        return f"http://127.0.0.1:{self.mock_ports[group]}{path}"

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        _admin_sql(f'CREATE DATABASE "{self.tag}"')
        self._db_created = True
        self._run_cli("migrate")
        from mocks.pki import TestPki

        # The TSA mock is told to sign with the test PKI's time-stamping identity, whose roots the gateway
        # trusts (read at its start), so that every package seals once, as in the tests' stack, rather than
        # failing to verify and being built again.
        pki = TestPki()
        pki.write_trust_dir(self.log_dir / "trust")
        for group, prefixes in MOCK_GROUPS.items():
            smtp = self.smtp_port if group == "email" else 0
            self._spawn("mocks", [sys.executable, "-m", "mocks", "--port", str(self.mock_ports[group]),
                                  "--smtp-port", str(smtp), *(a for p in prefixes for a in ("--only", p))])
        o = self.options
        self._spawn("api", [sys.executable, "-m", "gateway", "serve", "--port", self.api_url.rsplit(":", 1)[1],
                            "--workers", str(o.api_workers), "--threads", str(o.api_threads)])
        for _ in range(o.gateway_workers):
            self.start_worker()
        self.wait_ready()
        requests.put(self.mock("/tsa/_mock/identity"), json=pki.tsa.as_json(), timeout=10).raise_for_status()
        # The payment mock calls back the gateway it serves.
        requests.post(self.mock("/payment/_mock/config"), timeout=5, json={
            "platform_callback_url": f"{self.api_url}/api/v1/callbacks/payments/national_platform"}
        ).raise_for_status()

    def start_worker(self) -> subprocess.Popen:
        threads = str(self.options.worker_threads)
        port = free_port()  # its counters (statements, periodic tasks), read by bench/_observe.gateway_counters
        self.worker_metrics.append(f"http://127.0.0.1:{port}/metrics")
        self._spawn("workers", [sys.executable, "-m", "gateway", "worker", "--threads", threads,
                                "--metrics-port", str(port)])
        return self.procs["workers"][-1]

    def kill_worker(self, index: int = 0) -> int:
        """SIGKILL one running worker (no clean-up of any kind); answers its pid."""
        running = [p for p in self.procs["workers"] if p.poll() is None]
        proc = running[index % len(running)]
        proc.kill()
        proc.wait(10)
        self.procs["workers"].remove(proc)
        return proc.pid

    def wait_ready(self, timeout: float = 60) -> None:
        for group, port in self.mock_ports.items():
            wait_until(lambda port=port: self._alive() and http_ok(f"http://127.0.0.1:{port}/healthz"), timeout,
                       f"the {group} mock")
        wait_until(lambda: self._alive() and http_ok(f"{self.api_url}/healthz"), timeout, "the API")
        consumers = self.options.gateway_workers * self.options.worker_threads
        wait_until(lambda: self._alive() and queue_consumers(self.job_queues[0]) >= consumers, timeout,
                   f"{consumers} consumers on {self.job_queues[0]}", interval=0.3)

    def close(self) -> None:
        for role in ("api", "workers", "mocks"):  # producers first, the partner last
            for proc in self.procs[role]:
                _stop(proc)
        for log in self._logs:
            log.close()
        with contextlib.suppress(Exception):
            delete_broker_objects(self.job_queues, [self.tag])
        if self._db_created:
            _admin_sql(f'DROP DATABASE IF EXISTS "{self.tag}" WITH (FORCE)')
            self._db_created = False

    # Processes ---------------------------------------------------------------------------------

    def root_pids(self) -> dict[str, list[int]]:
        return {role: [p.pid for p in procs] for role, procs in self.procs.items()}

    def mock_pids(self) -> dict[str, list[int]]:
        """Each mock group's process (MOCK_GROUPS' names), for CPU per partner."""
        return {group: [proc.pid] for group, proc in zip(MOCK_GROUPS, self.procs["mocks"], strict=False)}

    def _alive(self) -> bool:
        dead = [f"{role} (exit {p.returncode})" for role, procs in self.procs.items() for p in procs
                if p.poll() is not None]
        if dead:
            raise RuntimeError(f"process ended early: {', '.join(dead)}; see the logs in {self.log_dir}")
        return True

    def check_alive(self) -> None:
        self._alive()

    def _spawn(self, role: str, argv: list[str]) -> None:
        self._spawned[role] = n = self._spawned.get(role, -1) + 1  # a killed worker's log stays as it was
        log = open(self.log_dir / f"{role}-{n}.log", "w")  # noqa: SIM115 - closed in close()
        self._logs.append(log)
        self.procs[role].append(subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log,
                                                 stderr=subprocess.STDOUT))

    def _run_cli(self, *args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "gateway", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"gateway {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def _stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
