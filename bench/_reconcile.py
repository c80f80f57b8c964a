"""Reconciliation: what the gateway accepted (the load's ledger, and what it stored in consequence) against
what every mock received. Lost = accepted and missing at the partner; duplicate = an effect twice."""

from __future__ import annotations

import collections
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import _observe as observe
import requests
import sqlalchemy as sa
from _feed_reader import FeedRead
from _mixed import Ledger

from gateway.adapters.sms_email.viettel import numeric_request_id

# A citizen hears of each of these steps (domain/notifications.py STATUS_TEMPLATES); 4 is internal.
TOLD = {2: "accepted", 9: "result_ready", 10: "result_returned"}
PAYMENT_NOTE = "Đã thanh toán trực tuyến"  # how the gateway words a payment at the national portal
CHANNELS = 2  # the sample applicant gives a phone and an email
# The gateway's Message-ID is <REFERENCE@sender's domain>, the same on every attempt.
_REFERENCE = re.compile(r"<(TB[0-9A-F]+)@")


@dataclass
class Reconciliation:
    figures: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        out = [f"  {name:<22} " + ", ".join(f"{k} {v:,}" for k, v in figures.items())
               for name, figures in self.figures.items()]
        out += [f"  PROBLEM {p}" for p in self.problems[:25]]
        if len(self.problems) > 25:
            out.append(f"  ... and {len(self.problems) - 25} more problems")
        return out


def _rows(db_url: str, sql: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).mappings())
    finally:
        engine.dispose()


def _get(url: str) -> Any:
    reply = requests.get(url, timeout=120)
    reply.raise_for_status()
    return reply.json()


def reconcile(mocks: Callable[[str], str], db_url: str, ledger: Ledger, notifications: bool = True,
              feed: FeedRead | None = None) -> Reconciliation:
    r = Reconciliation()
    _national_portal(r, mocks, db_url, ledger)
    _payments(r, mocks, db_url, ledger)
    _deliveries(r, mocks, db_url, ledger)
    _notifications(r, mocks, db_url, ledger, notifications)
    if feed is not None:
        _feed(r, db_url, feed)
    if ledger.refused:
        r.problems += [f"refused by the gateway: {x}" for x in ledger.refused[:10]]
    return r


def _national_portal(r: Reconciliation, mocks: Callable[[str], str], db_url: str, ledger: Ledger) -> None:
    """Each dossier created once, holding exactly its accepted steps in order, and one record of its payment
    once paid (the gateway mirrors a payment as a progress record of its own)."""
    held = observe.portal_state(mocks("/national-portal"))
    paid = {row["dossier_code"] for row in _rows(db_url, "SELECT dossier_code FROM payments WHERE state = 'paid'")}
    problems = []
    for code, record in held.items():
        progress = record.get("progress", [])
        payments = [p for p in progress if str(p.get("NoiDungXuLy", "")).startswith(PAYMENT_NOTE)]
        record["progress"] = [p for p in progress if p not in payments]
        if len(payments) != (code in paid):
            problems.append(f"{code}: {len(payments)} payment records at the portal, {int(code in paid)} paid")
    problems += observe.verify(mocks("/national-portal"), sorted(ledger.filed), ledger.steps, held)
    r.figures["national portal"] = {"dossiers accepted": len(ledger.filed), "steps accepted": ledger.events,
                                    "payments mirrored": len(paid), "problems": len(problems)}
    r.problems += problems


def _payments(r: Reconciliation, mocks: Callable[[str], str], db_url: str, ledger: Ledger) -> None:
    orders = _get(mocks("/payment/_mock/state"))["orders"].get("national_platform", {})
    ours = {row["reference"]: row for row in _rows(db_url, "SELECT reference, dossier_code, state FROM payments")}
    paid_items = collections.Counter(row["code"] for row in _rows(
        db_url, "SELECT code FROM feed_items WHERE type = 'payment.paid'"))
    settled = {ref for ref, order in orders.items() if str(order.get("status", "")).lower() == "paid"}
    problems = [f"payment {ref} ({code}): asked, not at the platform" for code, ref in ledger.payments.items()
                if ref not in orders]
    problems += [f"payment {ref}: at the platform, unknown to the gateway" for ref in orders if ref not in ours]
    problems += [f"payment {ref} ({ours[ref]['dossier_code']}): paid at the platform, {ours[ref]['state']} at the "
                 "gateway" for ref in settled if ref in ours and ours[ref]["state"] != "paid"]
    problems += [f"{code}: callback accepted, payment {ledger.payments[code]} not paid at the gateway"
                 for code in ledger.paid if ours.get(ledger.payments[code], {}).get("state") != "paid"]
    twice = {code: n for code, n in paid_items.items() if n > 1}
    problems += [f"{code}: payment.paid {n} times in the feed" for code, n in twice.items()]
    r.figures["payment platform"] = {"asked": len(ledger.payments), "at platform": len(orders),
                                     "paid at platform": len(settled), "callbacks accepted": len(ledger.paid),
                                     "paid at gateway": sum(1 for p in ours.values() if p["state"] == "paid"),
                                     "paid twice": len(twice)}
    r.problems += problems


def _deliveries(r: Reconciliation, mocks: Callable[[str], str], db_url: str, ledger: Ledger) -> None:
    orders = _get(mocks("/postal/_mock/state"))["orders"]
    ours = {row["dossier_code"]: row for row in _rows(db_url, "SELECT dossier_code, state, waybill FROM deliveries")}
    problems = [f"delivery {code}: booked, no order at VNPost" for code in ledger.deliveries if code not in orders]
    problems += [f"delivery {code}: at VNPost, unknown to the gateway" for code in orders if code not in ours]
    problems += [f"delivery {code}: waybill {ours[code]['waybill']} at the gateway, {order.get('ItemCode')} at VNPost"
                 for code, order in orders.items() if code in ours and ours[code]["waybill"] != order.get("ItemCode")]
    r.figures["VNPost"] = {"booked": len(ledger.deliveries), "orders at VNPost": len(orders),
                           "with waybill at gateway": sum(1 for d in ours.values() if d["waybill"])}
    r.problems += problems


def _expected_notifications(ledger: Ledger, deliveries: int) -> collections.Counter[str]:
    want: collections.Counter[str] = collections.Counter()
    want["received"] = len(ledger.filed)
    for steps in ledger.steps.values():
        for status in {s for s, _ in steps}:
            if status in TOLD:
                want[TOLD[status]] += 1
    want["payment_required"] = len(ledger.payments)
    want["result_posted"] = deliveries
    return collections.Counter({k: v * CHANNELS for k, v in want.items() if v})


def _notifications(r: Reconciliation, mocks: Callable[[str], str], db_url: str, ledger: Ledger, enabled: bool) -> None:
    rows = _rows(db_url, "SELECT reference, channel, template, state FROM notifications")
    booked = _rows(db_url, "SELECT count(*) AS n FROM deliveries WHERE waybill IS NOT NULL")[0]["n"]
    stored = collections.Counter(row["template"] for row in rows)
    want = _expected_notifications(ledger, booked) if enabled else collections.Counter()
    problems = [f"notifications '{t}': {stored[t]} stored, {n} expected" for t, n in want.items() if stored[t] != n]
    problems += [f"notification {row['reference']} ({row['template']}, {row['channel']}): {row['state']}"
                 for row in rows if row["state"] != "sent"][:10]
    # Viettel knows a message by a decimal RequestID derived from our reference; VNPT by the reference itself.
    by_viettel_id = {numeric_request_id(row["reference"]): row["reference"] for row in rows}
    sms = [by_viettel_id.get(m["request_id"], m["request_id"]) if provider == "viettel" else m["request_id"]
           for provider in ("viettel", "vnpt") for m in _get(mocks(f"/sms/{provider}/_mock/messages"))["messages"]]
    received_mails = _get(mocks("/email/_mock/messages"))["messages"]
    # A repeat with the same Message-ID (a send retried after a crash) is one message in the mailbox.
    mails = [m.get("message_id") or "" for m in received_mails if "repeat_of" not in m]
    resent = len(received_mails) - len(mails)
    received = collections.Counter(sms) + collections.Counter(
        match.group(1) for mid in mails if (match := _REFERENCE.search(mid)))
    sent = {row["reference"] for row in rows if row["state"] == "sent"}
    missing = [ref for ref in sent if not received[ref]]
    twice = [ref for ref, n in received.items() if n > 1]
    strangers = [ref for ref in received if ref not in sent]
    problems += [f"notification {ref}: sent by the gateway, not at the SMS or SMTP mock" for ref in missing[:10]]
    problems += [f"notification {ref}: received {received[ref]} times" for ref in twice[:10]]
    problems += [f"message {ref}: at a mock, not sent by the gateway" for ref in strangers[:10]]
    r.figures["SMS + email"] = {"expected": sum(want.values()), "stored": len(rows), "sent": len(sent),
                                "SMS at mocks": len(sms), "emails at mock": len(mails), "missing": len(missing),
                                "received twice": len(twice), "emails resent, same Message-ID": resent}
    r.problems += problems


def _feed(r: Reconciliation, db_url: str, read: FeedRead) -> None:
    """The one-stop software's reader saw every item the gateway wrote, once, in rising cursor order."""
    written = _rows(db_url, "SELECT count(*) AS n FROM feed_items")[0]["n"]
    cursors = read.cursors
    twice = len(cursors) - len(set(cursors))
    backwards = sum(1 for a, b in zip(cursors, cursors[1:], strict=False) if b <= a)
    r.figures["one-stop feed"] = {"items written": written, "read": len(set(cursors)), "read twice": twice,
                                  "out of order": backwards, "pages": read.pages, "pages failed": read.failures}
    if len(set(cursors)) != written:
        r.problems.append(f"feed: {written:,} items written, {len(set(cursors)):,} read")
    if twice or backwards:
        r.problems.append(f"feed: {twice} items read twice, {backwards} cursors out of order")
