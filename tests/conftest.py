"""Test stacks: every integration test runs on the embedded defaults (SQLite + kombu filesystem) and on
the production stack (PostgreSQL + RabbitMQ on this machine), each with the real mocks server and real
worker processes.

The production stack is skipped when its servers are unreachable, unless GATEWAY_TEST_REQUIRE_SERVICES=1
(as in CI), which turns their absence into a failure.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
import requests

from mocks.provincial_portal import sample_dossier

from .warm_start import WarmProcess, starter

if TYPE_CHECKING:
    from sqlalchemy import Engine

pytest_plugins = ["tests.suite_times"]  # GATEWAY_TEST_TIMES=FILE: what each test costs

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("GATEWAY_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("GATEWAY_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
REQUIRE = os.environ.get("GATEWAY_TEST_REQUIRE_SERVICES") == "1"


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def production_services_up() -> bool:
    return reachable("127.0.0.1", 5432) and reachable("127.0.0.1", 5672)


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE and not production_services_up():
        pytest.exit("GATEWAY_TEST_REQUIRE_SERVICES=1 but PostgreSQL (5432) or RabbitMQ (5672) is not reachable",
                    returncode=3)


# Files whose tests take the longest, started first so that none of them is the run's last lap (a scheduling
# hint for pytest-xdist only: any order gives the same results). Measured per file with
# `GATEWAY_TEST_TIMES=FILE` (docs/testing.md), longest first; the multi-host test alone takes some 45 s.
LONGEST_FIRST = ("test_hosts.py", "test_archive_batches.py", "test_archive.py", "test_reliability.py",
                 "test_payments.py", "test_archive_renewal.py", "test_portal_drift.py", "test_fuzz.py",
                 "test_console.py", "test_audit_anchors.py", "test_api_one_stop.py", "test_signatures_api.py",
                 "test_audit_chain.py", "test_broker_heartbeat.py")
# Long files whose tests run on both stacks: each stack's half is a group of its own, so two processes share them.
SPLIT_BY_STACK = ("test_archive_batches.py", "test_archive.py", "test_reliability.py", "test_payments.py",
                  "test_archive_renewal.py", "test_portal_drift.py")
# Files whose tests share nothing but the stacks, each long: spread over the processes one test at a time.
SPREAD = ("test_fuzz.py",)


def _group(item: pytest.Item) -> str | None:
    name = item.nodeid.split("::")[0]
    if item.path.name in SPREAD:
        return None
    kind = getattr(item, "callspec", None) and item.callspec.params.get("stack")
    return f"{name}:{kind}" if kind and item.path.name in SPLIT_BY_STACK else name


# First, before pytest-xdist's own hook reads the groups into the test ids. Make runs pytest-xdist with
# --no-loadscope-reorder, which keeps this order instead of putting the groups with the most tests first.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under `--dist loadgroup` a file's tests stay in one process (they share module fixtures and the stacks'
    state warmed by the file's first test), except the SPREAD ones and the SPLIT_BY_STACK halves; the longest
    files go out first."""
    for item in items:
        if (group := _group(item)) is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def _port_range() -> range:
    """This test process's own ports: below the kernel's ephemeral range, so that no outgoing connection of
    any process can take a port between our check and the server's bind (the kernel's port 0 hands out
    ephemeral ports, which outgoing connections reuse at once), and one block per xdist process."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
    index = int(worker[2:]) + 1 if worker[2:].isdigit() else 0
    start = 20000 + 400 * index
    return range(start, start + 400)


_ports = iter(())  # type: ignore[var-annotated]


def free_port() -> int:
    """A port nobody listens on, from this process's own block (a random starting point in it, so that runs
    side by side on one machine seldom try the same ports; a port taken by another program is skipped)."""
    global _ports
    for _ in range(2):
        for port in _ports:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        block = _port_range()
        first = random.randrange(len(block))
        _ports = iter([*block[first:], *block[:first]])
    raise RuntimeError(f"no free port in {_port_range()}")


@pytest.fixture
def smtp_server() -> Iterator[tuple[Any, int]]:
    """The SMTP mock in this process, on a port of its own: its MailStore and the port."""
    from mocks.email import MailStore, start_smtp

    store, port = MailStore(), free_port()
    controller = start_smtp(store, port=port)
    yield store, port
    controller.stop()


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05,
             what: str = "condition") -> Any:
    """Poll until predicate() is truthy; the interval is a polling period, not a guess at a race."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def launch(args: list[str], env: dict[str, str], stdout: Path, stderr: Path | None = None,
           tier: str = "gateway") -> subprocess.Popen | WarmProcess:
    """`python -m ARGS` with the test environment plus env, output to files: forked warm (tests/warm_start.py)
    unless GATEWAY_TEST_COLD_START=1. The "libraries" tier is for servers that must import the gateway
    themselves (`gateway serve` chooses prometheus_client's mode first), the "gateway" tier for the rest."""
    full_env = {**os.environ, **env}
    warm = starter(tier)
    if warm is not None:
        return warm.spawn(args, full_env, stdout, stderr)
    with open(stdout, "w") as out:
        if stderr is None:
            return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=full_env, stdout=out,
                                    stderr=subprocess.STDOUT)
        with open(stderr, "w") as err:
            return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=full_env, stdout=out, stderr=err)


class ServerProcess:
    """A server of ours in its own process (`python -m <args> --port N`), up once /healthz answers."""

    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None,
                 startup: float = 30) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = launch([*args, "--port", str(self.port)], env or {}, log_dir / f"{name}.log", tier="libraries")
        wait_for(self._up, startup, what=f"the {name} server")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the {self.name} server exited with {self.proc.returncode}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def mock_server(log_dir: Path) -> ServerProcess:
    """Every HTTP mock on one port, and the SMTP mock on another (`smtp_port`)."""
    smtp_port = free_port()
    server = ServerProcess("mocks", ["mocks", "--smtp-port", str(smtp_port)], log_dir)
    server.smtp_port = smtp_port  # type: ignore[attr-defined]
    return server


class NationalPortalMock:
    def __init__(self, server: ServerProcess) -> None:
        self.base = f"{server.url}/national-portal"

    def faults(self, mode: str, count: int, **extra: Any) -> None:
        requests.post(f"{self.base}/_mock/faults", json={"mode": mode, "count": count, **extra},
                      timeout=5).raise_for_status()

    def clear_faults(self) -> None:
        requests.delete(f"{self.base}/_mock/faults", timeout=5).raise_for_status()

    def expire_sessions(self) -> None:
        requests.post(f"{self.base}/_mock/expire-sessions", timeout=5).raise_for_status()

    def dossier(self, code: str) -> dict[str, Any] | None:
        r = requests.get(f"{self.base}/_mock/state/{code}", timeout=5)
        return r.json() if r.status_code == 200 else None

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        return requests.get(f"{self.base}/_mock/requests", params={"since": since}, timeout=5).json()["requests"]

    def requests_for(self, code: str) -> list[dict[str, Any]]:
        return [r for r in self.requests() if code in str(r.get("body"))]

    def drift(self) -> list[dict[str, Any]]:
        """What the drift faults did (mocks/national_portal_drift.py), oldest first."""
        return requests.get(f"{self.base}/_mock/drift", timeout=5).json()["drift"]

    def reset(self) -> None:
        requests.post(f"{self.base}/_mock/reset", timeout=5).raise_for_status()


class PaymentMock:
    """The payment providers' mock; after a reset it calls back the gateway's real HTTP API again."""

    def __init__(self, server: ServerProcess) -> None:
        self.base = f"{server.url}/payment"
        self.callback_base: str | None = None

    def point_callbacks_at(self, api_url: str) -> None:
        self.callback_base = f"{api_url}/api/v1/callbacks/payments"
        self.configure(platform_callback_url=f"{self.callback_base}/national_platform",
                       vnpay_ipn_url=f"{self.callback_base}/vnpay")

    def configure(self, **changes: Any) -> None:
        requests.post(f"{self.base}/_mock/config", json=changes, timeout=5).raise_for_status()

    def faults(self, mode: str, count: int, **extra: Any) -> None:
        requests.post(f"{self.base}/_mock/faults", json={"mode": mode, "count": count, **extra},
                      timeout=5).raise_for_status()

    def reset(self) -> None:
        requests.post(f"{self.base}/_mock/reset", timeout=5).raise_for_status()
        if self.callback_base:
            self.point_callbacks_at(self.callback_base.rsplit("/api/v1/", 1)[0])

    def pay(self, provider: str, ref: str, outcome: str = "paid") -> dict[str, Any]:
        """The citizen pays (API mode): the mock settles the order and sends its callback at once."""
        r = requests.post(f"{self.base}/_mock/pay/{provider}/{ref}", json={"outcome": outcome}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def order(self, provider: str, ref: str) -> dict[str, Any] | None:
        r = requests.get(f"{self.base}/_mock/state/{provider}/{ref}", timeout=5)
        return r.json() if r.status_code == 200 else None

    def requests(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.base}/_mock/requests", timeout=5).json()["requests"]

    def config(self) -> dict[str, Any]:
        return requests.get(f"{self.base}/_mock/config", timeout=5).json()


class MockEndpoints:
    """A mock's `_mock/*` endpoints under its base URL."""

    def __init__(self, base: str) -> None:
        self.base = base

    def faults(self, mode: str, count: int, **extra: Any) -> None:
        requests.post(f"{self.base}/_mock/faults", json={"mode": mode, "count": count, **extra},
                      timeout=5).raise_for_status()

    def clear_faults(self) -> None:
        requests.delete(f"{self.base}/_mock/faults", timeout=5).raise_for_status()

    def configure(self, **changes: Any) -> None:
        requests.post(f"{self.base}/_mock/config", json=changes, timeout=5).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.base}/_mock/requests", timeout=5).json()["requests"]

    def messages(self, **query: str) -> list[dict[str, Any]]:
        return requests.get(f"{self.base}/_mock/messages", params=query, timeout=5).json()["messages"]

    def post(self, path: str, body: Any = None) -> dict[str, Any]:
        r = requests.post(f"{self.base}{path}", json=body, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()


class Stack:
    """One running gateway: settings, an in-process API client, worker processes, the mocks."""

    FAST_JOBS = {
        "GATEWAY_JOBS__MAX_ATTEMPTS": "5",
        "GATEWAY_JOBS__BACKOFF_BASE_SECONDS": "0.2",
        "GATEWAY_JOBS__BACKOFF_CAP_SECONDS": "1.0",
        "GATEWAY_JOBS__LEASE_SECONDS": "5",
        "GATEWAY_JOBS__SWEEP_INTERVAL_SECONDS": "0.2",
        "GATEWAY_JOBS__SAMPLE_EVERY_SECONDS": "0.5",  # the console's chart gets a point within a second
        "GATEWAY_JOBS__REPUBLISH_AFTER_SECONDS": "3",
        "GATEWAY_JOBS__WORKER_THREADS": "2",
        "GATEWAY_NATIONAL_PORTAL__TIMEOUT_SECONDS": "1.5",
        "GATEWAY_PAYMENT__NATIONAL_PLATFORM__TIMEOUT_SECONDS": "1.5",
        "GATEWAY_PAYMENT__VNPAY__TIMEOUT_SECONDS": "1.5",
        "GATEWAY_NOTIFICATIONS__SMS__VIETTEL__TIMEOUT_SECONDS": "1.5",
        "GATEWAY_NOTIFICATIONS__SMS__VNPT__TIMEOUT_SECONDS": "1.5",
        "GATEWAY_NOTIFICATIONS__EMAIL__TIMEOUT_SECONDS": "2",
        "GATEWAY_POSTAL__TIMEOUT_SECONDS": "1.5",
        "GATEWAY_POSTAL__SCAN_INTERVAL_SECONDS": "0.2",
        "GATEWAY_POSTAL__POLL_EVERY_SECONDS": "3600",  # tests make a poll due by moving next_poll_at
        "GATEWAY_SLA__SCAN_INTERVAL_SECONDS": "0.2",
        "GATEWAY_PAYMENT__SCAN_INTERVAL_SECONDS": "0.2",
        # Reconciliation only when a test makes a payment due (tests move next_check_at instead of waiting).
        "GATEWAY_PAYMENT__RECONCILE_AFTER_SECONDS": "3600",
        # The national portal read back only when a test makes a dossier due (tests/test_portal_drift.py), then
        # quickly: a budget no test waits on, a repaired dossier looked at again at once.
        "GATEWAY_NATIONAL_PORTAL__RECONCILE__FIRST_CHECK_AFTER_SECONDS": "3600",
        "GATEWAY_NATIONAL_PORTAL__RECONCILE__SCAN_INTERVAL_SECONDS": "0.2",
        "GATEWAY_NATIONAL_PORTAL__RECONCILE__RATE_PER_SECOND": "500",
        "GATEWAY_NATIONAL_PORTAL__RECONCILE__RECHECK_AFTER_SECONDS": "0.3",
        "GATEWAY_NATIONAL_PORTAL__RECONCILE__BUSY_RECHECK_SECONDS": "0.3",
    }
    # Dossiers of this procedure pay through VNPay; every other through the national platform.
    VNPAY_PROCEDURE = "1.000001.000.00.00.H56"
    # Dossiers of this procedure are archived permanently (a retention rule); every other for the default 10 years.
    PERMANENT_PROCEDURE = "1.001193.000.00.00.H56"

    def __init__(self, name: str, tmp: Path, db_url: str, broker_env: dict[str, str]) -> None:
        from gateway.app import create_app
        from gateway.bootstrap import bootstrap
        from gateway.config import load_settings
        from gateway.store.database import migrate

        self.name = name
        self.tmp = tmp
        self.mocks = mock_server(tmp)
        self.portal = NationalPortalMock(self.mocks)
        self.payment = PaymentMock(self.mocks)
        self.viettel = MockEndpoints(f"{self.mocks.url}/sms/viettel")
        self.vnpt = MockEndpoints(f"{self.mocks.url}/sms/vnpt")
        self.mail = MockEndpoints(f"{self.mocks.url}/email")
        self.post_office = MockEndpoints(f"{self.mocks.url}/postal")
        self.ca = MockEndpoints(f"{self.mocks.url}/ca")
        self.one_stop = MockEndpoints(f"{self.mocks.url}/one-stop")
        from mocks.pki import TestPki

        self.tsa = MockEndpoints(f"{self.mocks.url}/tsa")
        self.ocsp = MockEndpoints(f"{self.mocks.url}/ocsp")
        # Signers' CRLs are published at the CA mock; the OCSP mock answers for the CA once a test registers it.
        self.pki = TestPki(crl_base=self.ca.base, ocsp_url=f"{self.ocsp.base}/")
        self.pki.write_trust_dir(tmp / "trust")
        requests.put(f"{self.tsa.base}/_mock/identity", json=self.pki.tsa.as_json(), timeout=10).raise_for_status()
        self.archive_folder = tmp / "archive"
        self.env = {
            **self.FAST_JOBS, **broker_env,
            "GATEWAY_DATABASE__URL": db_url,
            "GATEWAY_NATIONAL_PORTAL__BASE_URL": self.portal.base,
            "GATEWAY_PAYMENT__NATIONAL_PLATFORM__BASE_URL": f"{self.payment.base}/platform",
            "GATEWAY_PAYMENT__VNPAY__BASE_URL": f"{self.payment.base}/vnpay",
            "GATEWAY_PAYMENT__ROUTES": f'[{{"procedure_code": "{self.VNPAY_PROCEDURE}", "provider": "vnpay"}}]',
            "GATEWAY_NOTIFICATIONS__SMS__VIETTEL__WSDL_URL": f"{self.viettel.base}/bulkapi?wsdl",
            "GATEWAY_NOTIFICATIONS__SMS__VNPT__URL": f"{self.vnpt.base}/api/send_sms_list",
            "GATEWAY_NOTIFICATIONS__EMAIL__PORT": str(self.mocks.smtp_port),  # type: ignore[attr-defined]
            "GATEWAY_POSTAL__BASE_URL": self.post_office.base,
            "GATEWAY_SIGNATURE__TRUST_DIR": str(tmp / "trust"),
            "GATEWAY_ARCHIVE__FOLDER": str(tmp / "archive"),
            "GATEWAY_ARCHIVE__TSA_URL": f"{self.tsa.base}/",
            "GATEWAY_ARCHIVE__TSA_TIMEOUT_SECONDS": "3",
            "GATEWAY_ARCHIVE__FETCH_TIMEOUT_SECONDS": "2",
            "GATEWAY_ARCHIVE__SCAN_INTERVAL_SECONDS": "0.5",
            # A package waits a moment for others to share its timestamp; a killed worker's batch comes back soon.
            "GATEWAY_ARCHIVE__BATCH_WAIT_SECONDS": "0.3",
            "GATEWAY_ARCHIVE__BATCH_LEASE_SECONDS": "15",
            # No audit anchoring unless a test asks: an anchor's TSA call would take the faults meant for sealing.
            "GATEWAY_ARCHIVE__AUDIT_ANCHOR_MINUTES": "0",
            "GATEWAY_ARCHIVE__RETENTION": json.dumps([{"procedure_code": self.PERMANENT_PROCEDURE, "years": 0}]),
            "GATEWAY_WEBHOOKS__URL": f"{self.mocks.url}/one-stop/webhooks",
            "GATEWAY_WEBHOOKS__PUSH_INTERVAL_SECONDS": "0.2",
            # The partners (the mocks) call back from this machine only, as configured in production.
            "GATEWAY_AUTH__CALLBACK_NETWORKS": json.dumps({p: ["127.0.0.0/8", "::1/128"] for p in (
                "payment", "postal", "national_portal")}),
        }
        with mock.patch.dict(os.environ, self.env):
            self.settings = load_settings()
        migrate(db_url)
        self.gateway = bootstrap(self.settings)
        self.app = create_app(self.gateway)
        self.client = self.app.test_client()
        self.workers: list[subprocess.Popen | WarmProcess] = []
        self._worker_logs = 0
        self._api: ServerProcess | None = None

    @property
    def api_url(self) -> str:
        """The gateway's API as a real HTTP server (started on first use), and the payment mock calling it."""
        if self._api is None:
            # Partners that call back need a real HTTP address.
            self._api = ServerProcess("api", ["gateway", "serve", "--workers", "2", "--threads", "4"], self.tmp,
                                      self.env)
            self.payment.point_callbacks_at(self._api.url)
            self.post_office.configure(callback_url=f"{self._api.url}/api/v1/callbacks/postal/vnpost")
        return self._api.url

    # Processes ---------------------------------------------------------------------------------

    def start_worker(self, *args: str, **env: str) -> subprocess.Popen | WarmProcess:
        log = self.tmp / f"worker-{self._worker_logs}.log"
        self._worker_logs += 1
        proc = launch(["gateway", "worker", *args], {**self.env, **env}, log)
        self.workers.append(proc)
        return proc

    def stop_workers(self, sig: int | None = None) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                if sig is None:
                    proc.terminate()
                else:
                    proc.send_signal(sig)
        for proc in self.workers:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.workers.clear()

    def gateway_cli(self, *args: str) -> subprocess.CompletedProcess:
        """`gateway ARGS` with the stack's settings, as subprocess.run(capture_output=True, text=True) gives it."""
        out = tempfile.NamedTemporaryFile(dir=self.tmp, prefix="cli-", suffix=".out", delete=False)  # noqa: SIM115
        err = Path(out.name).with_suffix(".err")
        out.close()
        proc = launch(["gateway", *args], self.env, Path(out.name), err)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        return subprocess.CompletedProcess(["gateway", *args], proc.returncode, Path(out.name).read_text(),
                                           err.read_text())

    def close(self) -> None:
        self.stop_workers()
        if self._api is not None:
            self._api.stop()
        self.gateway.close()
        self.mocks.stop()

    # API helpers -------------------------------------------------------------------------------

    def post(self, path: str, body: Any, key: str = "dev-portal-key", **kw: Any):  # noqa: ANN201
        return self.client.post(path, json=body, headers={"Authorization": f"Bearer {key}"}, **kw)

    def get(self, path: str, key: str = "dev-one-stop-key", **kw: Any):  # noqa: ANN201
        return self.client.get(path, headers={"Authorization": f"Bearer {key}"}, **kw)

    def file(self, dossier: dict[str, Any]) -> dict[str, Any]:
        r = self.post("/api/v1/dossiers", dossier)
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    def step(self, code: str, status: int, **fields: Any) -> dict[str, Any]:
        r = self.post(f"/api/v1/dossiers/{code}/events", {"status": status, **fields}, key="dev-one-stop-key")
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    # Job inspection ----------------------------------------------------------------------------

    def jobs(self, code: str) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from gateway.store.tables import jobs

        with self.gateway.engine.connect() as conn:  # one query: a job moving on is not seen twice
            return [dict(r) for r in conn.execute(
                select(jobs).where(jobs.c.ordering_key == code).order_by(jobs.c.id)).mappings()]

    def wait_jobs(self, code: str, state: str = "done", count: int | None = None, timeout: float = 30) -> list:
        def settled() -> list | None:
            jobs = self.jobs(code)
            ok = jobs and all(j["state"] == state for j in jobs) and (count is None or len(jobs) == count)
            return jobs if ok else None

        return wait_for(settled, timeout, what=f"jobs of {code} to be {state}")

    def settle(self, timeout: float = 60) -> None:
        """Until no earlier test's job is running or due soon. A worker judges a partner down from the failures
        of several dossiers (jobs/partner_outage.py): an earlier test's jobs failing under this test's faults
        would make it so, and this test's jobs would then wait without using attempts."""
        from sqlalchemy import and_, func, or_, select

        from gateway.store.outbox import IN_FLIGHT, PENDING
        from gateway.store.tables import jobs

        soon = datetime.now(UTC) + timedelta(seconds=10)
        running = select(func.count()).where(or_(
            jobs.c.state == IN_FLIGHT,
            and_(jobs.c.state == PENDING, jobs.c.ready, jobs.c.next_attempt_at <= soon)))

        def settled() -> bool:
            with self.gateway.engine.connect() as conn:
                return conn.execute(running).scalar_one() == 0

        wait_for(settled, timeout, what="the jobs of earlier tests to finish")

    def mark_test_start(self) -> None:
        """Jobs queued from now on are this test's: an earlier test's jobs still retrying are not its business."""
        from sqlalchemy import func, select

        from gateway.store.tables import jobs

        with self.gateway.engine.connect() as conn:
            self._first_job_id = (conn.execute(select(func.max(jobs.c.id))).scalar() or 0) + 1

    def wait_idle(self, timeout: float = 60) -> None:
        """Until none of the jobs queued since the test began is pending or in flight."""
        from sqlalchemy import func, select

        from gateway.store.outbox import IN_FLIGHT, PENDING
        from gateway.store.tables import jobs

        unfinished = select(func.count()).where(jobs.c.state.in_((PENDING, IN_FLIGHT)),
                                                jobs.c.id >= getattr(self, "_first_job_id", 0))

        def idle() -> bool:
            with self.gateway.engine.connect() as conn:
                return conn.execute(unfinished).scalar_one() == 0

        wait_for(idle, timeout, what="no pending or in-flight jobs of this test")


def _pg_database(name: str) -> str:
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _pg_drop(name: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A migrated PostgreSQL database of the test's own: for what only PostgreSQL shows (its plans, its prepared
    statements), on tables a test fills to some size."""
    if not production_services_up():
        pytest.skip("PostgreSQL is not reachable (.ci/run requires it)")
    from gateway.store.database import make_engine, migrate

    name = f"gwplan_{uuid.uuid4().hex[:8]}"
    url = _pg_database(name)
    migrate(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    _pg_drop(name)


def _rabbit_cleanup(prefix: str) -> None:
    from kombu import Connection

    try:
        with Connection(AMQP_URL, connect_timeout=3) as conn:
            channel = conn.channel()
            for queue in ("national_portal", "payment", "notifications", "postal", "signatures", "archive"):
                channel.queue_delete(f"{prefix}.{queue}")
            channel.exchange_delete(prefix)
    except Exception:  # noqa: BLE001 - best effort: a leftover test queue harms nothing
        pass


class Stacks:
    """The session's stacks, one of each kind, made when a test first asks for it and kept to the end: a
    stack takes seconds to start (mocks, a worker, migrations), a test milliseconds to reset what it uses."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._made: dict[str, Stack] = {}
        self._cleanups: list[Callable[[], None]] = []

    def get(self, kind: str) -> Stack:
        if kind not in self._made:
            self._made[kind] = self._make(kind)
        return self._made[kind]

    def _make(self, kind: str) -> Stack:
        tmp = self._tmp.mktemp(kind)
        tag = f"gwtest_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        if kind == "embedded":
            s = Stack("embedded", tmp, f"sqlite:///{tmp / 'gateway.db'}",
                      {"GATEWAY_BROKER__URL": "filesystem://", "GATEWAY_BROKER__DATA_FOLDER": str(tmp / "broker"),
                       "GATEWAY_BROKER__QUEUE_PREFIX": tag})
        else:
            if not production_services_up():
                if REQUIRE:
                    pytest.fail("PostgreSQL or RabbitMQ unreachable and GATEWAY_TEST_REQUIRE_SERVICES=1")
                pytest.skip("PostgreSQL or RabbitMQ not reachable on 127.0.0.1")
            s = Stack("production", tmp, _pg_database(tag),
                      {"GATEWAY_BROKER__URL": AMQP_URL, "GATEWAY_BROKER__QUEUE_PREFIX": tag})
            self._cleanups += [lambda: _pg_drop(tag), lambda: _rabbit_cleanup(tag)]
        s.start_worker()
        return s

    def close(self) -> None:
        for s in self._made.values():
            s.close()
        for cleanup in self._cleanups:
            cleanup()


@pytest.fixture(scope="session")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stacks]:
    pool = Stacks(tmp_path_factory)
    yield pool
    pool.close()


@pytest.fixture(params=["embedded", "production"])
def stack(request: pytest.FixtureRequest, stacks: Stacks) -> Stack:
    """Each integration test runs on both kinds of stack; the stacks themselves live for the session."""
    return stacks.get(request.param)


@pytest.fixture
def engine(stack: Stack, tmp_path: Path) -> Iterator[Any]:
    """A migrated database of the test's own, on the stack's kind of server, that no worker touches."""
    from gateway.store.database import make_engine, migrate

    if stack.name == "production":
        name = f"gwown_{uuid.uuid4().hex[:8]}"
        url = _pg_database(name)
    else:
        url = f"sqlite:///{tmp_path / 'own.db'}"
    migrate(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    if stack.name == "production":
        _pg_drop(name)


@pytest.fixture
def gw(stack: Stack) -> Iterator[Stack]:
    """The stack, with a healthy mock and one running worker at the start of each test."""
    stack.portal.clear_faults()
    for partner in (stack.viettel, stack.vnpt, stack.mail, stack.post_office):
        partner.clear_faults()
    if not any(p.poll() is None for p in stack.workers):
        stack.stop_workers()
        stack.start_worker()
    stack.settle()
    stack.mark_test_start()
    yield stack
    stack.portal.clear_faults()


_counter = iter(range(1, 10**6))


def new_code(day: str = "240725") -> str:
    """A fresh dossier code per call: a random unit code keeps test runs and stacks apart."""
    unit = f"000.{uuid.uuid4().int % 100:02d}.{uuid.uuid4().int % 100:02d}.H{uuid.uuid4().int % 100:02d}"
    return f"{unit}-{day}-{next(_counter) % 10000:04d}"


def dossier_body(code: str | None = None, **overrides: Any) -> dict[str, Any]:
    body = sample_dossier(code or new_code())
    body.update(overrides)
    return body
