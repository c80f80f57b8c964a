"""The optional webhook push of the change feed: signed Standard Webhooks style, in order, at least once,
and nothing lost when the one-stop software is down for a while."""

from __future__ import annotations

import time

import pytest
import requests

from gateway.adapters.webhooks.standard_webhooks import sign, verify

from .conftest import dossier_body, wait_for
from .test_api_one_stop import read_feed

SECRET = "whsec_b25lLXN0b3Atd2ViaG9vay1zZWNyZXQtZGV2"


def test_a_signature_verifies_only_as_sent():
    body, stamp = b'{"items":[]}', int(time.time())
    signature = sign(SECRET, "feed-1-2", stamp, body)
    assert signature.startswith("v1,")
    assert verify(SECRET, "feed-1-2", str(stamp), body, signature, now=stamp)
    assert verify(SECRET, "feed-1-2", str(stamp), body, f"v1,AAAA {signature}", now=stamp)  # one of several
    assert not verify(SECRET, "feed-1-2", str(stamp), body + b" ", signature, now=stamp)
    assert not verify(SECRET, "feed-1-3", str(stamp), body, signature, now=stamp)
    assert not verify("whsec_" + "b3RoZXI=", "feed-1-2", str(stamp), body, signature, now=stamp)
    assert not verify(SECRET, "feed-1-2", str(stamp), body, signature, now=stamp + 301)  # replayed too late
    with pytest.raises(ValueError):
        sign("not-a-secret", "x", stamp, body)


def _pushed(gw) -> list[dict]:
    return requests.get(f"{gw.one_stop.base}/_mock/items", timeout=5).json()["items"]


def _without_bodies(items: list[dict]) -> list[dict]:
    """The items with their attachments' bodies (or the note that the archive holds them now) left out."""
    def strip(item: dict) -> dict:
        attachments = [{k: v for k, v in a.items() if k not in {"content_base64", "archived"}}
                       for a in item["data"].get("attachments", [])] if isinstance(item.get("data"), dict) else None
        return {**item, "data": {**item["data"], "attachments": attachments}} if attachments is not None else item
    return [strip(i) for i in items]


def _feed_from(gw, after: int) -> list[dict]:
    items, cursor = [], after
    while page := read_feed(gw, cursor, limit=500)["items"]:
        items += page
        cursor = int(page[-1]["cursor"])
    return items


def test_the_feed_reaches_the_one_stop_software_in_order(gw):
    codes = [gw.file(dossier_body())["code"] for _ in range(3)]
    # A worker killed by an earlier test may still hold the pusher's lease: allow for it to run out.
    pushed = wait_for(lambda: (items := _pushed(gw)) and set(codes) <= {i["code"] for i in items} and items,
                      timeout=60)
    cursors = [int(i["cursor"]) for i in pushed]
    assert cursors == sorted(cursors) and len(cursors) == len(set(cursors))  # in order, each once
    # What was pushed is exactly the feed, item for item (but for the bodies data minimisation took out of the
    # feed since: tests/test_archive_minimise.py runs on the same stack).
    assert _without_bodies(pushed) == _without_bodies(_feed_from(gw, cursors[0] - 1)[: len(pushed)])
    verdicts = {r["verdict"] for r in gw.one_stop.requests() if r["service"] == "webhook"}
    assert "accepted" in verdicts and not verdicts & {"bad signature", "timestamp outside tolerance"}


def test_a_receiver_down_for_a_while_loses_nothing(gw):
    gw.one_stop.faults("http_500", 4)
    gw.one_stop.faults("drop", 1)  # then one batch taken but its answer lost: sent again, ignored as a repeat
    codes = [gw.file(dossier_body())["code"] for _ in range(3)]

    def verdicts() -> list[str]:
        return [r["verdict"] for r in gw.one_stop.requests() if r["service"] == "webhook"]

    # The batch whose answer was lost comes again under the same id, and is not applied twice.
    wait_for(lambda: "duplicate" in verdicts(), timeout=60)
    pushed = wait_for(lambda: (items := _pushed(gw)) and set(codes) <= {i["code"] for i in items} and items,
                      timeout=60)
    cursors = [int(i["cursor"]) for i in pushed]
    assert cursors == sorted(cursors) and len(cursors) == len(set(cursors))
    assert verdicts().count("fault") >= 4


def test_the_receiver_refuses_forgeries(gw):
    body, stamp = b'{"items":[]}', int(time.time())
    forged = requests.post(f"{gw.one_stop.base}/webhooks", data=body, timeout=5, headers={
        "webhook-id": "x", "webhook-timestamp": str(stamp), "webhook-signature": sign(
            "whsec_" + "Zm9yZ2Vk", "x", stamp, body)})
    assert forged.status_code == 401
    stale = requests.post(f"{gw.one_stop.base}/webhooks", data=body, timeout=5, headers={
        "webhook-id": "y", "webhook-timestamp": str(stamp - 3600), "webhook-signature": sign(
            SECRET, "y", stamp - 3600, body)})
    assert stale.status_code == 401


class _Receiver:
    """A receiver that keeps what it is sent by webhook id, as the one-stop mock does."""

    def __init__(self) -> None:
        self.batches: dict[str, list[int]] = {}

    def deliver(self, msg_id: str, payload: dict) -> None:
        self.batches.setdefault(msg_id, [int(i["cursor"]) for i in payload["items"]])


class _Died(BaseException):
    """A worker dying at the worst moment: nothing after it runs, not even `except Exception`."""


def _append_feed(engine, n: int) -> None:
    from datetime import UTC, datetime

    from gateway.store import feed

    with engine.begin() as conn:
        for _ in range(n):
            feed.append(conn, type="status", code="X", at=datetime.now(UTC), data={})


def test_a_pusher_that_dies_mid_push_hands_over_without_a_second_copy_of_anything(engine, monkeypatch):
    from sqlalchemy import update

    from gateway.config import JobSettings, WebhookSettings
    from gateway.services.one_stop import webhook_push
    from gateway.store.tables import webhook_cursor

    receiver = _Receiver()
    pusher = webhook_push.WebhookPusher(engine, WebhookSettings(url="http://one-stop", batch_size=5), JobSettings(),
                                        client=receiver)
    _append_feed(engine, 8)  # one full batch and a short one
    with monkeypatch.context() as m:  # the worker dies after both batches were taken, before it tidies up
        m.setattr(webhook_push.webhook_cursor, "release", lambda *a, **k: (_ for _ in ()).throw(_Died()))
        with pytest.raises(_Died):
            pusher.push()
    assert receiver.batches == {"feed-1-5": [1, 2, 3, 4, 5], "feed-6-8": [6, 7, 8]}
    _append_feed(engine, 4)  # the feed goes on while the dead pusher's lease runs out
    with engine.begin() as conn:
        conn.execute(update(webhook_cursor).values(leased_until=None))
    assert pusher.push() == 4  # the next pusher starts where the receiver is, not where the dead one started
    cursors = [c for batch in receiver.batches.values() for c in batch]
    assert sorted(cursors) == list(range(1, 13)) and len(cursors) == len(set(cursors)), receiver.batches


def test_a_batch_whose_answer_never_came_is_resent_under_its_own_id_after_a_takeover(engine, monkeypatch):
    from sqlalchemy import update

    from gateway.config import JobSettings, WebhookSettings
    from gateway.services.one_stop import webhook_push
    from gateway.store.tables import webhook_cursor

    receiver, sent = _Receiver(), []

    class DiesWhileSending(_Receiver):
        def deliver(self, msg_id: str, payload: dict) -> None:
            receiver.deliver(msg_id, payload)  # the receiver took it; the worker died before the answer
            sent.append(msg_id)
            raise _Died

    settings = WebhookSettings(url="http://one-stop", batch_size=5)
    _append_feed(engine, 3)
    with pytest.raises(_Died):
        webhook_push.WebhookPusher(engine, settings, JobSettings(), client=DiesWhileSending()).push()
    _append_feed(engine, 4)
    with engine.begin() as conn:
        conn.execute(update(webhook_cursor).values(leased_until=None))
    again = _Receiver()
    webhook_push.WebhookPusher(engine, settings, JobSettings(), client=again).push()
    assert list(again.batches) == ["feed-1-3", "feed-4-7"]  # the same bounds first, then what is new
    assert sent == ["feed-1-3"]
