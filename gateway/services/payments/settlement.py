"""Settling a payment on the provider's word, from a callback or from reconciliation: one code path, so a
callback and a QUERY answer arriving together apply the payment once.

Runs inside the caller's transaction, holding the dossier's row lock, then the payment's (always in that
order, like steps). Under those locks the state read is the state written over, so a settlement's writes
(the payment, the dossier, the jobs, the feed item, the audit record) go into the caller's one-trip write:
one statement, with what the caller adds itself (a callback's own audit record). The changes made without
those locks (expiry, failure, start) are conditional updates: a payment moves on from the state we read, or
not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import Connection, RowMapping

from gateway.adapters import national_portal as np
from gateway.adapters import payment as pay
from gateway.adapters.payment.base import PaymentProvider, ProviderState
from gateway.domain.codes import Status
from gateway.domain.payment import MAY_CANCEL, MAY_EXPIRE, MAY_START, PaymentState, confirm
from gateway.domain.status_machine import is_final
from gateway.services.dossiers.steps import snapshot
from gateway.services.unit_of_work import Context
from gateway.store import audit, dossiers, feed, outbox, payments
from gateway.store.one_trip import OneTrip, Part

log = logging.getLogger(__name__)

PAID_BY = "Cổng thanh toán"  # NguoiXuLy of the progress record that tells the national portal


class Result(Enum):
    APPLIED = "applied"
    ALREADY = "already"  # the payment already has this outcome: nothing to do
    IGNORED = "ignored"  # an outcome that does not move the payment (say "still pending")
    WRONG_AMOUNT = "wrong_amount"
    UNKNOWN = "unknown"


@dataclass
class Settlement:
    result: Result
    payment: RowMapping | dict[str, Any] | None = None
    jobs: Part | None = None  # the new jobs, in the caller's one-trip write

    def to_publish(self) -> list[tuple[int, str]]:
        """The jobs to wake after the caller ran its one-trip write and committed."""
        return outbox.to_publish(self.jobs) if self.jobs is not None else []


def vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".") + " đồng"


def settle(conn: Connection, ctx: Context, provider: PaymentProvider, reference: str, outcome: ProviderState, *,
           amount: int | None, transaction_id: str | None, via: str, actor: str, now: datetime,
           trip: OneTrip) -> Settlement:
    """Apply what `provider` says of payment `reference`; a provider has no say over another's payments.
    The writes go into `trip`, which the caller runs in this transaction (the locks it needs are held)."""
    found = payments.by_reference(conn, reference)
    if found is None or found["provider"] != provider.name:
        return Settlement(Result.UNKNOWN)
    dossier = dossiers.get(conn, found["dossier_code"], for_update=True)
    payment = payments.by_reference(conn, reference, for_update=True)
    if dossier is None or payment is None:
        return Settlement(Result.UNKNOWN)
    if outcome in (ProviderState.PAID, ProviderState.CANCELLED) and amount != payment["amount"]:
        return Settlement(Result.WRONG_AMOUNT, payment)
    state = PaymentState(payment["state"])
    if outcome is ProviderState.PAID:
        return _paid(conn, ctx, dict(dossier), payment, state, transaction_id=transaction_id, via=via, actor=actor,
                     issues_receipt=provider.issues_receipts, now=now, trip=trip)
    if outcome is ProviderState.CANCELLED:
        if state is PaymentState.CANCELLED:
            return Settlement(Result.ALREADY, payment)
        if state not in MAY_CANCEL:
            return Settlement(Result.IGNORED, payment)
        changed = {**payment, **payments.add_change(trip, payment["id"], {
            "state": PaymentState.CANCELLED.value, "settled_by": via, "next_check_at": None}, now=now)}
        _announce(trip, changed, "payment.cancelled", actor=actor, via=via, now=now)
        return Settlement(Result.APPLIED, changed)
    return Settlement(Result.IGNORED, payment)


def _paid(conn: Connection, ctx: Context, dossier: dict[str, Any], payment: RowMapping, state: PaymentState, *,
          transaction_id: str | None, via: str, actor: str, issues_receipt: bool, now: datetime,
          trip: OneTrip) -> Settlement:
    verdict = confirm(state, now=now, expires_at=payment["expires_at"], dossier_closed=is_final(dossier["status"]))
    if not verdict.applies:
        return Settlement(Result.ALREADY, payment)
    changed = {**payment, **payments.add_change(trip, payment["id"], {
        "state": PaymentState.PAID.value, "paid_at": now, "transaction_id": transaction_id, "settled_by": via,
        "next_check_at": None, "flag": verdict.reason}, now=now)}
    if verdict.late:
        log.warning("payment %s of %s %s: flagged for operators", changed["reference"], changed["dossier_code"],
                     verdict.reason)
    jobs = [_progress_job(dossier, changed, now)]
    if dossier["fees_paid_online_at"] is None:
        dossiers.add_fees_paid_online(trip, dossier["id"], now=now)
        dossier["fees_paid_online_at"] = now
        # A payment settled after the result was returned (paid late) must not blank the portal's NgayTra.
        returned = dossiers.returned_at(conn, dossier["id"]) if dossier["status"] == Status.RESULT_RETURNED else None
        jobs.append(outbox.NewJob(np.QUEUE, np.SYNC_DOSSIER, dossier["code"], {
            "dossier": snapshot(dossier, returned_at=returned.isoformat() if returned else None), "updating": True}))
    if issues_receipt:
        jobs.append(outbox.NewJob(pay.QUEUE, pay.RECEIPT, changed["reference"], {"reference": changed["reference"]}))
    outbox.lock_keys_of(conn, jobs)
    part = outbox.add_jobs(trip, outbox.heads_offered(jobs), now=now, max_attempts=ctx.jobs.max_attempts)
    _announce(trip, changed, "payment.paid", actor=actor, via=via, now=now,
              extra={"late": verdict.late, "flag": verdict.reason})
    return Settlement(Result.APPLIED, changed, part)


def _progress_job(dossier: dict[str, Any], payment: RowMapping, now: datetime) -> outbox.NewJob:
    """A CapNhatTienDoHoSoMC record: the dossier keeps its status; the record says what was paid."""
    items = ", ".join(f"{i['name']} {vnd(i['amount'])}" for i in payment["items"])
    note = (f"Đã thanh toán trực tuyến {vnd(payment['amount'])} ({items}); mã giao dịch "
            f"{payment['transaction_id'] or '-'}, mã tham chiếu {payment['reference']}")
    event = {"status": dossier["status"], "at": now.isoformat(), "officer": PAID_BY, "note": note,
             "due_at": None}
    return outbox.NewJob(np.QUEUE, np.PROGRESS, dossier["code"], {"code": dossier["code"], "event": event})


def expire(conn: Connection, payment: RowMapping, *, now: datetime) -> RowMapping | None:
    """A pending payment nobody paid in time (the provider still says pending, or does not know it)."""
    changed = payments.change(conn, payment["id"], expected=MAY_EXPIRE, now=now, state=PaymentState.EXPIRED.value,
                              settled_by="reconciliation", next_check_at=None)
    if changed is not None:
        _announce_now(conn, changed, "payment.expired", actor="reconciliation", via="reconciliation", now=now)
    return changed


def record_failed(conn: Connection, reference: str, error: str, *, now: datetime) -> RowMapping | None:
    """The provider refused the payment, or stayed unreachable through every attempt."""
    payment = payments.by_reference(conn, reference)
    if payment is None:
        return None
    changed = payments.change(conn, payment["id"], expected=frozenset({PaymentState.INITIATING}), now=now,
                              state=PaymentState.FAILED.value, last_error=error[:4000])
    if changed is not None:
        _announce_now(conn, changed, "payment.failed", actor="worker", via=changed["provider"], now=now,
                      extra={"error": error[:500]})
    return changed


def record_started(conn: Connection, reference: str, pay_url: str, *, now: datetime, check_after: float,
                   trip: OneTrip) -> bool:
    """The provider gave a pay URL: the citizen can pay now. False if the payment had moved on meanwhile.
    The feed item and audit record go into `trip`, which the caller runs."""
    payment = payments.by_reference(conn, reference)
    if payment is None:
        return False
    changed = payments.change(conn, payment["id"], expected=MAY_START, now=now, state=PaymentState.PENDING.value,
                              pay_url=pay_url, last_error=None, next_check_at=now + timedelta(seconds=check_after))
    if changed is not None:
        _announce(trip, changed, "payment.requested", actor="worker", via=changed["provider"], now=now,
                  extra={"pay_url": pay_url, "expires_at": changed["expires_at"].isoformat()})
    return changed is not None


def _announce(trip: OneTrip, payment: RowMapping | dict[str, Any], kind: str, *, actor: str, via: str,
              now: datetime, extra: dict[str, Any] | None = None) -> None:
    """The feed item the one-stop software reads, and the audit record, of one payment change, into a one-trip
    write."""
    data = {"payment_id": payment["reference"], "state": payment["state"], "amount": payment["amount"],
            "items": payment["items"], "provider": payment["provider"], "via": via,
            "transaction_id": payment["transaction_id"], **(extra or {})}
    feed.add_items(trip, [{"type": kind, "code": payment["dossier_code"], "at": now, "data": data}])
    audit.add_records(trip, [{"actor": actor, "action": kind, "subject": payment["dossier_code"], "at": now,
                              "detail": {k: v for k, v in data.items() if k != "items"}}])


def _announce_now(conn: Connection, payment: RowMapping, kind: str, **kwargs: Any) -> None:
    trip = OneTrip()
    _announce(trip, payment, kind, **kwargs)
    trip.run(conn)
