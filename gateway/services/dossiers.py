"""Filing dossiers and recording their processing steps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from gateway.adapters import national_portal as np
from gateway.domain.codes import Status
from gateway.domain.dossier import DossierIn, EventIn
from gateway.domain.status_machine import CHANGES_DOSSIER_RECORD, IllegalTransition, next_status
from gateway.store import audit, dossiers, feed, outbox

from .errors import Conflict, NotFound
from .unit_of_work import Context


@dataclass(frozen=True)
class Filed:
    created: bool
    dossier: RowMapping


@dataclass(frozen=True)
class Recorded:
    created: bool
    event: RowMapping | dict[str, Any]


def _snapshot(row: RowMapping | dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The dossier as the national portal should see it now: filed body plus its current state."""
    due = changes.pop("due_at", None) or row["due_at"]
    snap = {**row["data"], "status": row["status"], "due_at": due.isoformat() if due else None}
    snap.update(changes)
    return snap


def _same_or_conflict(conn: Connection, dossier: DossierIn, fingerprint: str) -> Filed | None:
    existing = dossiers.get(conn, dossier.code)
    if existing is None:
        return None
    if existing["fingerprint"] != fingerprint:
        raise Conflict(f"dossier {dossier.code} was already filed with a different body")
    return Filed(False, existing)


def file_dossier(ctx: Context, dossier: DossierIn, *, source: str, actor: str) -> Filed:
    """Store a new dossier (idempotent on its code) and mirror it to the national portal."""
    now = datetime.now(UTC)
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
            }
            row["id"] = dossiers.insert_dossier(conn, row)
            job, _ = outbox.enqueue(conn, outbox.NewJob(np.QUEUE, np.SYNC_DOSSIER, dossier.code,
                                                        {"dossier": _snapshot(row), "updating": False}),
                                    now=now, max_attempts=ctx.jobs.max_attempts)
            audit.record(conn, actor=actor, action="dossier.filed", subject=dossier.code, at=now,
                         detail={"source": source, "fingerprint": fingerprint, "jobs": [job]})
            feed.append(conn, type="dossier.created", code=dossier.code, at=now,
                        data={**data, "source": source, "status": int(Status.NEW)})
    except IntegrityError:
        # Someone filed the same code at the same moment; their row decides.
        with ctx.engine.begin() as conn:
            if (same := _same_or_conflict(conn, dossier, fingerprint)) is not None:
                return same
        raise
    ctx.publish_after_commit([(job, np.QUEUE)])
    with ctx.engine.connect() as conn:
        return Filed(True, dossiers.get(conn, dossier.code))


def record_event(ctx: Context, code: str, event: EventIn, *, actor: str) -> Recorded:
    """Apply one processing step the one-stop software reports, and mirror it to the national portal."""
    now = datetime.now(UTC)
    fingerprint = event.fingerprint()
    jobs: list[int] = []
    to_publish: list[int] = []
    with ctx.engine.begin() as conn:
        dossier = dossiers.get(conn, code, for_update=True)
        if dossier is None:
            raise NotFound(f"no dossier {code}")
        if event.event_id is not None and (seen := dossiers.find_event(conn, dossier["id"], event.event_id)):
            if seen["fingerprint"] != fingerprint:
                raise Conflict(f"event_id {event.event_id} was already used for a different step")
            return Recorded(False, seen)
        try:
            status = next_status(dossier["status"], event.status)
        except IllegalTransition as exc:
            raise Conflict(str(exc), current_status=int(exc.current),
                           allowed=[int(s) for s in exc.allowed]) from None
        seq = dossier["last_seq"] + 1
        at = event.at or now
        step = {**event.model_dump(mode="json"), "at": at.isoformat(), "seq": seq}
        values = {"dossier_id": dossier["id"], "seq": seq, "event_id": event.event_id,
                  "fingerprint": fingerprint, "from_status": dossier["status"], "status": int(status),
                  "at": at, "data": step, "created_at": now}
        dossiers.insert_event(conn, values)
        dossiers.set_status(conn, dossier["id"], status=int(status), seq=seq, now=now, due_at=event.due_at)
        new_jobs = [outbox.NewJob(np.QUEUE, np.PROGRESS, code, {"code": code, "event": step})]
        if status in CHANGES_DOSSIER_RECORD:
            snap = _snapshot(dossier, status=int(status), due_at=event.due_at,
                             returned_at=at.isoformat() if status is Status.RESULT_RETURNED else None)
            new_jobs.append(outbox.NewJob(np.QUEUE, np.SYNC_DOSSIER, code, {"dossier": snap, "updating": True}))
        for job in new_jobs:
            job_id, waiting = outbox.enqueue(conn, job, now=now, max_attempts=ctx.jobs.max_attempts)
            jobs.append(job_id)
            if not waiting:  # a job behind another is taken by whoever finishes that one
                to_publish.append(job_id)
        audit.record(conn, actor=actor, action="dossier.step", subject=code, at=now,
                     detail={"seq": seq, "from": dossier["status"], "to": int(status), "jobs": jobs})
    ctx.publish_after_commit([(job, np.QUEUE) for job in to_publish])
    return Recorded(True, values)


def get_with_history(ctx: Context, code: str) -> tuple[RowMapping, list[RowMapping]]:
    with ctx.engine.connect() as conn:
        dossier = dossiers.get(conn, code)
        if dossier is None:
            raise NotFound(f"no dossier {code}")
        return dossier, dossiers.history(conn, dossier["id"])
