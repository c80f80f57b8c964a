"""Nothing accepted is lost, nothing is applied twice, steps stay in order: proven by breaking things."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from .conftest import (
    REQUIRE,
    Stack,
    _pg_database,
    _pg_drop,
    dossier_body,
    free_port,
    production_services_up,
    reachable,
    wait_for,
)
from .terminal import in_terminal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from _rabbitmq_node import SERVER as RABBITMQ_SERVER  # noqa: E402 - the multi-host harness's, shared
from _rabbitmq_node import RabbitMQNode  # noqa: E402

JOURNEY = [2, 4, 4, 9, 10]


def file_with_journey(gw, statuses=JOURNEY) -> str:
    code = gw.file(dossier_body())["code"]
    for n, status in enumerate(statuses):
        gw.step(code, status, note=f"Bước {n + 1}", officer="Trần Thị Bích")
    return code


def portal_steps(gw, code: str) -> list[tuple[int, str]]:
    state = gw.portal.dossier(code)
    return [(p["TrangThai"], p["NoiDungXuLy"]) for p in state["progress"]] if state else []


def expected_steps(statuses=JOURNEY) -> list[tuple[int, str]]:
    return [(s, f"Bước {n + 1}") for n, s in enumerate(statuses)]


def test_journey_reaches_the_national_portal_in_order(gw):
    code = file_with_journey(gw)
    # 2, 9, 10 also update the dossier record; 10 is final, so the dossier's archive package is built too.
    jobs = gw.wait_jobs(code, "done", count=1 + len(JOURNEY) + 3 + 1)
    assert [j["queue"] for j in jobs].count("archive") == 1
    assert portal_steps(gw, code) == expected_steps()
    state = gw.portal.dossier(code)
    assert state["creates"] == 1 and state["TrangThaiHoSo"] == 10
    assert state["NgayTra"] != ""  # status 10 set the return date on the record


def test_transient_failures_are_retried_and_order_kept(gw):
    gw.portal.faults("http_500", 1)
    gw.portal.faults("timeout", 1, seconds=3)
    gw.portal.faults("error_code", 1)
    code = file_with_journey(gw)
    jobs = gw.wait_jobs(code, "done", timeout=60)
    assert portal_steps(gw, code) == expected_steps()
    assert max(j["attempts"] for j in jobs) >= 2
    assert gw.portal.dossier(code)["creates"] == 1


def test_dropped_answers_do_not_duplicate_effects(gw):
    gw.portal.faults("drop", 3)  # the portal applies the call, then the answer is lost
    code = file_with_journey(gw)
    gw.wait_jobs(code, "done", timeout=60)
    assert portal_steps(gw, code) == expected_steps()
    state = gw.portal.dossier(code)
    assert state["creates"] == 1


def test_dead_letter_then_operator_retry(gw):
    gw.portal.faults("http_500", 1000)
    code = gw.file(dossier_body())["code"]
    gw.step(code, 2, note="Bước 1")
    dead = wait_for(lambda: [j for j in gw.jobs(code) if j["state"] == "dead"], 60, what="a dead letter")
    assert len(dead) == 1 and dead[0]["attempts"] == gw.settings.jobs.max_attempts
    listed = gw.get("/ops/dead-letters", key="dev-ops-key").get_json()["items"]
    entry = next(i for i in listed if i["id"] == dead[0]["id"])
    assert "HTTP 500" in entry["last_error"] and entry["kind"] == "national_portal.sync_dossier"
    # The steps behind it wait: order matters more than speed.
    assert all(j["state"] == "pending" for j in gw.jobs(code) if j["id"] != dead[0]["id"])
    assert gw.portal.dossier(code) is None

    gw.portal.clear_faults()
    r = gw.client.post(f"/ops/dead-letters/{dead[0]['id']}/retry", headers={"Authorization": "Bearer dev-ops-key"})
    assert r.status_code == 200 and r.get_json()["state"] == "pending"
    gw.wait_jobs(code, "done", count=3)
    assert portal_steps(gw, code) == expected_steps([2])
    again = gw.client.post(f"/ops/dead-letters/{dead[0]['id']}/retry", headers={"Authorization": "Bearer dev-ops-key"})
    assert again.status_code == 404


def test_dead_letters_from_the_cli(gw):
    gw.portal.faults("error_code", 1000)
    code = gw.file(dossier_body())["code"]
    gw.step(code, 2, note="Bước 1")
    wait_for(lambda: [j for j in gw.jobs(code) if j["state"] == "dead"], 60, what="a dead letter")
    listed = gw.gateway_cli("dead-letters", "list")
    assert listed.returncode == 0, listed.stderr
    dead = [j for j in json.loads(listed.stdout) if j["ordering_key"] == code]
    assert len(dead) == 1 and "error_code 99" in dead[0]["last_error"]

    # Discarding the record creation lets the steps behind it go ahead (they then fail: unknown dossier).
    gw.portal.clear_faults()
    out = gw.gateway_cli("dead-letters", "discard", str(dead[0]["id"]))
    assert out.returncode == 0, out.stderr
    jobs = wait_for(lambda: (j := gw.jobs(code)) and j[1]["state"] == "dead" and j, 60,
                    what="the next step to run after the discard")
    assert [j["state"] for j in jobs] == ["discarded", "dead", "pending"]  # the third waits behind the second
    assert "error_code 4" in jobs[1]["last_error"]  # a permanent error is not retried
    assert jobs[1]["attempts"] == 1

    missing = gw.gateway_cli("dead-letters", "retry", "999999999")
    assert missing.returncode != 0 and "no dead letter" in missing.stderr


def test_a_long_partner_outage_uses_up_no_attempts(gw):
    """The portal down for far longer than a job's attempts last: nothing becomes a dead letter, and the
    backlog goes through once it is back. A job failing alone still runs out (the previous test)."""
    codes = [gw.file(dossier_body())["code"] for _ in range(4)]
    for code in codes:
        gw.wait_jobs(code, "done")
    gw.portal.faults("http_500", 1_000_000)
    for code in codes:
        gw.step(code, 2, note="Bước 1")
    before = gw.portal.requests()[-1]["index"] + 1
    attempts = gw.jobs(codes[0])[0]["max_attempts"]

    def failed_calls(code: str, calls: list[dict]) -> int:
        return sum(1 for r in calls if r["service"] == "CapNhatTienDoHoSoMC" and code in str(r.get("body")))

    def each_job_outlived_its_attempts() -> bool:
        # Per job, not per minute: how fast calls come depends on the backoff's jitter, on how many jobs
        # share a batch call and on a busy machine, so a count within a set time flaked in CI.
        calls = gw.portal.requests(since=before)
        return all(failed_calls(code, calls) >= 3 * attempts for code in codes)

    # The timeout only bounds a hang; the condition is each job's own history.
    wait_for(each_job_outlived_its_attempts, 240, interval=0.2,
             what=f"every job's step call to fail {3 * attempts} times")
    assert not [j for code in codes for j in gw.jobs(code) if j["state"] == "dead"]
    gw.portal.clear_faults()
    for code in codes:
        gw.wait_jobs(code, "done", count=3, timeout=30)
        assert portal_steps(gw, code) == expected_steps([2])


def test_dead_letters_of_a_kind_retried_from_the_cli_with_a_progress_bar(gw):
    gw.portal.faults("error_code", 1000, code="2")  # refused for good: straight to the dead letters
    codes = [gw.file(dossier_body())["code"] for _ in range(2)]
    for code in codes:
        wait_for(lambda c=code: [j for j in gw.jobs(c) if j["state"] == "dead"], 60, what="a dead letter")
    gw.portal.clear_faults()
    # On a terminal the bar is drawn (on stderr, so that stdout stays for scripts).
    screen = in_terminal("dead-letters", "retry-all", "--queue", "national_portal", "--kind",
                         gw.jobs(codes[0])[0]["kind"], env=gw.env)
    text = screen.text
    assert screen.returncode == 0, text
    assert re.search(r"retry \d+ dead letters", text) and "#" in text and "100%" in text, text
    assert re.search(r"retry done for (\d+) of \1", text), text
    for code in codes:
        gw.wait_jobs(code, "done")


def test_worker_killed_mid_delivery(gw):
    code = gw.file(dossier_body())["code"]
    gw.wait_jobs(code, "done")
    gw.portal.faults("delay", 1, seconds=5, services=["CapNhatTienDoHoSoMC"])
    gw.step(code, 2, note="Bước 1")
    # The portal has applied the step and is holding its answer: kill the worker now.
    wait_for(lambda: [r for r in gw.portal.requests_for(code) if r["service"] == "CapNhatTienDoHoSoMC"], 20,
             what="the progress call to reach the portal")
    gw.stop_workers(signal.SIGKILL)
    assert [j["state"] for j in gw.jobs(code) if j["kind"] == "national_portal.progress"] == ["in_flight"]
    gw.start_worker()
    gw.wait_jobs(code, "done", count=3, timeout=60)
    calls = [r for r in gw.portal.requests_for(code) if r["service"] == "CapNhatTienDoHoSoMC"]
    assert len(calls) >= 2  # delivered again after the restart...
    assert portal_steps(gw, code) == expected_steps([2])  # ...with no second effect


def test_several_workers_keep_each_dossiers_order(gw):
    gw.start_worker()
    gw.start_worker()
    # Fewer failing calls than attempts: a batch shares its call's fate, so a job may meet every fault.
    gw.portal.faults("http_500", 2)
    gw.portal.faults("drop", 2)
    codes: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        code = file_with_journey(gw)
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for code in codes:
        gw.wait_jobs(code, "done", timeout=90)
        assert portal_steps(gw, code) == expected_steps(), code
        assert gw.portal.dossier(code)["creates"] == 1
    gw.stop_workers()


@pytest.fixture
def own_broker(tmp_path):
    """A production stack whose broker is a RabbitMQ node of the test's own, and that node: stopping it leaves the
    machine's broker, which every other test process's stacks use, running."""
    if not production_services_up() or not RABBITMQ_SERVER.exists():
        why = "PostgreSQL, RabbitMQ or rabbitmq-server's binary is missing"
        if REQUIRE:
            pytest.fail(why)
        pytest.skip(why)
    node = RabbitMQNode(tmp_path / "rabbitmq", f"gwtest{os.getpid()}", "127.0.0.1", free_port(), free_port())
    # A session of its own: the server script runs the Erlang VM as its child, which a kill of the script alone
    # would leave running.
    with open(tmp_path / "rabbitmq.log", "w") as log:
        server = subprocess.Popen(node.server_argv(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    tag = f"gwbroker_{uuid.uuid4().hex[:6]}"
    database = stack = None
    try:
        wait_for(lambda: server.poll() is None and reachable("127.0.0.1", node.port) or server.poll() is not None,
                 60, interval=0.2, what="the test's RabbitMQ node")
        assert server.poll() is None, (tmp_path / "rabbitmq.log").read_text()[-3000:]
        (tmp_path / "stack").mkdir()
        database = _pg_database(tag)
        stack = Stack("production", tmp_path / "stack", database,
                      {"GATEWAY_BROKER__URL": node.url, "GATEWAY_BROKER__QUEUE_PREFIX": tag})
        stack.start_worker()
        yield stack, node
    finally:
        if stack is not None:
            stack.close()
        if database is not None:
            _pg_drop(tag)
        with contextlib.suppress(subprocess.SubprocessError):
            node.ctl("stop", timeout=30)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)  # whatever of the node's session is left
        server.wait()


def test_broker_restart_loses_nothing(own_broker):
    gw, broker = own_broker
    gw.stop_workers()
    queued = [file_with_journey(gw, [2, 4]) for _ in range(5)]  # jobs wait in RabbitMQ: no worker runs
    broker.ctl("stop_app")
    try:
        # With the broker down the API still accepts; the jobs wait in the outbox for the sweeper.
        during = [file_with_journey(gw, [2, 4]) for _ in range(2)]
        ready = gw.client.get("/readyz")
        assert ready.status_code == 503 and ready.get_json()["checks"]["broker"] != "ok"
    finally:
        broker.ctl("start_app")
        broker.ctl("await_startup")
    gw.start_worker()
    for code in queued + during:
        gw.wait_jobs(code, "done", count=4, timeout=90)
        assert portal_steps(gw, code) == expected_steps([2, 4])


def test_lgsp_flavour_is_a_config_switch(gw):
    gw.stop_workers()
    gw.start_worker(GATEWAY_NATIONAL_PORTAL__FLAVOUR="lgsp")
    try:
        code = file_with_journey(gw, [2])
        gw.wait_jobs(code, "done", count=3)
        assert portal_steps(gw, code) == expected_steps([2])
        paths = {r["path"] for r in gw.portal.requests_for(code)}
        assert paths == {"/national-portal/lgsp/service"}
        assert all(r["headers"]["authorization"] for r in gw.portal.requests_for(code))
    finally:
        gw.stop_workers()
        gw.start_worker()
