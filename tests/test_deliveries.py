"""VNPost delivery and the 8-working-hour watch end to end, on both stacks (a real `gateway serve` takes
the post's signed callbacks)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import update

from gateway.adapters.postal.callback_signature import sign
from gateway.services.dossiers import sla
from gateway.store.tables import deliveries

from .conftest import dossier_body, wait_for
from .test_payments import feed

ONE_STOP = {"Authorization": "Bearer dev-one-stop-key"}


def result_ready(gw) -> str:
    code = gw.file(dossier_body())["code"]
    for status in (2, 4, 9):
        gw.step(code, status)
    return code


def book(gw, code: str, **body):  # noqa: ANN001, ANN201
    return gw.client.post(f"/api/v1/dossiers/{code}/deliveries", json=body, headers=ONE_STOP)


def delivery(gw, code: str) -> dict:
    return gw.get(f"/api/v1/dossiers/{code}/deliveries").get_json()


def test_booking_twice_gives_the_same_waybill_and_tells_the_citizen(gw):
    code = result_ready(gw)
    first = book(gw, code, cod_amount=25000)
    assert first.status_code == 201, first.get_json()
    waybill = first.get_json()["waybill"]
    assert waybill and first.get_json()["state"] == "booked"
    again = book(gw, code, cod_amount=25000)
    assert again.status_code == 200 and again.get_json()["waybill"] == waybill
    assert book(gw, code, cod_amount=0).status_code == 409  # other details: not silently a second order
    order = requests.get(f"{gw.post_office.base}/_mock/state/{code}", timeout=5).json()
    assert order["ItemCode"] == waybill and order["CODAmount"] == 25000
    assert order["Receiver"]["Commune"] == "Phường Ba Đình" and not order["Receiver"].get("District")
    posted = [n for n in gw.get(f"/api/v1/dossiers/{code}/notifications").get_json()["items"]
              if n["template"] == "result_posted" and n["channel"] == "sms"]
    assert len(posted) == 1 and waybill in posted[0]["body"]


def test_a_lost_booking_answer_keeps_its_waybill(gw):
    code = result_ready(gw)
    gw.post_office.faults("drop", 1, services=["CreateOrder"])  # VNPost creates the order; the answer is lost
    r = book(gw, code)
    assert r.status_code == 202 and r.get_json()["state"] == "booking"
    booked = wait_for(lambda: (d := delivery(gw, code))["state"] == "booked" and d, 30, what="the retried booking")
    order = requests.get(f"{gw.post_office.base}/_mock/state/{code}", timeout=5).json()
    assert booked["waybill"] == order["ItemCode"]  # the retry met "already exists" and read the order back


def test_tracking_callbacks_out_of_order_never_move_a_delivery_back(gw):
    api = gw.api_url  # the post calls back a real server
    assert api
    code = result_ready(gw)
    assert book(gw, code).status_code == 201
    for status in ("300", "500"):
        answer = gw.post_office.post(f"/_mock/advance/{code}", {"statusCode": status})
        assert answer["callback"]["status"] == 200, answer
    assert delivery(gw, code)["state"] == "delivered"
    late = gw.post_office.post(f"/_mock/push/{code}", {"statusCode": "400"})  # an older update arrives late
    assert late["callback"]["body"] == {"status": "ok", "applied": False}
    view = delivery(gw, code)
    assert view["state"] == "delivered" and view["tracking"][-1] == {**view["tracking"][-1], "applied": False}
    # Delivered: the national portal hears status 10, and the one-stop feed has each change once.
    wait_for(lambda: gw.get(f"/api/v1/dossiers/{code}").get_json()["status"] == 10, 30, what="status 10")
    wait_for(lambda: (gw.portal.dossier(code) or {}).get("TrangThaiHoSo") == 10, 30,
             what="status 10 at the national portal")
    states = [i["data"]["state"] for i in feed(gw, code, "delivery.updated")]
    assert states == ["booked", "in_transit", "delivered"]


def test_forged_or_unknown_callbacks_are_refused(gw):
    api = gw.api_url
    code = result_ready(gw)
    assert book(gw, code).status_code == 201
    body = json.dumps({"orderNumber": code, "statusCode": "500", "statusMessage": "Phát thành công",
                       "at": datetime.now(UTC).isoformat()}).encode()
    url = f"{api}/api/v1/callbacks/postal/vnpost"
    forged = requests.post(url, data=body, headers={"X-VNPost-Signature": sign(body, "wrong"),
                                                    "Content-Type": "application/json"}, timeout=5)
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "bad_signature"
    secret = gw.settings.postal.callback_secret
    bad_code = body.replace(b'"500"', b'"999"')
    r = requests.post(url, data=bad_code, headers={"X-VNPost-Signature": sign(bad_code, secret)}, timeout=5)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_status_code"
    for garbage in (b"not json", body.replace(datetime.now(UTC).isoformat()[:4].encode(), b"0001", 1)):
        r = requests.post(url, data=garbage, headers={"X-VNPost-Signature": sign(garbage, secret)}, timeout=5)
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_callback", garbage
    assert delivery(gw, code)["state"] == "booked"


def test_polling_follows_tracking_without_callbacks(gw):
    code = result_ready(gw)
    assert book(gw, code).status_code == 201
    gw.post_office.post(f"/_mock/advance/{code}", {"statusCode": "400", "push": False})
    with gw.gateway.engine.begin() as conn:  # make the poll due now instead of in half an hour
        conn.execute(update(deliveries).where(deliveries.c.dossier_code == code)
                     .values(next_poll_at=datetime.now(UTC) - timedelta(seconds=1)))
    polled = wait_for(lambda: (d := delivery(gw, code))["state"] == "out_for_delivery" and d, 30, what="a poll")
    assert polled["tracking"][-1]["via"] == "poll"


def test_booking_refuses_what_it_cannot_deliver(gw):
    code = gw.file(dossier_body())["code"]
    assert book(gw, code).status_code == 409  # no result yet
    ready = result_ready(gw)
    for body, status in (({"cod_amount": 1.5}, 422), ({"cod_amount": -1}, 422), ({"cod_amount": "100"}, 422),
                         ({"receiver": {"name": "A", "phone": "123", "address": {"province": "Huế"}}}, 422)):
        r = book(gw, ready, **body)
        assert r.status_code == status and "error" in r.get_json(), (body, r.get_json())
    assert book(gw, "000.00.00.H56-240725-9999").status_code == 404


def test_new_dossiers_past_their_deadline_are_listed_counted_and_announced_once(gw):
    late = gw.file(dossier_body())["code"]  # filed on 2024-07-25: long past 8 working hours
    fresh = gw.file(dossier_body(submitted_at=datetime.now(UTC).isoformat()))["code"]
    assert gw.get(f"/api/v1/dossiers/{late}").get_json()["acknowledge_by"] == "2024-07-26T09:15:00+07:00"
    listed: list[str] = []
    after = 0
    while page := gw.get(f"/ops/sla-breaches?after={after}&limit=1000", key="dev-ops-key").get_json()["items"]:
        listed += [i["code"] for i in page]
        after = gw.get(f"/ops/sla-breaches?after={after}&limit=1000", key="dev-ops-key").get_json()["next_after"]
    assert late in listed and fresh not in listed

    def announced() -> list:
        return feed(gw, late, "dossier.sla_breached")

    wait_for(announced, 30, what="the breach in the feed")
    sla.announce(gw.gateway.context)  # another scan finds nothing new to say
    assert len(announced()) == 1
    metrics = gw.get("/metrics", key="dev-ops-key").get_data(as_text=True)
    count = next(line for line in metrics.splitlines() if line.startswith("gateway_sla_breaches "))
    assert float(count.split()[1]) >= 1
    gw.step(late, 2)  # accepted: no longer a breach
    assert late not in [i["code"] for i in gw.get("/ops/sla-breaches?limit=1000", key="dev-ops-key")
                        .get_json()["items"]]


def test_a_tracking_callback_sent_again_is_kept_once(gw):
    """The post sends a callback again when it got no answer (an API host frozen behind the balancer answered
    504, then resumed and took the first copy too): the delivery's tracking history, which its archive
    package keeps for good, holds that update once."""
    code = result_ready(gw)
    assert book(gw, code).status_code == 201
    body = json.dumps({"orderNumber": code, "statusCode": "300", "statusMessage": "Đang vận chuyển",
                       "at": datetime.now(UTC).replace(microsecond=0).isoformat()}).encode()
    headers = {"X-VNPost-Signature": sign(body, gw.settings.postal.callback_secret),
               "Content-Type": "application/json"}
    for _ in range(3):
        r = requests.post(f"{gw.api_url}/api/v1/callbacks/postal/vnpost", data=body, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
    tracking = [t for t in delivery(gw, code)["tracking"] if t["status_code"] == "300"]
    assert len(tracking) == 1 and tracking[0]["applied"] is True, tracking
    assert delivery(gw, code)["state"] == "in_transit"
