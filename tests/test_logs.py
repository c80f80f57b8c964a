"""Logs: one line per record (JSON or text) with the request id, which follows a request into its jobs;
secrets, bearer tokens and citizen ID numbers never appear."""

from __future__ import annotations

import io
import json
import logging

import pytest
import requests

from gateway import log_format, request_context
from gateway.log_format import Redactor

from .conftest import dossier_body, wait_for

ID_NUMBER = "001190012345"  # the sample applicant's CCCD


@pytest.fixture
def json_log():
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    buffer = io.StringIO()
    log_format.configure("debug", "json", ["viettel-secret", "payment-secret"], stream=buffer)
    yield buffer
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved:
        root.addHandler(handler)
    root.setLevel(level)


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.mark.parametrize(("text", "masked"), [
    ("login with viettel-secret failed", "login with *** failed"),
    ("Authorization: Bearer dev-ops-key", "Authorization: Bearer ***"),
    ("applicant 001190012345 filed", "applicant *** filed"),
    ("old ID 012345678,", "old ID ***,"),
    ("phone 84912345678 amount 8000 code H31-240725-0001", "phone 84912345678 amount 8000 code H31-240725-0001"),
])
def test_what_is_masked_and_what_is_not(text, masked):
    assert Redactor(["viettel-secret"]).clean(text) == masked


def test_json_lines_carry_the_request_id_and_hide_secrets(json_log):
    log = logging.getLogger("gateway.test")
    token = request_context.request_id.set("req-42")
    try:
        log.warning("portal refused %s for %s", {"SoDinhDanh": ID_NUMBER}, "payment-secret")
        try:
            raise ValueError(f"checksum with payment-secret for {ID_NUMBER}")
        except ValueError:
            log.exception("callback failed")
    finally:
        request_context.request_id.reset(token)
    log.info("outside any request")
    first, second, third = lines(json_log)
    assert (first["level"], first["logger"], first["request_id"]) == ("WARNING", "gateway.test", "req-42")
    assert first["message"] == "portal refused {'SoDinhDanh': '***'} for ***"
    assert "ValueError: checksum with *** for ***" in second["exc_info"]
    assert third["request_id"] == "-"
    assert ID_NUMBER not in json_log.getvalue() and "payment-secret" not in json_log.getvalue()


def test_a_bad_log_call_does_not_fail_its_caller(json_log):
    """A format that does not match its arguments (ours or a library's) is logged as it came, still masked:
    the redacting filter runs outside the handler's own error handling, so raising there would turn a
    log line into a 500 or a failed batch of jobs."""
    logging.getLogger("gateway.test").warning("two %s %s", "payment-secret")
    (line,) = lines(json_log)
    assert line["message"] == "two %s %s ('***',)"


def test_a_request_id_follows_a_filing_into_its_jobs_and_logs(gw):
    api = gw.api_url
    code = dossier_body()["code"]
    r = requests.post(f"{api}/api/v1/dossiers", json=dossier_body(code), timeout=10,
                      headers={"Authorization": "Bearer dev-portal-key", "X-Request-Id": f"rq-{code}"})
    assert r.status_code == 201 and r.headers["X-Request-Id"] == f"rq-{code}"
    jobs = gw.wait_jobs(code)
    assert {j["request_id"] for j in jobs} == {f"rq-{code}"}
    logs = lambda: "".join(p.read_text() for p in gw.tmp.glob("worker-*.log"))  # noqa: E731
    # The national portal's batch line names it (a worker's other queues may log it first).
    wait_for(lambda: any(f"rq-{code}" in line and "national_portal" in line for line in logs().splitlines()),
             what="the national portal's batch logged with the request id")
    # A header that is not a sane token is replaced, not echoed.
    other = requests.get(f"{api}/healthz", headers={"X-Request-Id": "x" * 65}, timeout=5)
    assert len(other.headers["X-Request-Id"]) == 32
    assert ID_NUMBER not in logs() + (gw.tmp / "api.log").read_text()
