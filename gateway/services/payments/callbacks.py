"""A payment provider calls back with a payment's result.

Only an authentic callback (its checksum verifies with our shared secret) for a payment we know, of the
exact amount we asked, can change anything. Whatever the verdict, the provider gets an answer in its
own format and codes, and the callback leaves an audit record (refused ones included, for the operators
who must notice forgery attempts).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.adapters.payment.base import Answer, Callback, CallbackVerdict, PaymentProvider
from gateway.services.payments.settlement import Result, settle
from gateway.services.unit_of_work import Context
from gateway.store import audit, server_clock
from gateway.store.one_trip import OneTrip

log = logging.getLogger(__name__)

VERDICTS: dict[Result, CallbackVerdict] = {
    Result.APPLIED: CallbackVerdict.APPLIED,
    Result.ALREADY: CallbackVerdict.ALREADY_APPLIED,
    Result.IGNORED: CallbackVerdict.ALREADY_APPLIED,  # acknowledged; it does not move the payment
    Result.WRONG_AMOUNT: CallbackVerdict.WRONG_AMOUNT,
    Result.UNKNOWN: CallbackVerdict.UNKNOWN_REFERENCE,
}
REFUSED = frozenset({CallbackVerdict.BAD_SIGNATURE, CallbackVerdict.WRONG_AMOUNT,
                     CallbackVerdict.UNKNOWN_REFERENCE, CallbackVerdict.ERROR})


def handle_callback(ctx: Context, provider: PaymentProvider, data: Mapping[str, Any], *,
                    remote_addr: str | None) -> Answer:
    now = server_clock.now()
    callback = provider.read_callback(data)
    actor = f"payment:{provider.name}"
    if not callback.authentic:
        verdict = CallbackVerdict.BAD_SIGNATURE
    elif callback.reference is None:
        verdict = CallbackVerdict.UNKNOWN_REFERENCE
    else:
        with ctx.engine.begin() as conn:
            trip = OneTrip()  # the settlement's writes and the callback's audit record: one statement
            settled = settle(conn, ctx, provider, callback.reference, callback.state, amount=callback.amount,
                             transaction_id=callback.transaction_id, via="callback", actor=actor, now=now, trip=trip)
            verdict = VERDICTS[settled.result]
            if verdict not in REFUSED:
                audit.add_records(trip, [{"actor": actor, "action": "payment.callback", "subject": callback.reference,
                                          "at": now, "detail": _detail(callback, verdict, remote_addr)}])
            trip.run(conn)
        ctx.publish_after_commit(settled.to_publish())
    if verdict in REFUSED:
        refuse(ctx, provider, callback, verdict, remote_addr=remote_addr, now=now)
    return provider.answer(callback, verdict)


def refuse(ctx: Context, provider: PaymentProvider, callback: Callback, verdict: CallbackVerdict, *,
           remote_addr: str | None, now: datetime | None = None, reason: str | None = None) -> None:
    """A refused callback changes nothing but leaves its trace, in its own transaction."""
    now = now or server_clock.now()
    log.warning("payment callback from %s refused: %s (reference %r, amount %r)%s", remote_addr, verdict.value,
                callback.reference, callback.amount, f": {reason}" if reason else "")
    with ctx.engine.begin() as conn:
        audit.record(conn, actor=f"payment:{provider.name}", action="payment.callback_refused",
                     subject=(callback.reference or "?")[:200], at=now,
                     detail={**_detail(callback, verdict, remote_addr), "reason": reason})


def _detail(callback: Callback, verdict: CallbackVerdict, remote_addr: str | None) -> dict[str, Any]:
    # The callback's own fields (its checksum is no secret: it is a hash, and it was sent in the clear).
    return {"verdict": verdict.value, "remote_addr": remote_addr, "amount": callback.amount,
            "state": callback.state.value, "transaction_id": callback.transaction_id,
            "fields": {k: str(v)[:200] for k, v in list(callback.raw.items())[:40]}}
