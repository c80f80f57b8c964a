"""Prometheus metrics at /metrics (ops role), from two sources:

- what this API process counted (requests by route and status, their latency, jobs it ran at once); under
  `gateway serve` with several processes they share a directory (PROMETHEUS_MULTIPROC_DIR, set by the
  serve command) and any process answers for all of them;
- what the database says at scrape time, which every process agrees on: jobs by queue and state, queue
  depth, dead letters, SLA breaches, payments, notifications and deliveries by state, drift with the
  national portal and how much of it was read back.

Workers run in other processes, on other machines: each exposes its own job counters with
`gateway worker --metrics-port`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

from flask import Blueprint, Response, current_app
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from gateway.domain.portal_drift import Kind
from gateway.services.ops import clock, state_counts
from gateway.services.ops.jobs import DEAD, UNFINISHED

from .auth import require

bp = Blueprint("metrics", __name__)

# (metric, help, counts): rows counted by state (state_counts.BY_STATE), one gauge each.
BY_STATE = [
    ("gateway_payments", "Payments by provider and state", "payments"),
    ("gateway_notifications", "Notifications by channel and state", "notifications"),
    ("gateway_deliveries", "Public-post deliveries by state", "deliveries"),
]


def _gauge(name: str, text: str, labels: list[str], rows: list[tuple[list[str], float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


class StoreCollector(Collector):
    def __init__(self, engine: Engine, portal_window: timedelta = timedelta(hours=24)) -> None:
        self.engine = engine
        self.portal_window = portal_window

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = state_counts.read(self.engine, now=clock.now(), portal_window=self.portal_window)
        jobs, to_seal = counts.jobs, counts.seconds_to_seal
        yield _gauge("gateway_sla_breaches", "New dossiers past their 8-working-hour acknowledgment deadline",
                     [], [([], counts.sla_breaches)])
        yield _gauge("gateway_jobs", "Jobs by queue and state", ["queue", "state"],
                     [([r["queue"], r["state"]], r["count"]) for r in jobs])
        depth: dict[str, int] = {}
        dead: dict[str, int] = {}
        for r in jobs:
            depth[r["queue"]] = depth.get(r["queue"], 0) + (r["count"] if r["state"] in UNFINISHED else 0)
            dead[r["queue"]] = dead.get(r["queue"], 0) + (r["count"] if r["state"] == DEAD else 0)
        yield _gauge("gateway_queue_depth", "Jobs waiting or being delivered, by queue (adapter)", ["queue"],
                     [([q], n) for q, n in sorted(depth.items())])
        yield _gauge("gateway_dead_letters", "Dead letters waiting for an operator, by queue", ["queue"],
                     [([q], n) for q, n in sorted(dead.items())])
        yield _gauge("gateway_archive_packages", "Archive packages by state (pending, sealed, failed = waiting)",
                     ["state"], [([state], n) for state, n in sorted(counts.archive_packages.items())])
        # Median and worst of the newest 1000 sealed packages: final status to sealed, in seconds.
        yield _gauge("gateway_archive_seconds_to_seal", "Seconds from final status to sealed (newest 1000)",
                     ["quantile"], [(["0.5"], to_seal[len(to_seal) // 2]), (["1"], to_seal[-1])] if to_seal else [])
        yield _gauge("gateway_archive_sealing_lag_seconds", "Seconds the oldest finished dossier not yet sealed has "
                     "waited (0: none waits)", [], [([], counts.sealing_lag)])
        for name, text, counted in BY_STATE:
            columns = state_counts.BY_STATE[counted][1]
            yield _gauge(name, text, list(columns),
                         [([str(r[c]) for c in columns], r["count"]) for r in counts.by_state[counted]])
        yield from _portal(counts)


def _portal(counts: state_counts.Counts) -> Iterator[GaugeMetricFamily]:
    """Drift with the national portal: open findings by kind (every kind, 0 included, so a rule can watch it),
    and the read-back coverage."""
    by_kind = {kind.value: 0 for kind in Kind}
    operator = dict(by_kind)
    for (kind, state), n in counts.portal_drift.items():
        by_kind[kind] = by_kind.get(kind, 0) + n
        operator[kind] = operator.get(kind, 0) + (n if state == "operator" else 0)
    yield _gauge("gateway_portal_drift", "Dossiers whose national-portal record differs (open findings), by kind",
                 ["kind"], [([k], n) for k, n in sorted(by_kind.items())])
    yield _gauge("gateway_portal_drift_waiting_operator", "Open drift findings waiting for an operator, by kind",
                 ["kind"], [([k], n) for k, n in sorted(operator.items())])
    seen = counts.portal_coverage
    yield _gauge("gateway_portal_checks_due", "Dossiers in scope of the national-portal read-back", [],
                 [([], seen["due"])])
    yield _gauge("gateway_portal_checked_in_window", "Of those, read back within the window", [],
                 [([], seen["checked_in_window"])])
    yield _gauge("gateway_portal_check_coverage", "Checked in the window / due (1 when none is due)", [],
                 [([], seen["checked_in_window"] / seen["due"] if seen["due"] else 1.0)])
    yield _gauge("gateway_portal_oldest_check_age_seconds", "Age of the oldest look (or wait for a first one)", [],
                 [([], seen["oldest_check_age_seconds"])])


def process_registry() -> CollectorRegistry:
    """This process's counters, or every API process's when they share a multiprocess directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _store_registry() -> CollectorRegistry:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if "METRICS" not in app.config:  # one registry per app: tests build many apps in one process
        registry = CollectorRegistry(auto_describe=False)
        gateway = app.config["GATEWAY"]
        window = timedelta(hours=gateway.settings.national_portal.reconcile.window_hours)
        registry.register(StoreCollector(gateway.engine, window))
        app.config["METRICS"] = registry
    return app.config["METRICS"]


@bp.get("/metrics")
@require("ops")
def metrics() -> ResponseReturnValue:
    """Prometheus text format.

    Every API process's counters and what the database says at scrape time; each metric and what to watch
    for: `docs/operations.md#metrics`.
    """
    return Response(generate_latest(process_registry()) + generate_latest(_store_registry()),
                    mimetype=CONTENT_TYPE_LATEST)
