"""Asking for fee payments: by request of the one-stop software (idempotent on its Idempotency-Key), or
because it reported status 6 with fees. Either way the payment row and its INIT job commit together;
a request then tries the INIT at once so that its answer can carry the pay URL.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from gateway.adapters import payment as pay
from gateway.domain.dossier import fingerprint
from gateway.domain.fees import MAX_ITEMS, Fee, total_of
from gateway.domain.payment import HOLDS_FEES, ONLINE_PAYMENT_LEVELS, PaymentRequestIn, PaymentState, unpaid
from gateway.domain.payment_routing import choose_provider
from gateway.domain.status_machine import is_final
from gateway.services.errors import Conflict, NotFound
from gateway.services.unit_of_work import Context
from gateway.store import audit, dossiers, outbox, payments, server_clock
from gateway.store.database import reading
from gateway.store.one_trip import OneTrip

# Runs a job claimed by the caller right away (JobRunner.run_claimed); wired by the entry point.
AttemptNow = Callable[[str, outbox.Claim], object]


class NothingToPay(Conflict):
    code = "nothing_to_pay"


@dataclass(frozen=True)
class Requested:
    created: bool
    payment: RowMapping


def new_reference(now: datetime) -> str:
    """MaThamChieu / vnp_TxnRef: date and 12 random hex digits, letters and digits only (VNPay's rule)."""
    return f"{now:%y%m%d}{secrets.token_hex(6).upper()}"


def check_online_level(dossier: RowMapping | dict[str, Any]) -> None:
    if dossier["level"] not in ONLINE_PAYMENT_LEVELS:
        raise Conflict(f"dossier {dossier['code']} is a một phần (level 3) dossier: its fees are paid at the "
                       "counter, not online")


def check_payable(dossier: RowMapping | dict[str, Any]) -> None:
    check_online_level(dossier)
    if is_final(dossier["status"]):
        raise Conflict(f"dossier {dossier['code']} is closed (status {dossier['status']}); no fee can be asked for")


def same_items(items: list[Fee], payment: RowMapping) -> bool:
    return sorted((i.code, i.name, i.amount) for i in items) == sorted(
        (i["code"], i["name"], i["amount"]) for i in payment["items"])


def overlapping(codes: set[str], holding: list[RowMapping]) -> RowMapping | None:
    """The first of these payments (open or paid) that already holds one of these fee codes."""
    return next((p for p in holding if codes & {i["code"] for i in p["items"]}), None)


def fee_conflict(payment: RowMapping) -> Conflict:
    return Conflict(f"a fee of this request is already held by payment {payment['reference']} "
                    f"({payment['state']})", payment_id=payment["reference"], payment_state=payment["state"])


def items_to_ask(dossier: RowMapping | dict[str, Any], body: PaymentRequestIn, holding: list[RowMapping]) -> list[Fee]:
    """The request's items; without any, the fees the dossier was filed with, less those paid or held by an
    open payment."""
    if body.items is not None:
        return body.items
    held = {i["code"] for p in holding for i in p["items"]}
    items = unpaid([Fee.model_validate(f) for f in dossier["data"].get("fees") or []], held)
    if not items:
        raise NothingToPay(f"dossier {dossier['code']} has no unpaid fee: each fee it was filed with is paid, "
                           "held by an open payment, or 0 VND", held_by=sorted({p["reference"] for p in holding}))
    if len(items) > MAX_ITEMS:
        raise Conflict(f"dossier {dossier['code']} has {len(items)} unpaid fees, more than one payment takes "
                       f"({MAX_ITEMS}): name them in items")
    if body.total is not None and body.total != total_of(items):
        raise Conflict(f"total {body.total} is not the sum of the unpaid fees ({total_of(items)})",
                       unpaid=[i.model_dump(mode="json") for i in items])
    return items


def new_payment(ctx: Context, dossier: RowMapping | dict[str, Any], items: list[Fee], *, origin: str, caller: str,
                now: datetime, description: str | None = None, payer_ip: str | None = None,
                idempotency_key: str | None = None, request_fingerprint: str | None = None) -> dict[str, Any]:
    settings = ctx.payment
    return {
        "reference": new_reference(now), "dossier_id": dossier["id"], "dossier_code": dossier["code"],
        "provider": choose_provider(settings.routes, procedure_code=dossier["procedure_code"],
                                    dossier_code=dossier["code"], default=settings.default_provider),
        "state": PaymentState.INITIATING.value, "amount": total_of(items),
        "items": [i.model_dump(mode="json") for i in items],
        "description": description or f"Thanh toán phí, lệ phí hồ sơ {dossier['code']}",
        "payer_ip": payer_ip or "127.0.0.1", "pay_url": None, "origin": origin, "caller": caller,
        "idempotency_key": idempotency_key, "request_fingerprint": request_fingerprint,
        "expires_at": now + timedelta(minutes=settings.expires_after_minutes),
        "created_at": now, "updated_at": now,
    }


def init_job(payment: dict[str, Any]) -> outbox.NewJob:
    # Keyed by the payment: its INIT, reconciliation queries and receipt run one after another.
    return outbox.NewJob(pay.QUEUE, pay.INIT, payment["reference"], {"reference": payment["reference"]})


def _replay(conn: Connection, caller: str, key: str, request_fingerprint: str) -> Requested | None:
    previous = payments.by_idempotency_key(conn, caller, key)
    if previous is None:
        return None
    if previous["request_fingerprint"] != request_fingerprint:
        raise Conflict(f"Idempotency-Key {key!r} was already used for a different request",
                       payment_id=previous["reference"])
    return Requested(False, previous)


def request_payment(ctx: Context, code: str, body: PaymentRequestIn, *, caller: str, idempotency_key: str | None,
                    client_ip: str | None, attempt_now: AttemptNow) -> Requested:
    """Store a payment and its INIT job, then try the INIT at once; a retry with the same key answers
    the same payment, the same key with another body is a conflict."""
    now = server_clock.now()
    request_fp = fingerprint({"dossier": code, **body.model_dump(mode="json")})
    try:
        with ctx.engine.begin() as conn:
            # The dossier's lock first: a request with the same key waiting on it then sees the first one's row.
            dossier = dossiers.get(conn, code, for_update=True)
            if idempotency_key and (same := _replay(conn, caller, idempotency_key, request_fp)):
                return same
            if dossier is None:
                raise NotFound(f"no dossier {code}")
            check_payable(dossier)
            holding = payments.of_dossier(conn, dossier["id"], HOLDS_FEES)
            items = items_to_ask(dossier, body, holding)
            held = overlapping({i.code for i in items}, holding)
            if held is not None:
                raise fee_conflict(held)
            payment = new_payment(
                ctx, dossier, items, origin="request", caller=caller, now=now, description=body.description,
                payer_ip=body.payer_ip or client_ip, idempotency_key=idempotency_key, request_fingerprint=request_fp)
            trip = OneTrip()  # the payment, its INIT job (claimed: tried below) and the audit record at once
            payments.add_payment(trip, payment)
            claimed = outbox.add_claimed(trip, init_job(payment), now=now, lease=ctx.jobs.lease_seconds,
                                         max_attempts=ctx.jobs.max_attempts)
            audit.add_records(trip, [{"actor": caller, "action": "payment.requested", "subject": code, "at": now,
                                      "detail": {"payment": payment["reference"], "amount": payment["amount"],
                                                 "provider": payment["provider"],
                                                 "idempotency_key": idempotency_key}}])
            trip.run(conn)
            claim = claimed.claim()
    except IntegrityError:
        # The same Idempotency-Key at the same moment: the request that committed first decides.
        if idempotency_key:
            with ctx.engine.begin() as conn:
                if (same := _replay(conn, caller, idempotency_key, request_fp)) is not None:
                    return same
        raise
    attempt_now(pay.QUEUE, claim)
    with reading(ctx.engine) as conn:
        return Requested(True, payments.by_reference(conn, payment["reference"]))


def for_step(ctx: Context, conn: Connection, dossier: dict[str, Any], fees: list[Fee], *, caller: str,
             now: datetime) -> tuple[dict[str, Any] | RowMapping, outbox.NewJob | None]:
    """The payment a status-6 step with fees asks for, inside the step's transaction.

    The same fees already open in one payment: that payment (a repeated step asks nothing new).
    Some of them held by another open or paid payment: a conflict. Otherwise a new payment and its INIT job.
    """
    check_online_level(dossier)  # the step itself was judged by the status machine
    held = payments.of_dossier(conn, dossier["id"], HOLDS_FEES)
    if (existing := overlapping({f.code for f in fees}, held)) is not None:
        if existing["state"] != PaymentState.PAID and same_items(fees, existing):
            return existing, None
        raise fee_conflict(existing)
    payment = payments.insert_payment(conn, new_payment(ctx, dossier, fees, origin="step", caller=caller, now=now))
    return payment, init_job(payment)


def _of_dossier(conn: Connection, code: str, reference: str) -> RowMapping:
    payment = payments.by_reference(conn, reference)
    if payment is None or payment["dossier_code"] != code:
        raise NotFound(f"no payment {reference} for dossier {code}")
    return payment


def get(ctx: Context, code: str, reference: str) -> tuple[RowMapping, bool]:
    """A payment of a dossier, and whether its receipt is stored."""
    with ctx.engine.connect() as conn:
        payment = _of_dossier(conn, code, reference)
        return payment, bool(payments.has_receipt(conn, [payment["id"]]))


def of_dossier(ctx: Context, code: str) -> tuple[list[RowMapping], set[int]]:
    with ctx.engine.connect() as conn:
        dossier = dossiers.get(conn, code)
        if dossier is None:
            raise NotFound(f"no dossier {code}")
        rows = payments.of_dossier(conn, dossier["id"])
        return rows, payments.has_receipt(conn, [r["id"] for r in rows])


def receipt(ctx: Context, code: str, reference: str) -> bytes:
    with ctx.engine.connect() as conn:
        payment = _of_dossier(conn, code, reference)
        if payment["state"] != PaymentState.PAID:
            raise NotFound(f"payment {reference} is {payment['state']}: only a paid payment has a receipt")
        pdf = payments.receipt(conn, payment["id"])
    if pdf is None:
        raise NotFound(f"the receipt of payment {reference} has not been fetched from the provider yet",
                       retry_after=5)
    return pdf


def listing(ctx: Context, *, state: str | None = None, flagged: bool = False) -> list[RowMapping]:
    """Payments, newest first (up to 200); `flagged` for those an operator must look at."""
    with ctx.engine.connect() as conn:
        return payments.listing(conn, state=state, flagged=flagged)
