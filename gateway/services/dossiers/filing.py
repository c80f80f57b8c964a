"""Filing dossiers and reading them back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from gateway.adapters import national_portal as np
from gateway.domain.codes import Status
from gateway.domain.dossier import DossierIn
from gateway.domain.notifications import STATUS_TEMPLATES
from gateway.services.dossiers.signatures import attachment_jobs
from gateway.services.dossiers.steps import snapshot
from gateway.services.errors import Conflict, NotFound
from gateway.services.unit_of_work import Context
from gateway.store import archive, attachment_signatures, audit, dossiers, feed, outbox, portal_drift, server_clock
from gateway.store.one_trip import OneTrip


@dataclass(frozen=True)
class Filed:
    created: bool
    dossier: RowMapping | dict[str, Any]


def _same_or_conflict(conn: Connection, dossier: DossierIn, fingerprint: str) -> Filed | None:
    existing = dossiers.get(conn, dossier.code)
    if existing is None:
        return None
    if existing["fingerprint"] != fingerprint:
        raise Conflict(f"dossier {dossier.code} was already filed with a different body")
    return Filed(False, existing)


def file_dossier(ctx: Context, dossier: DossierIn, *, source: str, actor: str) -> Filed:
    """Store a new dossier (idempotent on its code) and mirror it to the national portal.

    Three statements on PostgreSQL: the code looked up, the dossier with its jobs, then its audit record, feed
    item, notifications (whose audit record names the job) and its enrolment for the national portal's read-back
    (which needs the dossier's id).
    """
    now = server_clock.now()
    fingerprint = dossier.fingerprint()
    data = dossier.model_dump(mode="json")
    try:
        with ctx.engine.begin() as conn:
            if (same := _same_or_conflict(conn, dossier, fingerprint)) is not None:
                return same
            row = {
                "code": dossier.code, "procedure_code": dossier.procedure_code,
                "procedure_name": dossier.procedure_name, "level": dossier.level, "channel": dossier.channel,
                "source": source, "status": int(Status.NEW), "applicant_name": dossier.applicant.full_name,
                "id_number": dossier.applicant.id_number, "fingerprint": fingerprint, "data": data,
                "received_at": dossier.submitted_at, "due_at": None, "last_seq": 0,
                "created_at": now, "updated_at": now,
                "ack_due_at": ctx.calendar.add_working_hours(dossier.submitted_at, ctx.acknowledge_within_hours),
            }
            first = OneTrip()
            filed = dossiers.add_dossier(first, row)
            sync = outbox.NewJob(np.QUEUE, np.SYNC_DOSSIER, dossier.code, {"dossier": snapshot(row), "updating": False})
            # Signature checks of its PDF attachments, one at a time per dossier. A new dossier's keys have nothing
            # queued before them.
            checks = attachment_jobs(dossier.code, data) if ctx.verify_attachments else []
            jobs = outbox.add_jobs(first, [(sync, True), *((check, n == 0) for n, check in enumerate(checks))],
                                   now=now, max_attempts=ctx.jobs.max_attempts, checked=False)
            first.run(conn)
            row["id"] = filed.returned[0]["id"]
            then = OneTrip()
            audit.add_records(then, [{"actor": actor, "action": "dossier.filed", "subject": dossier.code, "at": now,
                                      "detail": {"source": source, "fingerprint": fingerprint,
                                                 "jobs": [jobs.returned[0]["id"]]}}])
            feed.add_items(then, [{"type": "dossier.created", "code": dossier.code, "at": now,
                                   "data": {**data, "source": source, "status": int(Status.NEW)}}])
            told = ctx.notifier.add_to(then, ctx.notifier.for_applicant(
                row, STATUS_TEMPLATES[Status.NEW], cause=f"{dossier.code}:filed", origin="filing", now=now),
                max_attempts=ctx.jobs.max_attempts, now=now) if ctx.notifier is not None else None
            # Its turn to be read back at the national portal (services/portal_drift), once its sync is through.
            portal_drift.add_enrolments(then, [(row["id"], dossier.code)], now=now,
                                        first_check_at=now + ctx.first_portal_check)
            then.run(conn)
    except IntegrityError:
        # Someone filed the same code at the same moment; their row decides.
        with ctx.engine.begin() as conn:
            if (same := _same_or_conflict(conn, dossier, fingerprint)) is not None:
                return same
        raise
    ctx.publish_after_commit(outbox.to_publish(jobs) + (outbox.to_publish(told) if told is not None else []))
    return Filed(True, row)  # what we just stored: no need to read it back


def get_with_history(ctx: Context, code: str) -> tuple[RowMapping, list[RowMapping], list[RowMapping]]:
    """The dossier, its steps, and the signature verdicts of its attachments."""
    with ctx.engine.connect() as conn:
        dossier = dossiers.get(conn, code)
        if dossier is None:
            raise NotFound(f"no dossier {code}")
        return dossier, dossiers.history(conn, dossier["id"]), attachment_signatures.of_dossier(conn, dossier["id"])


def archive_state(ctx: Context, dossier_id: int) -> RowMapping | None:
    """The dossier's archive package row, if it reached a final status."""
    with ctx.engine.connect() as conn:
        return archive.of_dossiers(conn, [dossier_id]).get(dossier_id)


def lookup(ctx: Context, *, code: str | None = None, id_number: str | None = None) -> list[RowMapping]:
    """The citizen's lookup: the dossier with this code, or those filed under this ID number (newest first)."""
    with ctx.engine.connect() as conn:
        if code:
            return [row] if (row := dossiers.get(conn, code)) is not None else []
        return dossiers.by_id_number(conn, id_number) if id_number else []


def archive_package(ctx: Context, code: str) -> RowMapping | None:
    """The newest archive package of the dossier with this code, if it has one."""
    with ctx.engine.connect() as conn:
        return archive.get(conn, code)
