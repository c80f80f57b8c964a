"""What the database says at a metrics scrape, which every API process agrees on: rows counted by state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping

from gateway.store import archive, dossiers, outbox, portal_drift, tallies
from gateway.store.tables import deliveries, notifications, payments

# name: (table, columns) of the rows counted by state; each row of a count has those columns and `count`.
BY_STATE = {
    "payments": (payments, ("provider", "state")),
    "notifications": (notifications, ("channel", "state")),
    "deliveries": (deliveries, ("state",)),
}


@dataclass(frozen=True)
class Counts:
    sla_breaches: int
    jobs: list[RowMapping]  # queue, state, count
    by_state: dict[str, list[RowMapping]]  # a name of BY_STATE: its columns and count
    archive_packages: dict[str, int]  # state: packages
    seconds_to_seal: list[float]  # of the newest sealed packages, smallest first
    sealing_lag: float  # seconds the longest-waiting finished dossier has waited for its package; 0: none waits
    portal_drift: dict[tuple[str, str], int]  # open drift findings by (kind, state)
    portal_coverage: dict[str, Any]  # due, checked_in_window, oldest_check_age_seconds


def read(engine: Engine, *, now: datetime, portal_window: timedelta = timedelta(hours=24)) -> Counts:
    with engine.connect() as conn:
        return Counts(sla_breaches=dossiers.count_sla_breaches(conn, now=now), jobs=outbox.counts(conn),
                      by_state={name: tallies.count_by(conn, table, *columns)
                                for name, (table, columns) in BY_STATE.items()},
                      archive_packages=archive.counts(conn), seconds_to_seal=sorted(archive.sealed_seconds(conn)),
                      sealing_lag=sealing_lag(conn, now),
                      portal_drift=portal_drift.open_by_kind(conn),
                      portal_coverage=portal_drift.coverage(conn, now=now, window=portal_window))


def sealing_lag(conn: Connection, now: datetime) -> float:
    """How long the oldest finished dossier not yet sealed has waited, in seconds (0 when none waits): packages
    wait for their batch, and during a peak for the other queues (docs/archive.md)."""
    oldest = archive.oldest_unsealed_final_at(conn)
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
