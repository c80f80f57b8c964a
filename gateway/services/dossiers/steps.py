"""Recording processing steps the one-stop software reports: one step or a batch, in one transaction.

Each step is judged on its own (unknown dossier, reused event_id, illegal transition) against the
dossier as the earlier steps of the same batch left it; the accepted ones are written together with
their audit records and national-portal jobs. A batch costs one transaction and a few statements,
whatever its size, which is what lets a busy one-stop system report thousands of steps a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.adapters import archive as archiving
from gateway.adapters import national_portal as np
from gateway.domain.codes import Status
from gateway.domain.dossier import EventIn
from gateway.domain.notifications import STATUS_TEMPLATES
from gateway.domain.status_machine import CHANGES_DOSSIER_RECORD, IllegalTransition, is_final, next_status
from gateway.services.errors import Conflict, NotFound, ServiceError
from gateway.services.notifications import messages as notifications
from gateway.services.notifications.outgoing import Outgoing
from gateway.services.payments import orders as payments
from gateway.services.unit_of_work import Context
from gateway.store import archive, audit, dossiers, outbox, server_clock
from gateway.store.one_trip import OneTrip


@dataclass(frozen=True)
class Recorded:
    created: bool
    event: dict[str, Any]


def snapshot(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The dossier as the national portal should see it now: filed body plus its current state."""
    due = changes.pop("due_at", None) or row["due_at"]
    snap = {**row["data"], "status": row["status"], "due_at": due.isoformat() if due else None,
            "fees_paid_online": row.get("fees_paid_online_at") is not None}
    snap.update(changes)
    return snap


def record_events(ctx: Context, items: list[tuple[str, EventIn]], *, actor: str) -> list[Recorded | ServiceError]:
    """Apply steps in the order given; answer per step: Recorded (new or repeated) or the reason refused.

    On PostgreSQL a batch costs three statements and a commit, whatever its size: lock the dossiers; take
    their job keys' locks and read the steps already recorded under the batch's event ids; write everything
    (steps, dossiers, jobs, audit records, archive packages, notifications) in one statement (one_trip.py).
    """
    now = server_clock.now()
    results: list[Recorded | ServiceError] = []
    new_events: list[dict[str, Any]] = []
    new_jobs: list[tuple[outbox.NewJob, bool]] = []  # with: does it head its dossier's queue in this batch?
    audits: list[dict[str, Any]] = []
    finished: list[dict[str, Any]] = []  # dossiers reaching a final status: their archive packages are due
    telling = Outgoing()  # stored together at the end: one insert for the whole batch
    with ctx.engine.begin() as conn:
        locked = {r["code"]: dict(r) for r in dossiers.lock_many(conn, sorted({code for code, _ in items}))}
        by_id = {d["id"]: d for d in locked.values()}
        wanted = sorted({e.event_id for _, e in items if e.event_id})
        # The key locks make the jobs' readiness, decided in the write below, a state no worker changes first.
        seen = {(r["dossier_id"], r["event_id"]): dict(r) for r in dossiers.lock_keys_and_find_events(
            conn, outbox.key_names(np.QUEUE, list(locked)), list(by_id), wanted)}
        queued: set[str] = set()  # dossiers a step of this batch moved: their later jobs wait behind the first

        for code, event in items:
            dossier = locked.get(code)
            if dossier is None:
                results.append(NotFound(f"no dossier {code}"))
                continue
            fingerprint = event.fingerprint()
            if event.event_id is not None and (previous := seen.get((dossier["id"], event.event_id))):
                results.append(Recorded(False, previous) if previous["fingerprint"] == fingerprint else
                               Conflict(f"event_id {event.event_id} was already used for a different step"))
                continue
            try:
                status = next_status(dossier["status"], event.status)
            except IllegalTransition as exc:
                results.append(Conflict(str(exc), current_status=int(exc.current),
                                        allowed=[int(s) for s in exc.allowed]))
                continue
            seq = dossier["last_seq"] + 1
            at = event.at or now
            # Result documents go to the applicant by email, not into the step's record or the portal's job.
            step = {**event.model_dump(mode="json", exclude={"results"} | ({"fees"} if event.fees is None else set())),
                    "at": at.isoformat(), "seq": seq}
            if event.fees is not None:  # status 6 with fees: the gateway asks the provider for the payment
                try:
                    payment, init = payments.for_step(ctx, conn, dossier, event.fees, caller=actor, now=now)
                except ServiceError as exc:
                    results.append(exc)
                    continue
                step["payment_id"] = payment["reference"]
                if init is not None:
                    new_jobs.append((init, True))  # a new payment's key: nothing queued before it
            row = {"dossier_id": dossier["id"], "seq": seq, "event_id": event.event_id, "fingerprint": fingerprint,
                   "from_status": dossier["status"], "status": int(status), "at": at, "data": step,
                   "created_at": now}
            new_events.append(row)
            if event.event_id is not None:
                seen[(dossier["id"], event.event_id)] = row
            jobs = [outbox.NewJob(np.QUEUE, np.PROGRESS, code, {"code": code, "event": step})]
            if status in CHANGES_DOSSIER_RECORD:
                snap = snapshot({**dossier, "status": int(status)}, due_at=event.due_at,
                                returned_at=at.isoformat() if status is Status.RESULT_RETURNED else None)
                jobs.append(outbox.NewJob(np.QUEUE, np.SYNC_DOSSIER, code, {"dossier": snap, "updating": True}))
            for job in jobs:
                new_jobs.append((job, code not in queued))
                queued.add(code)
            if ctx.archive and is_final(status):  # a final status has no successor: one package a dossier
                finished.append({"dossier_id": dossier["id"], "dossier_code": code, "final_status": int(status),
                                 "final_at": now})  # when the gateway learned it: the clock of the seal
                new_jobs.append((outbox.NewJob(archiving.QUEUE, archiving.BUILD, code, {"code": code},
                                               delay=ctx.archive_batch_wait), True))  # the sweeper wakes it when due
            audits.append({"actor": actor, "action": "dossier.step", "subject": code, "at": now,
                           "detail": {"seq": seq, "from": dossier["status"], "to": int(status)}})
            dossier.update(status=int(status), last_seq=seq, due_at=event.due_at or dossier["due_at"])
            telling.add(_tell(ctx, dossier, event, step, now=now))
            results.append(Recorded(True, row))

        if new_events:
            trip = OneTrip()
            dossiers.add_events(trip, new_events)
            dossiers.add_progress(trip, [locked[c] for c in sorted(queued)], now=now)
            jobs_part = outbox.add_jobs(trip, new_jobs, now=now, max_attempts=ctx.jobs.max_attempts)
            audit.add_records(trip, audits)
            archive.add_pending(trip, finished, now=now)
            told = ctx.notifier.add_to(trip, telling, max_attempts=ctx.jobs.max_attempts, now=now) \
                if ctx.notifier is not None else None
            trip.run(conn)
    if new_events:
        ctx.publish_after_commit(outbox.to_publish(jobs_part) + (outbox.to_publish(told) if told else []))
    return results


def _tell(ctx: Context, dossier: dict[str, Any], event: EventIn, step: dict[str, Any], *,
          now: datetime) -> Outgoing:
    """Tell the applicant of the step. Payment required with fees waits: the payment's start tells, with the link."""
    template = STATUS_TEMPLATES.get(Status(dossier["status"]))
    if ctx.notifier is None or template is None or event.fees is not None:
        return Outgoing()
    online = dossier["data"].get("delivery_method") == "online"
    files = notifications.result_files(event.results) if event.results and online else None
    return ctx.notifier.for_applicant(dossier, template, cause=f"{dossier['code']}:{step['seq']}", origin="step",
                                      now=now, files=files,
                                      context={"event": {k: step.get(k) for k in notifications.NO_EVENT}})


def record_event(ctx: Context, code: str, event: EventIn, *, actor: str) -> Recorded:
    """One step; a refusal is raised."""
    result = record_events(ctx, [(code, event)], actor=actor)[0]
    if isinstance(result, ServiceError):
        raise result
    return result
