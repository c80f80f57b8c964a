"""Public-post delivery of results: booking (once per dossier), tracking by callback and by polling, and
what a delivered result means (a status-10 step to the national portal, the citizen told).

Tracking updates arrive late, twice and out of order; each is kept in the history, and only one newer than
what the delivery shows moves it (domain/delivery.py decides).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from gateway.adapters import postal
from gateway.adapters.base import AdapterError, PermanentError
from gateway.adapters.postal.vnpost import Order, Tracking, VNPostClient
from gateway.domain.codes import Status
from gateway.domain.delivery import (
    FINAL,
    STATE_LABELS_VI,
    VNPOST_STATES,
    DeliveryIn,
    DeliveryState,
    moves_forward,
)
from gateway.domain.dossier import EventIn, fingerprint
from gateway.domain.notifications import RESULT_POSTED
from gateway.services.dossiers import steps
from gateway.services.errors import Conflict, NotFound, ServiceError
from gateway.services.notifications import messages as notifications
from gateway.services.payments.orders import AttemptNow
from gateway.services.unit_of_work import Context
from gateway.store import audit, deliveries, dossiers, feed, outbox, server_clock
from gateway.store.database import reading
from gateway.store.one_trip import OneTrip

log = logging.getLogger(__name__)

POLL_BATCH = 200
CAN_BOOK = frozenset({Status.RESULT_READY, Status.RESULT_RETURNED})


class Unprocessable(ServiceError):
    code = "unprocessable"


class UnknownStatusCode(ServiceError):
    code = "unknown_status_code"


@dataclass(frozen=True)
class Booked:
    created: bool
    delivery: RowMapping


def _receiver(dossier: RowMapping, body: DeliveryIn) -> dict[str, Any]:
    """VNPost's Receiver: the one given, else the applicant (who must then have a phone and an address)."""
    if body.receiver is not None:
        who = body.receiver.model_dump()
    else:
        applicant = dossier["data"]["applicant"]
        if not applicant.get("phone") or not applicant.get("address"):
            raise Unprocessable("the applicant has no phone or address: give a receiver")
        who = {"name": applicant["full_name"], "phone": applicant["phone"], "email": applicant.get("email"),
               "address": applicant["address"]}
    address = who["address"]
    return {"Name": who["name"], "Address": address.get("street") or address["commune"],
            "Province": address["province"], "Commune": address["commune"], "District": address.get("district"),
            "Tel": "0" + who["phone"][2:], "Email": who.get("email")}  # VNPost takes the local form 0xxxxxxxxx


def book(ctx: Context, code: str, body: DeliveryIn, *, caller: str, attempt_now: AttemptNow) -> Booked:
    """Book VNPost delivery of a dossier's result; a repeat of the same booking answers the first one."""
    now = server_clock.now()
    if body.cod_amount > ctx.postal.max_cod_vnd:
        raise Unprocessable(f"cod_amount is over the {ctx.postal.max_cod_vnd} VND cap")
    request_fp = fingerprint(body.model_dump(mode="json"))
    try:
        with ctx.engine.begin() as conn:
            dossier = dossiers.get(conn, code, for_update=True)
            if dossier is None:
                raise NotFound(f"no dossier {code}")
            if (existing := deliveries.of_dossier(conn, dossier["id"])) is not None:
                return _same_or_conflict(existing, request_fp)
            if Status(dossier["status"]) not in CAN_BOOK:
                raise Conflict(f"dossier {code} has no result to deliver yet (status {dossier['status']})",
                               current_status=dossier["status"])
            delivery = {
                "reference": "GH" + secrets.token_hex(6).upper(), "dossier_id": dossier["id"], "dossier_code": code,
                "provider": VNPostClient.name, "state": DeliveryState.BOOKING.value, "cod_amount": body.cod_amount,
                "receiver": {**_receiver(dossier, body), "description": body.description},
                "request_fingerprint": request_fp, "caller": caller, "created_at": now, "updated_at": now}
            job = outbox.NewJob(postal.QUEUE, postal.BOOK, f"delivery:{delivery['reference']}",
                                {"reference": delivery["reference"]})
            trip = OneTrip()  # the delivery, its BOOK job (claimed: tried below) and the audit record at once
            deliveries.add_delivery(trip, delivery)
            claimed = outbox.add_claimed(trip, job, now=now, lease=ctx.jobs.lease_seconds,
                                         max_attempts=ctx.jobs.max_attempts)
            audit.add_records(trip, [{"actor": caller, "action": "delivery.requested", "subject": code, "at": now,
                                      "detail": {"delivery": delivery["reference"], "cod_amount": body.cod_amount}}])
            trip.run(conn)
            claim = claimed.claim()
    except IntegrityError:  # the same booking at the same moment: the first one decides
        with ctx.engine.connect() as conn:
            dossier = dossiers.get(conn, code)
            existing = deliveries.of_dossier(conn, dossier["id"]) if dossier else None
            if existing is None:
                raise
            return _same_or_conflict(existing, request_fp)
    attempt_now(postal.QUEUE, claim)  # the answer then normally carries the waybill
    with reading(ctx.engine) as conn:
        return Booked(True, deliveries.by_reference(conn, delivery["reference"]))


def _same_or_conflict(existing: RowMapping, request_fp: str) -> Booked:
    if existing["request_fingerprint"] != request_fp:
        raise Conflict(f"delivery {existing['reference']} was already booked for this dossier with other details",
                       delivery_id=existing["reference"], waybill=existing["waybill"])
    return Booked(False, existing)


def get(ctx: Context, code: str) -> tuple[RowMapping, list[RowMapping]]:
    with ctx.engine.connect() as conn:
        dossier = dossiers.get(conn, code)
        delivery = deliveries.of_dossier(conn, dossier["id"]) if dossier else None
        if delivery is None:
            raise NotFound(f"no delivery for dossier {code}")
        return delivery, deliveries.events(conn, delivery["id"])


def _announcement(delivery: dict[str, Any]) -> dict[str, Any]:
    return {"delivery_id": delivery["reference"], "state": delivery["state"],
            "state_label": STATE_LABELS_VI[DeliveryState(delivery["state"])], "waybill": delivery["waybill"],
            "status_code": delivery["status_code"], "status_message": delivery["status_message"],
            "status_at": delivery["status_at"].isoformat() if delivery["status_at"] else None}


def _announce(conn: Connection, delivery: dict[str, Any], *, now: datetime) -> None:
    feed.append(conn, type="delivery.updated", code=delivery["dossier_code"], at=now, data=_announcement(delivery))


def _add_announcement(trip: OneTrip, delivery: dict[str, Any], *, now: datetime) -> None:
    """_announce() into a one-trip write."""
    feed.add_items(trip, [{"type": "delivery.updated", "code": delivery["dossier_code"], "at": now,
                           "data": _announcement(delivery)}])


def apply_tracking(ctx: Context, conn: Connection, delivery: RowMapping, tracking: Tracking, *, via: str,
                   now: datetime) -> tuple[bool, list[tuple[int, str]]]:
    """Record one tracking update of a delivery locked by the caller; (moved it?, jobs to publish)."""
    state = VNPOST_STATES.get(tracking.status_code)
    if state is None:
        raise UnknownStatusCode(f"unknown VNPost status code {tracking.status_code!r}")
    current = DeliveryState(delivery["state"])
    moved = current is not DeliveryState.BOOKING and moves_forward(current, delivery["status_at"], state, tracking.at)
    deliveries.add_event(conn, {"delivery_id": delivery["id"], "status_code": tracking.status_code,
                                "status_message": tracking.status_message, "at": tracking.at, "via": via,
                                "applied": moved, "received_at": now})
    if not moved:
        return False, []
    changes: dict[str, Any] = {"state": state.value, "status_code": tracking.status_code,
                               "status_message": tracking.status_message, "status_at": tracking.at}
    if state in FINAL:
        changes["next_poll_at"] = None
    if state is DeliveryState.DELIVERED:
        changes["delivered_at"] = tracking.at
    deliveries.change(conn, delivery["id"], now=now, **changes)
    _announce(conn, {**delivery, **changes}, now=now)
    publish: list[tuple[int, str]] = []
    if state is DeliveryState.DELIVERED:  # the national portal learns the result was returned (status 10)
        job = outbox.NewJob(postal.QUEUE, postal.RETURNED, f"delivery:{delivery['reference']}",
                            {"reference": delivery["reference"]})
        job_id, waiting = outbox.enqueue(conn, job, now=now, max_attempts=ctx.jobs.max_attempts)
        publish = [] if waiting else [(job_id, postal.QUEUE)]
    return True, publish


def refuse_callback(ctx: Context, provider: str, reason: str, *, remote_addr: str | None) -> None:
    """A callback that failed its signature: on the audit record, for whoever looks for forgeries."""
    with ctx.engine.begin() as conn:
        audit.record(conn, actor=provider, action="delivery.callback_refused", subject=provider,
                     at=server_clock.now(), detail={"reason": reason, "remote_addr": remote_addr})
    log.warning("%s tracking callback from %s refused: %s", provider, remote_addr, reason)


def tracking_callback(ctx: Context, order_number: str, tracking: Tracking) -> bool:
    """A tracking update pushed by the post; True if it moved the delivery."""
    now = server_clock.now()
    with ctx.engine.begin() as conn:
        delivery = deliveries.by_order_number(conn, order_number, for_update=True)
        if delivery is None:
            raise NotFound(f"no delivery for order {order_number}")
        moved, publish = apply_tracking(ctx, conn, delivery, tracking, via="callback", now=now)
    ctx.publish_after_commit(publish)
    return moved


class DeliveryJobs:
    """The worker's side: book at VNPost, poll tracking, report the returned result."""

    def __init__(self, ctx: Context, client: VNPostClient) -> None:
        self.ctx = ctx
        self.client = client

    def _load(self, reference: str) -> RowMapping:
        with reading(self.ctx.engine) as conn:
            delivery = deliveries.by_reference(conn, reference)
        if delivery is None:
            raise PermanentError(f"no delivery {reference}")
        return delivery

    def book(self, payload: dict[str, Any]) -> None:
        delivery = self._load(payload["reference"])
        if delivery["state"] != DeliveryState.BOOKING:
            return  # booked already: a job run twice
        receiver = {k: v for k, v in delivery["receiver"].items() if k != "description"}
        sender = self.ctx.postal.sender
        order = Order(delivery["dossier_code"], delivery["cod_amount"],
                      {"Name": sender.name, "Address": sender.address, "Province": sender.province, "Tel": sender.tel,
                       "Email": sender.email}, receiver, delivery["receiver"].get("description", ""))
        try:
            waybill = self.client.book(order)
        except AdapterError as exc:
            with self.ctx.engine.begin() as conn:
                deliveries.change(conn, delivery["id"], now=server_clock.now(),
                                  last_error=f"{type(exc).__name__}: {exc}")
            raise
        now = server_clock.now()
        with self.ctx.engine.begin() as conn:
            current = deliveries.by_reference(conn, delivery["reference"], for_update=True)
            if current is None or current["state"] != DeliveryState.BOOKING:
                return
            dossier = dossiers.get(conn, delivery["dossier_code"])
            # No status_at: the post's own clock (whole seconds) dates its updates; ours must not outrank them.
            changes = {"state": DeliveryState.BOOKED.value, "waybill": waybill, "status_code": "100",
                       "status_message": STATE_LABELS_VI[DeliveryState.BOOKED], "last_error": None,
                       "next_poll_at": now + timedelta(seconds=self.ctx.postal.poll_every_seconds)}
            trip = OneTrip()  # the delivery, its history, the feed item and the citizen's messages: one statement
            deliveries.add_change(trip, delivery["id"], changes, now=now)
            deliveries.add_events(trip, [{"delivery_id": delivery["id"], "status_code": "100",
                                          "status_message": changes["status_message"], "at": now, "via": "booking",
                                          "applied": True, "received_at": now}])
            _add_announcement(trip, {**current, **changes}, now=now)
            told = notifications.tell_applicant(self.ctx, trip, dict(dossier), RESULT_POSTED,
                                                cause=f"delivery:{delivery['reference']}", origin="delivery", now=now,
                                                context={"waybill": waybill, "cod_amount": delivery["cod_amount"]})
            trip.run(conn)
        self.ctx.publish_after_commit(outbox.to_publish(told) if told is not None else [])

    def book_dead(self, conn: Connection, payload: dict[str, Any], error: str) -> None:
        delivery = deliveries.by_reference(conn, payload["reference"], for_update=True)
        if delivery is not None and delivery["state"] == DeliveryState.BOOKING:
            now = server_clock.now()
            changes = {"state": DeliveryState.FAILED.value, "last_error": error}
            deliveries.change(conn, delivery["id"], now=now, **changes)
            _announce(conn, {**delivery, **changes}, now=now)

    def track(self, payload: dict[str, Any]) -> None:
        delivery = self._load(payload["reference"])
        if DeliveryState(delivery["state"]) in FINAL or delivery["state"] == DeliveryState.BOOKING:
            return
        tracking = self.client.track(delivery["dossier_code"])
        if tracking is None:
            raise PermanentError(f"VNPost does not know order {delivery['dossier_code']}")
        now = server_clock.now()
        with self.ctx.engine.begin() as conn:
            current = deliveries.by_reference(conn, delivery["reference"], for_update=True)
            _, publish = apply_tracking(self.ctx, conn, current, tracking, via="poll", now=now)
        self.ctx.publish_after_commit(publish)

    def returned(self, payload: dict[str, Any]) -> None:
        delivery = self._load(payload["reference"])
        note = f"Đã phát kết quả qua bưu chính công ích, số hiệu bưu gửi {delivery['waybill']}"
        event = EventIn(status=int(Status.RESULT_RETURNED), at=delivery["delivered_at"], note=note,
                        event_id=f"delivery:{delivery['reference']}")
        try:
            steps.record_event(self.ctx, delivery["dossier_code"], event, actor="postal")
        except ServiceError as exc:
            with self.ctx.engine.connect() as conn:
                dossier = dossiers.get(conn, delivery["dossier_code"])
            if dossier is not None and dossier["status"] == Status.RESULT_RETURNED:
                return  # the one-stop software reported it already
            raise PermanentError(f"status 10 for {delivery['dossier_code']} refused: {exc.message}") from exc

    def schedule_polls(self) -> int:
        """Queue a tracking poll for each open delivery whose turn has come (run by every worker's sweeper)."""
        now = server_clock.now()
        ready: list[tuple[int, str]] = []
        with self.ctx.engine.begin() as conn:
            due = deliveries.due_for_poll(conn, now=now, limit=POLL_BATCH)
            for delivery in due:
                job = outbox.NewJob(postal.QUEUE, postal.TRACK, f"delivery:{delivery['reference']}",
                                    {"reference": delivery["reference"]})
                job_id, waiting = outbox.enqueue(conn, job, now=now, max_attempts=self.ctx.jobs.max_attempts)
                if not waiting:
                    ready.append((job_id, postal.QUEUE))
            deliveries.schedule_polls(conn, [d["id"] for d in due],
                                      now + timedelta(seconds=self.ctx.postal.poll_every_seconds))
        self.ctx.publish_after_commit(ready)
        return len(due)
