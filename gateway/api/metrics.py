"""Prometheus metrics, read from the database at scrape time: what every API process agrees on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from gateway.store import dossiers, outbox

from .auth import require

bp = Blueprint("metrics", __name__)


class StoreCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.engine.connect() as conn:
            breaches = dossiers.count_sla_breaches(conn, now=datetime.now(UTC))
            jobs = outbox.counts(conn)
        sla = GaugeMetricFamily("gateway_sla_breaches", "New dossiers past their 8-working-hour acknowledgment "
                                                        "deadline")
        sla.add_metric([], breaches)
        yield sla
        by_state = GaugeMetricFamily("gateway_jobs", "Jobs by queue and state", labels=["queue", "state"])
        for row in jobs:
            by_state.add_metric([row["queue"], row["state"]], row["count"])
        yield by_state


def _registry() -> CollectorRegistry:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if "METRICS" not in app.config:  # one registry per app: tests build many apps in one process
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StoreCollector(app.config["GATEWAY"].engine))
        app.config["METRICS"] = registry
    return app.config["METRICS"]


@bp.get("/metrics")
@require("ops")
def metrics():  # noqa: ANN201
    """Prometheus text format."""
    return Response(generate_latest(_registry()), mimetype=CONTENT_TYPE_LATEST)
