"""Requests by route, method and status, and their latency, counted by each API process; the database
statements each route sends are counted under its name (request_context.work, store/db_metrics.py)."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from prometheus_client import Counter, Histogram

from gateway import request_context

REQUESTS = Counter("gateway_http_requests", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram("gateway_http_request_duration_seconds", "Time to answer a request", ["route", "method"],
                    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


def register(app: Flask) -> None:
    @app.before_request
    def _start_clock() -> None:
        g.started = time.perf_counter()
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        g.work_token = request_context.work.set(f"api {request.method} {route}")

    @app.teardown_request
    def _forget_work(_exc: BaseException | None) -> None:
        if (token := g.pop("work_token", None)) is not None:
            request_context.work.reset(token)

    @app.after_request
    def _count(response: Response) -> Response:
        # The route's pattern, not the path: /api/v1/dossiers/<code> is one series, not one per dossier.
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        if (started := g.get("started")) is not None:
            LATENCY.labels(route, request.method).observe(time.perf_counter() - started)
        return response
