"""/metrics: requests by route and status with latency, jobs by adapter and outcome, queue depth, dead
letters, payments, notifications and deliveries by state; one answer for all API processes; workers'
own counters on --metrics-port."""

from __future__ import annotations

import re

import requests

from .conftest import dossier_body, free_port, wait_for

OPS = {"Authorization": "Bearer dev-ops-key"}


def value(text: str, name: str, **labels: str) -> float:
    """The sample `name{labels...}` (labels in any order; others allowed), 0 when absent."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def scrape(gw) -> str:
    r = gw.client.get("/metrics", headers=OPS)
    assert r.status_code == 200 and r.mimetype == "text/plain"
    return r.get_data(as_text=True)


def test_requests_are_counted_by_route_and_status_with_latency(gw):
    before = scrape(gw)
    code = gw.file(dossier_body())["code"]
    gw.get(f"/api/v1/dossiers/{code}")
    gw.get("/api/v1/dossiers/H31-000000-0000")
    gw.client.get("/api/v1/dossiers/x")  # no key
    gw.client.get("/no/such/page")
    after = scrape(gw)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("gateway_http_requests_total", route="/api/v1/dossiers", method="POST", status="201") == 1
    assert delta("gateway_http_requests_total", route="/api/v1/dossiers/<code>", method="GET", status="200") == 1
    assert delta("gateway_http_requests_total", route="/api/v1/dossiers/<code>", method="GET", status="404") == 1
    assert delta("gateway_http_requests_total", route="/api/v1/dossiers/<code>", method="GET", status="401") == 1
    assert delta("gateway_http_requests_total", route="unmatched", status="404") == 1
    assert delta("gateway_http_request_duration_seconds_count", route="/api/v1/dossiers/<code>", method="GET") == 3
    assert value(after, "gateway_http_request_duration_seconds_bucket", route="/api/v1/dossiers", le="+Inf") >= 1


def test_the_store_gauges_agree_with_the_ops_view(gw):
    code = gw.file(dossier_body())["code"]
    gw.wait_jobs(code)

    def agreeing() -> tuple[str, list[dict]] | None:
        """A scrape and /ops/jobs that say the same (jobs of earlier tests may finish between two reads)."""
        text = scrape(gw)
        counts = gw.client.get("/ops/jobs", headers=OPS).get_json()["counts"]
        same = all(value(text, "gateway_jobs", queue=r["queue"], state=r["state"]) == r["count"] for r in counts)
        return (text, counts) if same else None

    text, counts = wait_for(agreeing)
    dead = sum(r["count"] for r in counts if r["queue"] == "national_portal" and r["state"] == "dead")
    assert value(text, "gateway_dead_letters", queue="national_portal") == dead
    waiting = sum(r["count"] for r in counts if r["queue"] == "notifications" and r["state"] in ("pending",
                                                                                                   "in_flight"))
    assert value(text, "gateway_queue_depth", queue="notifications") == waiting
    assert value(text, "gateway_notifications", channel="sms") >= 1
    assert "gateway_payments" in text and "gateway_deliveries" in text and "gateway_sla_breaches" in text


def test_every_api_process_answers_for_all(gw):
    api = gw.api_url  # gunicorn with two processes sharing their counters' directory
    route = dict(route="/api/v1/lookup", method="GET", status="400")

    def total() -> float:
        return value(requests.get(f"{api}/metrics", headers=OPS, timeout=5).text, "gateway_http_requests_total",
                     **route)

    before = total()
    for _ in range(20):  # a new connection each: they spread over both processes
        assert requests.get(f"{api}/api/v1/lookup", headers={"Authorization": "Bearer dev-portal-key"},
                            timeout=5).status_code == 400
    assert [total() - before for _ in range(4)] == [20.0] * 4


def test_a_worker_serves_its_job_counters(gw):
    gw.stop_workers()
    port = free_port()
    gw.start_worker("--metrics-port", str(port))
    try:
        code = gw.file(dossier_body())["code"]
        gw.wait_jobs(code)

        def counted() -> float:
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except requests.RequestException:
                return 0.0
            return value(text, "gateway_jobs_processed_total", queue="national_portal",
                         kind="national_portal.sync_dossier", outcome="done")

        assert wait_for(counted) >= 1
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        assert value(text, "gateway_job_batch_duration_seconds_count", queue="national_portal") >= 1
    finally:
        gw.stop_workers()
        gw.start_worker()


def test_metrics_need_the_ops_role(gw):
    assert gw.client.get("/metrics").status_code == 401
    assert gw.client.get("/metrics", headers={"Authorization": "Bearer dev-one-stop-key"}).status_code == 403
