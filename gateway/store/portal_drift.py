"""Reconciliation with the national portal: each dossier's turn to be read back, what a look found, the budget."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, and_, exists, func, insert, select, update

from gateway.domain.portal_drift import OPEN

from .one_trip import OneTrip
from .sql_forms import fixed_list
from .tables import dossiers, portal_checks, portal_findings, portal_reconcile

BUDGET_ROW = 1
OPEN_STATES = sorted(state.value for state in OPEN)


def _enrolment(dossier_id: int, code: str, *, now: datetime, first_check_at: datetime) -> dict[str, Any]:
    return {"dossier_id": dossier_id, "dossier_code": code, "enrolled_at": now, "next_check_at": first_check_at,
            "checks": 0}


def enrol(conn: Connection, dossier_id: int, code: str, *, now: datetime, first_check_at: datetime) -> None:
    conn.execute(insert(portal_checks).values(**_enrolment(dossier_id, code, now=now, first_check_at=first_check_at)))


def add_enrolments(trip: OneTrip, new: list[tuple[int, str]], *, now: datetime, first_check_at: datetime) -> None:
    """Enrol new dossiers (id, code) for the read-back, in a one-trip write (a filing's)."""
    trip.insert(portal_checks, [_enrolment(dossier_id, code, now=now, first_check_at=first_check_at)
                                for dossier_id, code in new])


def check_of(conn: Connection, dossier_id: int) -> RowMapping | None:
    return conn.execute(select(portal_checks).where(portal_checks.c.dossier_id == dossier_id)).mappings().first()


def earliest_due(conn: Connection) -> datetime | None:
    """When the next look is due (one entry of the due index): the scan does nothing before then."""
    return conn.execute(select(portal_checks.c.next_check_at).where(portal_checks.c.next_check_at.is_not(None))
                        .order_by(portal_checks.c.next_check_at).limit(1)).scalar()


def _check_due(now: datetime) -> ColumnElement[bool]:
    return and_(portal_checks.c.next_check_at.is_not(None), portal_checks.c.next_check_at <= now)  # its due index


def checks_pending(now: datetime) -> ColumnElement[bool]:
    """Whether any dossier's look is due: the sweeper asks before the scan runs."""
    return exists().where(_check_due(now))


def due(conn: Connection, *, now: datetime, limit: int) -> list[RowMapping]:
    """Dossiers whose look is due, the longest waiting first, with what decides whether they are in scope.
    Workers share them (SKIP LOCKED)."""
    query = (select(portal_checks.c.dossier_id, portal_checks.c.dossier_code, dossiers.c.status,
                    dossiers.c.updated_at)
             .join(dossiers, dossiers.c.id == portal_checks.c.dossier_id)
             .where(_check_due(now))
             .order_by(portal_checks.c.next_check_at).limit(limit))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=portal_checks, skip_locked=True)
    return list(conn.execute(query).mappings())


def schedule(conn: Connection, dossier_ids: list[int], at: datetime | None) -> None:
    """Set the next look of these dossiers (None: no more, they are out of scope)."""
    if dossier_ids:
        conn.execute(update(portal_checks).where(portal_checks.c.dossier_id.in_(dossier_ids))
                     .values(next_check_at=at))


def record_check(conn: Connection, dossier_id: int, *, now: datetime, outcome: str, next_at: datetime | None,
                 detail: str | None = None, answered: bool = True) -> None:
    """A look's outcome; `answered`: the portal's answer was read (the look counts for the coverage)."""
    values: dict[str, Any] = {"outcome": outcome, "detail": detail, "next_check_at": next_at,
                              "checks": portal_checks.c.checks + 1}
    if answered:
        values["checked_at"] = now
    conn.execute(update(portal_checks).where(portal_checks.c.dossier_id == dossier_id).values(**values))


def accept(conn: Connection, dossier_id: int, signatures: list[str]) -> None:
    row = check_of(conn, dossier_id)
    if row is not None:
        taken = sorted(set(row["accepted"] or []) | set(signatures))
        conn.execute(update(portal_checks).where(portal_checks.c.dossier_id == dossier_id).values(accepted=taken))


# Budget -----------------------------------------------------------------------------------------------------

def take_budget(conn: Connection, *, now: datetime, rate: float, cap: int, wanted: int) -> int:
    """Look-ups this scan may queue: tokens refill at `rate` a second up to `cap`, and all workers draw from the
    same row (locked for the transaction). Spends and returns at most `wanted`."""
    query = select(portal_reconcile).where(portal_reconcile.c.id == BUDGET_ROW)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:  # a database older than its migration's row: start empty
        conn.execute(insert(portal_reconcile).values(id=BUDGET_ROW, tokens=0.0, refilled_at=now))
        row = {"tokens": 0.0, "refilled_at": now}
    elapsed = max(0.0, (now - row["refilled_at"]).total_seconds())
    tokens = min(float(cap), row["tokens"] + rate * elapsed)
    taken = min(int(tokens), wanted)
    conn.execute(update(portal_reconcile).where(portal_reconcile.c.id == BUDGET_ROW)
                 .values(tokens=tokens - taken, refilled_at=now))
    return taken


# Coverage -----------------------------------------------------------------------------------------------------

def coverage(conn: Connection, *, now: datetime, window: timedelta) -> dict[str, Any]:
    """Dossiers in scope, how many were read back within the window, and the oldest look (or wait for a first
    one): each from an index of the in-scope rows."""
    in_scope = portal_checks.c.next_check_at.is_not(None)
    due = conn.execute(select(func.count()).select_from(portal_checks).where(in_scope)).scalar_one()
    recent = conn.execute(select(func.count()).select_from(portal_checks).where(
        in_scope, portal_checks.c.checked_at >= now - window)).scalar_one()
    oldest_check = conn.execute(select(func.min(portal_checks.c.checked_at)).where(in_scope)).scalar()
    oldest_wait = conn.execute(select(func.min(portal_checks.c.enrolled_at)).where(
        in_scope, portal_checks.c.checked_at.is_(None))).scalar()
    oldest = min((t for t in (oldest_check, oldest_wait) if t is not None), default=None)
    return {"due": due, "checked_in_window": recent,
            "oldest_check_age_seconds": (now - oldest).total_seconds() if oldest is not None else 0.0}


def in_scope_codes(conn: Connection, *, since: datetime | None = None) -> list[str]:
    """The codes of the dossiers in scope (changed since `since`), in filing order: what `gateway reconcile portal`
    looks at."""
    query = (select(portal_checks.c.dossier_code).join(dossiers, dossiers.c.id == portal_checks.c.dossier_id)
             .where(portal_checks.c.next_check_at.is_not(None)).order_by(portal_checks.c.dossier_id))
    if since is not None:
        query = query.where(dossiers.c.updated_at >= since)
    return list(conn.execute(query).scalars())


def unreadable(conn: Connection, limit: int = 50) -> list[RowMapping]:
    return list(conn.execute(select(portal_checks).where(portal_checks.c.outcome == "unreadable")
                             .order_by(portal_checks.c.dossier_id).limit(limit)).mappings())


# Findings -----------------------------------------------------------------------------------------------------

def open_finding(conn: Connection, dossier_id: int) -> RowMapping | None:
    return conn.execute(select(portal_findings).where(portal_findings.c.dossier_id == dossier_id,
                                                      portal_findings.c.state.in_(fixed_list(OPEN_STATES)))
                        ).mappings().first()


def finding(conn: Connection, finding_id: int) -> RowMapping | None:
    return conn.execute(select(portal_findings).where(portal_findings.c.id == finding_id)).mappings().first()


def add_finding(conn: Connection, values: dict[str, Any]) -> int:
    return conn.execute(insert(portal_findings).values(**values).returning(portal_findings.c.id)).scalar_one()


def change_finding(conn: Connection, finding_id: int, *, expected: frozenset[str] | None = None,
                   **values: Any) -> bool:
    query = update(portal_findings).where(portal_findings.c.id == finding_id)
    if expected is not None:
        query = query.where(portal_findings.c.state.in_(sorted(expected)))
    return conn.execute(query.values(**values)).rowcount == 1


def open_findings(conn: Connection, limit: int = 500) -> list[RowMapping]:
    return list(conn.execute(select(portal_findings).where(portal_findings.c.state.in_(fixed_list(OPEN_STATES)))
                             .order_by(portal_findings.c.id).limit(limit)).mappings())


def closed_findings(conn: Connection, limit: int = 100) -> list[RowMapping]:
    return list(conn.execute(select(portal_findings).where(portal_findings.c.state.not_in(OPEN_STATES))
                             .order_by(portal_findings.c.id.desc()).limit(limit)).mappings())


def findings_of(conn: Connection, dossier_id: int) -> list[RowMapping]:
    return list(conn.execute(select(portal_findings).where(portal_findings.c.dossier_id == dossier_id)
                             .order_by(portal_findings.c.id)).mappings())


def open_by_kind(conn: Connection) -> dict[tuple[str, str], int]:
    rows = conn.execute(select(portal_findings.c.kind, portal_findings.c.state, func.count())
                        .where(portal_findings.c.state.in_(fixed_list(OPEN_STATES)))
                        .group_by(portal_findings.c.kind, portal_findings.c.state))
    return {(kind, state): n for kind, state, n in rows}
