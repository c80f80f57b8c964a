"""Reading the national portal back and repairing what drifted.

A periodic scan (every worker's sweeper) queues a look-up job (`national_portal.check`) for each dossier whose
turn has come, the longest waiting first, within a budget all workers share (`rate_per_second`, `page_size`),
and none while the worker takes the portal to be down. A look-up is a job like any other partner call: retried
with backoff, counted toward the outage watch, a dead letter after `check_attempts`. It never holds a dossier's
own jobs up: it has a key of its own, and a dossier with jobs still on their way is looked at later.

The look compares the portal's record (TraCuuHoSo) with what the gateway delivered (its done jobs, the outbox's
own record of what was sent), names the drift (domain/portal_drift.py) and, in one transaction holding the
dossier's key: repairs what the gateway owns by queueing its records again on the dossier's key, in order (the
ordinary outbox: idempotent at the portal, behind anything queued before), and looks again soon; hands what is
not its own (ahead, foreign), and repairs that did not hold after `max_repairs` tries, to an operator. Findings
repaired or waiting for an operator are told to the one-stop software in its feed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping

from gateway.adapters import national_portal as np
from gateway.adapters.base import RetryableError, UnreadableAnswer
from gateway.adapters.national_portal.mapping import dossier_to_dvcqg, event_to_progress
from gateway.config import NationalPortalSettings
from gateway.domain.portal_drift import (
    KIND_LABELS_VI,
    STATE_LABELS_VI,
    Drift,
    Kind,
    Sent,
    State,
    compare,
    progress_key,
)
from gateway.domain.status_machine import is_final
from gateway.services.errors import NotFound
from gateway.services.progress import Track, untracked
from gateway.services.unit_of_work import Context
from gateway.store import audit, dossiers, feed, outbox, server_clock
from gateway.store import portal_drift as store

log = logging.getLogger(__name__)

ACTOR = "reconciliation"
REPAIRED, NEEDS_ATTENTION = "portal.repaired", "portal.needs_attention"  # feed item types


@dataclass(frozen=True)
class Plan:
    """What the gateway delivered of a dossier, and what a repair sends again."""

    sent: Sent
    snapshot: dict[str, Any]  # the newest dossier snapshot sent, with the newest status sent
    progress: list[dict[str, Any]]  # the progress jobs' payloads, each record once, in the order sent


@dataclass(frozen=True)
class Checked:
    code: str
    outcome: str  # clean, a drift kind, unreadable, busy (jobs on their way), held (by a dead letter), out_of_scope
    finding_id: int | None = None
    state: str | None = None  # the finding's state after this look
    repair_jobs: list[int] = field(default_factory=list)
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "outcome": self.outcome, "finding": self.finding_id, "state": self.state,
                "repair_jobs": self.repair_jobs, **({"detail": self.detail} if self.detail else {})}


class PortalDown(Exception):
    """Look-ups failed in a row for several dossiers: the portal is taken to be down, the run stops."""


def check_key(code: str, now: datetime) -> str:
    # A key of its own per look: a look-up never waits behind the dossier's jobs, nor behind a dead look-up.
    return f"portal-check:{code}@{now:%y%m%d%H%M%S%f}"


class PortalReconciler:
    def __init__(self, ctx: Context, client: Any, settings: NationalPortalSettings,
                 portal_down: Callable[[], bool] = lambda: False) -> None:
        self.ctx = ctx
        self.client = client  # has lookup(code) -> list of the portal's records (NationalPortalClient)
        self.settings = settings.reconcile
        self.unit = settings.unit_code
        self.portal_down = portal_down

    # The scan ----------------------------------------------------------------------------------------------

    def schedule(self) -> int:
        """Queue the look-ups whose turn has come, within the shared budget; nothing while the portal is down.
        When nothing is due this is one read of one index entry."""
        s = self.settings
        if not s.enabled or self.portal_down():
            return 0
        now = server_clock.now()
        with self.ctx.engine.connect() as conn:
            first = store.earliest_due(conn)
        if first is None or first > now:
            return 0
        ready: list[tuple[int, str]] = []
        with self.ctx.engine.begin() as conn:
            rows = store.due(conn, now=now, limit=s.page_size)
            gone = [r["dossier_id"] for r in rows if self._out_of_scope(r, now)]
            store.schedule(conn, gone, None)
            rows = [r for r in rows if r["dossier_id"] not in set(gone)]
            rows = rows[:store.take_budget(conn, now=now, rate=s.rate_per_second, cap=s.page_size,
                                           wanted=len(rows))]
            for row in rows:
                job = outbox.NewJob(np.QUEUE, np.CHECK, check_key(row["dossier_code"], now),
                                    {"code": row["dossier_code"]})
                job_id, waiting = outbox.enqueue(conn, job, now=now, max_attempts=s.check_attempts)
                ready += [] if waiting else [(job_id, np.QUEUE)]
            # Its next turn, unless the look sets an earlier one: a look-up that dies waits a window, not forever.
            store.schedule(conn, [r["dossier_id"] for r in rows], now + self.window)
        self.ctx.publish_after_commit(ready)
        if rows:
            log.info("portal reconciliation: %d look-up(s) queued", len(rows))
        return len(rows)

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.settings.window_hours)

    def _out_of_scope(self, dossier: Any, now: datetime) -> bool:
        """Finished more than `finished_days` ago: no longer read back."""
        return is_final(dossier["status"]) and dossier["updated_at"] < now - timedelta(days=self.settings.finished_days)

    def _next(self, dossier: Any, now: datetime) -> datetime | None:
        return None if self._out_of_scope(dossier, now) else now + self.window

    # One look ------------------------------------------------------------------------------------------------

    def check_job(self, payload: dict[str, Any]) -> None:
        """The `national_portal.check` job: a portal busy or down raises RetryableError (the job is retried)."""
        self.check(payload["code"])

    def check(self, code: str) -> Checked:
        now = server_clock.now()
        with self.ctx.engine.connect() as conn:
            dossier = dossiers.get(conn, code)
            if dossier is None:
                return Checked(code, "unknown", detail="no such dossier")
            row = store.check_of(conn, dossier["id"])
            keyed = outbox.of_key(conn, np.QUEUE, code)
            plan = _plan(conn, code)
        if row is None:  # filed before reconciliation was enrolled, by hand, say
            with self.ctx.engine.begin() as conn:
                store.enrol(conn, dossier["id"], code, now=now, first_check_at=now + self.window)
                row = store.check_of(conn, dossier["id"])
        if self._out_of_scope(dossier, now):
            self._record(dossier, now, "out_of_scope", None, answered=False)
            return Checked(code, "out_of_scope")
        unfinished = [j for j in keyed if j["state"] in outbox.UNFINISHED]
        if any(j["state"] == outbox.IN_FLIGHT or (j["state"] == outbox.PENDING and j["ready"]) for j in unfinished):
            # Its records are on their way: what the portal shows now says nothing of drift.
            self._record(dossier, now, "busy", now + timedelta(seconds=self.settings.busy_recheck_seconds),
                         answered=False)
            return Checked(code, "busy")
        if plan is None:  # nothing delivered yet: the dead letter holding its sync is the operators' to see
            self._record(dossier, now, "held", now + self.window, answered=False)
            return Checked(code, "held", detail="nothing delivered yet; a dead letter holds the dossier's jobs")
        try:
            records = self.client.lookup(code)
        except UnreadableAnswer as exc:
            detail = str(exc)[:1000]
            log.warning("portal reconciliation: %s: answer not trusted: %s", code, detail)
            with self.ctx.engine.begin() as conn:
                store.record_check(conn, dossier["id"], now=now, outcome="unreadable", next_at=now + self.window,
                                   detail=detail, answered=False)
                audit.record(conn, actor=ACTOR, action="portal.answer_unreadable", subject=code, at=now,
                             detail={"reason": detail})
            return Checked(code, "unreadable", detail=detail)
        drift = compare(plan.sent, records, unit=self.unit, accepted=row["accepted"] or [])
        publish: list[tuple[int, str]] = []
        with self.ctx.engine.begin() as conn:
            outbox.lock_keys(conn, np.QUEUE, [code])
            if [(j["id"], j["state"]) for j in outbox.of_key(conn, np.QUEUE, code)] != [
                    (j["id"], j["state"]) for j in keyed]:
                # Something was sent or queued since the portal was read: judge it again once it is through.
                store.record_check(conn, dossier["id"], now=now, outcome="busy", answered=False,
                                   next_at=now + timedelta(seconds=self.settings.busy_recheck_seconds))
                return Checked(code, "busy")
            checked, publish = self._decide(conn, dossier, drift, plan, unfinished, records, now)
        self.ctx.publish_after_commit(publish)
        return checked

    def _record(self, dossier: Any, now: datetime, outcome: str, next_at: datetime | None, *, answered: bool) -> None:
        with self.ctx.engine.begin() as conn:
            store.record_check(conn, dossier["id"], now=now, outcome=outcome, next_at=next_at, answered=answered)

    def _decide(self, conn: Connection, dossier: Any, drift: Drift, plan: Plan, held: list[RowMapping],
                records: list[dict[str, Any]], now: datetime) -> tuple[Checked, list[tuple[int, str]]]:
        code, s = dossier["code"], self.settings
        finding = store.open_finding(conn, dossier["id"])
        if drift.kind is None:
            state = None
            if finding is not None:
                state = State.REPAIRED if finding["state"] == State.REPAIRING else State.CLEARED
                store.change_finding(conn, finding["id"], state=state.value, resolved_at=now, resolved_by=ACTOR,
                                     last_seen_at=now)
                audit.record(conn, actor=ACTOR, action=f"portal.drift_{state.value}", subject=code, at=now,
                             detail={"finding": finding["id"], "kind": finding["kind"], "repairs": finding["repairs"]})
                if state is State.REPAIRED:
                    self._announce(conn, REPAIRED, {**finding, "state": state.value}, now)
            store.record_check(conn, dossier["id"], now=now, outcome="clean", next_at=self._next(dossier, now))
            return Checked(code, "clean", finding["id"] if finding else None, state.value if state else None), []
        kind = drift.kind
        seen = {"kind": kind.value, "differences": [d.as_dict() for d in drift.differences], "portal": records,
                "last_seen_at": now}
        if finding is None:
            finding_id = store.add_finding(conn, {"dossier_id": dossier["id"], "dossier_code": code,
                                                  "state": State.REPAIRING.value, "first_seen_at": now, "repairs": 0,
                                                  **seen})
            finding = store.finding(conn, finding_id)
            audit.record(conn, actor=ACTOR, action="portal.drift_found", subject=code, at=now,
                         detail={"finding": finding_id, "kind": kind.value,
                                 "fields": sorted({d.field for d in drift.differences})})
        else:
            store.change_finding(conn, finding["id"], **seen)
        repairable = drift.owned and (not held or kind is Kind.MISSING)
        if repairable and finding["repairs"] < s.max_repairs:
            jobs, publish = _repair(conn, self.ctx, code, drift, plan, held, now)
            store.change_finding(conn, finding["id"], state=State.REPAIRING.value, repairs=finding["repairs"] + 1,
                                 repair_jobs=jobs, note=None)
            store.record_check(conn, dossier["id"], now=now, outcome=kind.value,
                               next_at=now + timedelta(seconds=s.recheck_after_seconds))
            audit.record(conn, actor=ACTOR, action="portal.repair_queued", subject=code, at=now,
                         detail={"finding": finding["id"], "kind": kind.value, "jobs": jobs,
                                 "try": finding["repairs"] + 1, "superseded": [j["id"] for j in held]})
            return Checked(code, kind.value, finding["id"], State.REPAIRING.value, jobs), publish
        note = ("Không phải bản tỉnh gửi: không ghi đè, chờ người vận hành" if not drift.owned else
                f"Thư chết #{held[0]['id']} đang giữ các việc của hồ sơ: xử lý nó trước" if held else
                f"Đã gửi lại {finding['repairs']} lần mà Cổng vẫn lệch")
        if finding["state"] != State.OPERATOR:
            store.change_finding(conn, finding["id"], state=State.OPERATOR.value, note=note)
            audit.record(conn, actor=ACTOR, action="portal.needs_operator", subject=code, at=now,
                         detail={"finding": finding["id"], "kind": kind.value, "note": note})
            self._announce(conn, NEEDS_ATTENTION, {**finding, **seen, "state": State.OPERATOR.value, "note": note},
                           now)
        store.record_check(conn, dossier["id"], now=now, outcome=kind.value, next_at=self._next(dossier, now))
        return Checked(code, kind.value, finding["id"], State.OPERATOR.value), []

    def _announce(self, conn: Connection, kind: str, finding: Any, now: datetime) -> None:
        """A feed item for the one-stop software: the portal's record was repaired, or needs attention."""
        drift_kind = Kind(finding["kind"])
        feed.append(conn, type=kind, code=finding["dossier_code"], at=now, data={
            "finding_id": finding["id"], "kind": drift_kind.value, "kind_label": KIND_LABELS_VI[drift_kind],
            "state": finding["state"], "state_label": STATE_LABELS_VI[State(finding["state"])],
            "note": finding.get("note"), "repairs": finding["repairs"],
            "differences": [{k: d[k] for k in ("field", "gateway", "portal")} for d in finding["differences"]]})

    # Asked by people -------------------------------------------------------------------------------------------

    def recheck(self, code: str, *, actor: str) -> int:
        """Queue a look-up of one dossier now (the console's and the API's "recheck now")."""
        now = server_clock.now()
        with self.ctx.engine.begin() as conn:
            dossier = dossiers.get(conn, code)
            if dossier is None:
                raise NotFound(f"no dossier {code}")
            if store.check_of(conn, dossier["id"]) is None:
                store.enrol(conn, dossier["id"], code, now=now, first_check_at=now + self.window)
            job = outbox.NewJob(np.QUEUE, np.CHECK, check_key(code, now), {"code": code})
            job_id, waiting = outbox.enqueue(conn, job, now=now, max_attempts=self.settings.check_attempts)
            store.schedule(conn, [dossier["id"]], now + self.window)
            audit.record(conn, actor=actor, action="portal.recheck", subject=code, at=now, detail={"job": job_id})
        self.ctx.publish_after_commit([] if waiting else [(job_id, np.QUEUE)])
        return job_id

    def run(self, codes: list[str], *, track: Track = untracked, pace: bool = True) -> list[Checked]:
        """Look at each dossier now, in this process (`gateway reconcile portal`): at most `rate_per_second`,
        each look-up tried `check_attempts` times; stops with PortalDown once look-ups failed for
        `jobs.outage_after_keys` dossiers in a row. Repairs go through the outbox as the worker's do."""
        results: list[Checked] = []
        failing: set[str] = set()
        gap = 1.0 / self.settings.rate_per_second if pace else 0.0
        turn = time.monotonic()
        for code in track(codes, len(codes)):
            turn = max(turn, time.monotonic())
            time.sleep(max(0.0, turn - time.monotonic()))  # the budget: one look-up every `gap` seconds
            turn += gap
            error: Exception | None = None
            for attempt in range(self.settings.check_attempts):
                try:
                    results.append(self.check(code))
                    failing.clear()
                    break
                except RetryableError as exc:
                    error = exc
                    time.sleep(min(0.5 * 2 ** attempt, 5.0) if attempt + 1 < self.settings.check_attempts else 0)
            else:
                results.append(Checked(code, "failed", detail=str(error)[:500]))
                failing.add(code)
                if len(failing) >= self.ctx.jobs.outage_after_keys:
                    raise PortalDown(f"look-ups failed for {len(failing)} dossiers in a row ({error}): the portal "
                                     f"looks down; {len(results)} of {len(codes)} looked at")
        return results


def _plan(conn: Connection, code: str) -> Plan | None:
    """What the gateway delivered of a dossier, from its done jobs (the outbox is the record of what was sent)."""
    newest = outbox.delivered(conn, np.QUEUE, code, np.SYNC_DOSSIER, newest=True)
    if not newest:
        return None
    steps = outbox.delivered(conn, np.QUEUE, code, np.PROGRESS)
    snapshot = dict(newest[0]["payload"]["dossier"])
    last_step = steps[-1] if steps else None
    if last_step is not None and last_step["id"] > newest[0]["id"]:  # a step after the newest sync sets the status
        snapshot["status"] = int(last_step["payload"]["event"]["status"])
    records, payloads, seen = [], [], set()
    for job in steps:
        record = event_to_progress(job["payload"]["code"], job["payload"]["event"])
        if (key := progress_key(record)) not in seen:  # the portal keeps an identical record once
            seen.add(key)
            records.append(record)
            payloads.append(job["payload"])
    statuses = frozenset({1, int(snapshot["status"]), int(newest[0]["payload"]["dossier"].get("status", 1))}
                         | {int(p["event"]["status"]) for p in payloads})
    return Plan(Sent(dossier_to_dvcqg(snapshot), records, statuses), snapshot, payloads)


def _repair(conn: Connection, ctx: Context, code: str, drift: Drift, plan: Plan, held: list[RowMapping],
            now: datetime) -> tuple[list[int], list[tuple[int, str]]]:
    """Queue the dossier's records again on its own key, in order; the caller holds the key's lock.

    missing: the dossier (a create: the portal answers "exists" to a create it does hold, and the client updates),
    every progress record, then the dossier again (its status after the progress records); behind: the progress
    records the portal lacks, then the dossier; fields: the dossier. A dossier whose jobs a dead letter holds (its
    first write failed "not found" because the portal had lost it) has them retired and queued again behind."""
    def sync(updating: bool) -> outbox.NewJob:
        return outbox.NewJob(np.QUEUE, np.SYNC_DOSSIER, code, {"dossier": plan.snapshot, "updating": updating,
                                                               "repair": True})

    def progress(payload: dict[str, Any]) -> outbox.NewJob:
        return outbox.NewJob(np.QUEUE, np.PROGRESS, code, payload)

    plans: dict[Kind, Callable[[], list[outbox.NewJob]]] = {
        Kind.MISSING: lambda: [sync(False), *map(progress, plan.progress), sync(True)],
        Kind.BEHIND: lambda: [*(progress(plan.progress[i]) for i in drift.missing_progress), sync(True)],
        Kind.FIELDS: lambda: [sync(True)],
    }
    assert drift.kind is not None
    new = plans[drift.kind]()
    note = f"sent again behind the national portal's repair of {code}"
    new += [outbox.NewJob(j["queue"], j["kind"], j["ordering_key"], j["payload"])
            for j in outbox.supersede(conn, [j["id"] for j in held], now=now, note=note)]
    heads = not outbox.has_unfinished(conn, np.QUEUE, code)
    ids = outbox.enqueue_many(conn, [(job, heads and i == 0) for i, job in enumerate(new)], now=now,
                              max_attempts=ctx.jobs.max_attempts)
    return ids, [(ids[0], np.QUEUE)] if heads else []
