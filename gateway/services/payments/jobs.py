"""Payment work done by workers: INIT at the provider, reconciliation QUERYs, fetching receipts.

Each handler calls the provider, then records what it learned in a transaction of its own. Recording
is idempotent (a conditional update, a receipt kept once), so a job run twice, say after its worker
was killed between the two, changes nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from gateway.adapters import payment as pay
from gateway.adapters.base import AdapterError, PermanentError
from gateway.adapters.payment.base import FeeItem, PaymentProvider, PaymentRequest, ProviderState
from gateway.domain.notifications import PAYMENT_REQUIRED
from gateway.domain.payment import HOLDS_FEES, MAY_START, PaymentState
from gateway.domain.payment_routing import unit_of
from gateway.services.notifications import messages as notifications
from gateway.services.payments.orders import overlapping
from gateway.services.payments.settlement import Result, expire, record_failed, record_started, settle
from gateway.services.unit_of_work import Context
from gateway.store import dossiers, outbox, payments, server_clock
from gateway.store.database import reading
from gateway.store.one_trip import OneTrip, Part

log = logging.getLogger(__name__)

RECONCILE_BATCH = 200


def _address(data: Mapping[str, Any]) -> str:
    """The applicant's address on one line, street first (the receipt's DiaChiNguoiNop)."""
    address = (data.get("applicant") or {}).get("address") or {}
    return ", ".join(str(address[k]) for k in ("street", "commune", "district", "province") if address.get(k))


class PaymentJobs:
    def __init__(self, ctx: Context, providers: Mapping[str, PaymentProvider]) -> None:
        self.ctx = ctx
        self.providers = providers

    def _load(self, reference: str) -> tuple[Any, Any, PaymentProvider]:
        with reading(self.ctx.engine) as conn:
            payment = payments.by_reference(conn, reference)
            if payment is None:
                raise PermanentError(f"no payment {reference}")
            dossier = dossiers.get(conn, payment["dossier_code"])
        provider = self.providers.get(payment["provider"])
        if provider is None:
            raise PermanentError(f"payment {reference}: no provider {payment['provider']!r} is configured")
        return payment, dossier, provider

    def init(self, payload: dict[str, Any]) -> None:
        payment, dossier, provider = self._load(payload["reference"])
        if PaymentState(payment["state"]) not in MAY_START:
            return  # started already (a repeated job), or settled meanwhile
        if payment["state"] == PaymentState.FAILED:  # an operator revived its INIT: are its fees still free?
            with reading(self.ctx.engine) as conn:
                others = [p for p in payments.of_dossier(conn, payment["dossier_id"], HOLDS_FEES)
                          if p["id"] != payment["id"]]
            if (held := overlapping({i["code"] for i in payment["items"]}, others)) is not None:
                raise PermanentError(f"payment {payment['reference']} stays failed: its fees are now held by "
                                     f"payment {held['reference']} ({held['state']})")
        request = PaymentRequest(
            reference=payment["reference"], amount=payment["amount"], dossier_code=payment["dossier_code"],
            procedure_code=dossier["procedure_code"], unit_code=unit_of(payment["dossier_code"]),
            payer_name=dossier["applicant_name"], description=payment["description"], client_ip=payment["payer_ip"],
            at=payment["created_at"], items=[FeeItem(i["code"], i["name"], i["amount"]) for i in payment["items"]],
            procedure_name=dossier["procedure_name"], payer_id_number=dossier["id_number"],
            payer_address=_address(dossier["data"]),
        )
        try:
            started = provider.start(request)
        except AdapterError as exc:
            with self.ctx.engine.begin() as conn:  # the one-stop software sees why it is still initiating
                payments.note_error(conn, payment["id"], f"{type(exc).__name__}: {exc}", now=server_clock.now())
            raise
        now = server_clock.now()
        told: Part | None = None
        with self.ctx.engine.begin() as conn:
            trip = OneTrip()  # the feed item, the audit record and the citizen's messages: one statement
            if record_started(conn, payment["reference"], started.pay_url, now=now,
                              check_after=self.ctx.payment.reconcile_after_seconds, trip=trip):
                told = notifications.tell_applicant(
                    self.ctx, trip, dict(dossier), PAYMENT_REQUIRED, cause=f"payment:{payment['reference']}",
                    origin="payment", now=now,
                    context={"pay_url": started.pay_url, "amount": payment["amount"], "items": payment["items"]})
            trip.run(conn)
        self.ctx.publish_after_commit(outbox.to_publish(told) if told is not None else [])

    def init_dead(self, conn: Connection, payload: dict[str, Any], error: str) -> None:
        """The INIT job is a dead letter: the payment failed, and the one-stop software is told."""
        record_failed(conn, payload["reference"], error, now=server_clock.now())

    def query(self, payload: dict[str, Any]) -> None:
        payment, _, provider = self._load(payload["reference"])
        if payment["state"] != PaymentState.PENDING:
            return  # settled since the check was scheduled
        status = provider.query(payment["reference"], created_at=payment["created_at"])
        now = server_clock.now()
        with self.ctx.engine.begin() as conn:
            trip = OneTrip()
            settled = settle(conn, self.ctx, provider, payment["reference"], status.state, amount=status.amount,
                             transaction_id=status.transaction_id, via="reconciliation", actor="reconciliation",
                             now=now, trip=trip)
            trip.run(conn)
            if settled.result is Result.WRONG_AMOUNT:
                mismatch = f"the provider reports {status.amount} VND, not the {payment['amount']} asked for"
                payments.change(conn, payment["id"], expected=frozenset({payment["state"]}), now=now, flag=mismatch)
            grace = timedelta(seconds=self.ctx.payment.expiry_grace_seconds)
            if status.state in (ProviderState.PENDING, ProviderState.UNKNOWN) and now > payment["expires_at"] + grace:
                expire(conn, payment, now=now)
        self.ctx.publish_after_commit(settled.to_publish())
        if settled.result is Result.WRONG_AMOUNT:  # flagged for operators; the job is a dead letter to see
            raise PermanentError(f"payment {payment['reference']}: {mismatch}")

    def receipt(self, payload: dict[str, Any]) -> None:
        payment, _, provider = self._load(payload["reference"])
        with reading(self.ctx.engine) as conn:
            if payments.receipt(conn, payment["id"]) is not None:
                return
        pdf = provider.receipt(payment["reference"], created_at=payment["created_at"])
        if pdf is None:
            return
        with self.ctx.engine.begin() as conn:
            payments.store_receipt(conn, payment["id"], pdf, now=server_clock.now())

    def schedule_reconciliation(self) -> int:
        """Queue a QUERY for each pending payment whose check is due, and set its next check.

        Run periodically by every worker; on PostgreSQL they share the due payments (SKIP LOCKED)."""
        now = server_clock.now()
        every = timedelta(seconds=self.ctx.payment.reconcile_every_seconds)
        ready: list[tuple[int, str]] = []
        with self.ctx.engine.begin() as conn:
            due = payments.due_for_check(conn, now=now, limit=RECONCILE_BATCH)
            for payment in due:
                job = outbox.NewJob(pay.QUEUE, pay.QUERY, payment["reference"], {"reference": payment["reference"]})
                job_id, waiting = outbox.enqueue(conn, job, now=now, max_attempts=self.ctx.jobs.max_attempts)
                if not waiting:
                    ready.append((job_id, pay.QUEUE))
            payments.schedule_checks(conn, [p["id"] for p in due], now + every)
        self.ctx.publish_after_commit(ready)
        if due:
            log.info("reconciliation: %d pending payment(s) to query", len(due))
        return len(due)
