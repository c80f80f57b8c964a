"""What operators see of the drift and do about it: the findings, the coverage, accepting the portal's version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping

from gateway.config import PortalReconcileSettings
from gateway.domain.portal_drift import OPEN, State
from gateway.services.errors import Conflict, NotFound
from gateway.services.unit_of_work import Context
from gateway.store import audit, server_clock
from gateway.store import portal_drift as store


@dataclass(frozen=True)
class Overview:
    coverage: dict[str, Any]  # due, checked_in_window, oldest_check_age_seconds, ratio
    open: list[RowMapping]  # repairing, or waiting for an operator
    closed: list[RowMapping]  # the newest repaired, accepted or cleared
    unreadable: list[RowMapping]  # dossiers whose last answer was not trusted
    open_by_kind: dict[tuple[str, str], int]  # (kind, state): findings


def coverage(ctx: Context, settings: PortalReconcileSettings, *, now: datetime | None = None) -> dict[str, Any]:
    """Dossiers in scope, how many were read back within the window (and their share), the oldest look's age."""
    with ctx.engine.connect() as conn:
        seen = store.coverage(conn, now=now or server_clock.now(), window=timedelta(hours=settings.window_hours))
    return {**seen, "ratio": seen["checked_in_window"] / seen["due"] if seen["due"] else 1.0}


def overview(ctx: Context, settings: PortalReconcileSettings, *, closed: int = 100) -> Overview:
    now = server_clock.now()
    with ctx.engine.connect() as conn:
        return Overview(coverage(ctx, settings, now=now), store.open_findings(conn),
                        store.closed_findings(conn, closed), store.unreadable(conn), store.open_by_kind(conn))


def open_by_kind(ctx: Context) -> dict[tuple[str, str], int]:
    with ctx.engine.connect() as conn:
        return store.open_by_kind(conn)


def in_scope(ctx: Context, *, since: datetime | None = None) -> list[str]:
    with ctx.engine.connect() as conn:
        return store.in_scope_codes(conn, since=since)


def of_dossier(ctx: Context, dossier_id: int) -> list[RowMapping]:
    with ctx.engine.connect() as conn:
        return store.findings_of(conn, dossier_id)


def get(ctx: Context, finding_id: int) -> RowMapping:
    with ctx.engine.connect() as conn:
        finding = store.finding(conn, finding_id)
    if finding is None:
        raise NotFound(f"no portal finding {finding_id}")
    return finding


def accept(ctx: Context, finding_id: int, *, actor: str) -> RowMapping:
    """The operator takes the portal's version: the finding's differences are left out of later looks at this
    dossier (the gateway's own record is not changed: the one-stop software decides the dossier's steps)."""
    now = server_clock.now()
    with ctx.engine.begin() as conn:
        finding = store.finding(conn, finding_id)
        if finding is None:
            raise NotFound(f"no portal finding {finding_id}")
        if State(finding["state"]) not in OPEN:
            raise Conflict(f"portal finding {finding_id} is {finding['state']} already", state=finding["state"])
        signatures = [d["signature"] for d in finding["differences"]]
        store.accept(conn, finding["dossier_id"], signatures)
        store.change_finding(conn, finding_id, expected=frozenset(s.value for s in OPEN), state=State.ACCEPTED.value,
                             resolved_at=now, resolved_by=actor)
        audit.record(conn, actor=actor, action="portal.drift_accepted", subject=finding["dossier_code"], at=now,
                     detail={"finding": finding_id, "kind": finding["kind"],
                             "fields": sorted({d["field"] for d in finding["differences"]})})
        return store.finding(conn, finding_id)
