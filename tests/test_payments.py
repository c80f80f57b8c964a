"""Level-4 fee payments end to end, on both stacks: the gateway's API (in process for the one-stop calls, a
real `gateway serve` for the providers' callbacks), real worker processes, and the payment mock calling back.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select, update

from gateway.domain.payment import PaymentRequestIn
from gateway.services.payments import orders as service
from gateway.store.tables import audit_log, jobs, payments
from mocks.payment import CALLBACK_ORDER, platform_checksum, vnpay_query_hash

from .conftest import dossier_body, wait_for

FEES = [{"code": "LPKS", "name": "Lệ phí đăng ký khai sinh", "amount": 8000},
        {"code": "PHI-BC", "name": "Phí gửi kết quả qua bưu chính", "amount": 25000}]
ONE_STOP = "dev-one-stop-key"


# Helpers ---------------------------------------------------------------------------------------


def new_dossier(gw, **overrides: Any) -> str:
    return gw.file(dossier_body(**overrides))["code"]


def ask(gw, code: str, items=FEES, key: str | None = None, **extra: Any):  # noqa: ANN201
    headers = {"Authorization": f"Bearer {ONE_STOP}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return gw.client.post(f"/api/v1/dossiers/{code}/payments", json={"items": items, **extra}, headers=headers)


def pending_payment(gw, code: str | None = None, items=FEES, **dossier: Any) -> dict[str, Any]:
    code = code or new_dossier(gw, **dossier)
    r = ask(gw, code, items)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["state"] == "pending"
    return r.get_json()


def payment_row(gw, ref: str) -> dict[str, Any]:
    with gw.gateway.engine.connect() as conn:
        return dict(conn.execute(select(payments).where(payments.c.reference == ref)).mappings().one())


def set_payment(gw, ref: str, **values: Any) -> None:
    """Move a payment's clock: tests make a check due or a payment expire instead of waiting for it."""
    with gw.gateway.engine.begin() as conn:
        conn.execute(update(payments).where(payments.c.reference == ref).values(**values))


def feed(gw, code: str, kind: str | None = None) -> list[dict[str, Any]]:
    items, after = [], 0
    while True:
        page = gw.get(f"/api/v1/one-stop/feed?after={after}&limit=500").get_json()
        items += [i for i in page["items"] if i["code"] == code and (kind is None or i["type"] == kind)]
        if not page["items"]:
            return items
        after = page["next_cursor"]


def audits(gw, subject: str, action: str) -> list[dict[str, Any]]:
    with gw.gateway.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_log).where(
            audit_log.c.subject == subject, audit_log.c.action == action).order_by(audit_log.c.id)).mappings()]


def signed_platform_callback(gw, ref: str, amount: int, code: str = "00", secret: str | None = None) -> dict:
    """A callback as the platform signs it (the mock's own checksum code, not the gateway's)."""
    cfg = gw.payment.config()
    message = {"LoaiBanTin": "PAY", "MaLoi": code, "MaDoiTac": cfg["platform_partner"], "MaThamChieu": ref,
               "SoTien": amount, "MaTienTe": "VND", "MaGiaoDich": "GD-TEST-1", "MaNganHang": "NCB",
               "ThoiGianGD": datetime.now(UTC).strftime("%Y%m%d%H%M%S"), "ThongTinGiaoDich": "x"}
    message["MaXacThuc"] = platform_checksum(message, CALLBACK_ORDER, secret or cfg["platform_secret"])
    return message


def post_callback(gw, provider: str, body: dict) -> requests.Response:
    return requests.post(f"{gw.api_url}/api/v1/callbacks/payments/{provider}", json=body, timeout=10)


def paid(gw, ref: str, timeout: float = 30) -> dict[str, Any]:
    return wait_for(lambda: (p := payment_row(gw, ref))["state"] == "paid" and p, timeout, what=f"{ref} paid")


@pytest.fixture
def pay_gw(gw):
    """The stack with its HTTP API up and a clean payment mock calling it back."""
    assert gw.api_url
    gw.payment.reset()
    yield gw
    gw.payment.reset()


# Asking for a payment --------------------------------------------------------------------------


def test_request_answers_the_pay_url_and_the_feed_announces_it(pay_gw):
    gw = pay_gw
    code = new_dossier(gw)
    r = ask(gw, code, total=33000)
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["state"] == "pending" and body["state_label"] == "Chờ thanh toán"
    assert body["amount"] == 33000 and body["currency"] == "VND" and body["provider"] == "national_platform"
    assert body["pay_url"].endswith(f"/payment/platform/pay/{body['id']}")
    assert r.headers["Location"] == f"/api/v1/dossiers/{code}/payments/{body['id']}"
    order = gw.payment.order("national_platform", body["id"])
    assert order["amount"] == 33000 and order["status"] == "PENDING"
    assert [i["SoTien"] for i in order["receipt"]["PhiLePhi"]] == [8000, 25000]
    [item] = feed(gw, code, "payment.requested")
    assert item["data"]["payment_id"] == body["id"] and item["data"]["pay_url"] == body["pay_url"]
    listed = gw.get(f"/api/v1/dossiers/{code}/payments").get_json()["items"]
    assert [p["id"] for p in listed] == [body["id"]]
    # The pay page a citizen opens: the amount and both buttons, in Vietnamese.
    page = requests.get(body["pay_url"], timeout=5)
    assert page.status_code == 200 and "33.000 VND" in page.text and "Thanh toán" in page.text and "Hủy" in page.text


def test_same_idempotency_key_same_answer_other_body_conflict(pay_gw):
    gw = pay_gw
    code = new_dossier(gw)
    first = ask(gw, code, key="mc-pay-1")
    again = ask(gw, code, key="mc-pay-1")
    assert first.status_code == 201 and again.status_code == 200
    same = ("id", "pay_url", "amount")
    assert [again.get_json()[k] for k in same] == [first.get_json()[k] for k in same]
    other = ask(gw, code, items=[FEES[0]], key="mc-pay-1")
    assert other.status_code == 409 and other.get_json()["error"]["details"]["payment_id"] == first.get_json()["id"]
    elsewhere = ask(gw, new_dossier(gw), key="mc-pay-1")  # the same key for another dossier is another body
    assert elsewhere.status_code == 409
    assert len(gw.get(f"/api/v1/dossiers/{code}/payments").get_json()["items"]) == 1
    inits = [q for q in gw.payment.requests() if q["service"] == "INIT"]
    assert len(inits) == 1


def test_concurrent_requests_with_one_key_make_one_payment(pay_gw):
    gw = pay_gw
    code = new_dossier(gw)
    answers: list[Any] = [None] * 6
    start = threading.Barrier(6)

    def one(n: int) -> None:
        start.wait()
        r = requests.post(f"{gw.api_url}/api/v1/dossiers/{code}/payments", json={"items": FEES}, timeout=30,
                          headers={"Authorization": f"Bearer {ONE_STOP}", "Idempotency-Key": "same-moment"})
        answers[n] = (r.status_code, r.json().get("id"))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({ref for _, ref in answers}) == 1, answers
    assert sorted(status for status, _ in answers) == [200] * 5 + [201]  # one created, five replays
    assert len(gw.get(f"/api/v1/dossiers/{code}/payments").get_json()["items"]) == 1


@pytest.mark.parametrize("items,extra,field", [
    ([{"code": "LP", "name": "Lệ phí", "amount": 8000.0}], {}, "items.0.amount"),  # money is never a float
    ([{"code": "LP", "name": "Lệ phí", "amount": "8000"}], {}, "items.0.amount"),
    ([{"code": "LP", "name": "Lệ phí", "amount": 0}], {}, "items"),
    ([{"code": "LP", "name": "Lệ phí", "amount": -5}], {}, "items.0.amount"),
    ([FEES[0], {**FEES[1], "code": "LPKS"}], {}, "items"),  # codes unique
    ([], {}, "items"),
    (FEES, {"total": 30000}, ""),  # the total is checked against the items
    (FEES, {"total": 33000.0}, "total"),
    (FEES, {"payer_ip": "not-an-ip"}, "payer_ip"),
    (FEES, {"currency": "USD"}, "currency"),  # unknown fields are refused
])
def test_bad_payment_requests_are_422_and_store_nothing(pay_gw, items, extra, field):
    gw = pay_gw
    code = new_dossier(gw)
    r = ask(gw, code, items, **extra)
    assert r.status_code == 422, r.get_json()
    assert field in [d["field"] for d in r.get_json()["error"]["details"]]
    assert gw.get(f"/api/v1/dossiers/{code}/payments").get_json()["items"] == []


def test_requests_refused_for_the_dossier_they_name(pay_gw):
    gw = pay_gw
    assert ask(gw, "000.00.17.H31-240725-9999").status_code == 404
    partly = new_dossier(gw, level="mot_phan")
    r = ask(gw, partly)
    assert r.status_code == 409 and "counter" in r.get_json()["error"]["message"]
    closed = new_dossier(gw)
    gw.step(closed, 3, note="Không đủ điều kiện")
    assert ask(gw, closed).status_code == 409
    bad_key = gw.client.post(f"/api/v1/dossiers/{closed}/payments", json={"items": FEES},
                             headers={"Authorization": f"Bearer {ONE_STOP}", "Idempotency-Key": "có dấu"})
    assert bad_key.status_code == 400 and bad_key.get_json()["error"]["code"] == "bad_idempotency_key"
    assert gw.client.post(f"/api/v1/dossiers/{closed}/payments", json={"items": FEES},
                          headers={"Authorization": "Bearer dev-portal-key"}).status_code == 403
    assert gw.client.post(f"/api/v1/dossiers/{closed}/payments", json={"items": FEES}).status_code == 401


def test_a_fee_already_held_is_not_asked_twice(pay_gw):
    gw = pay_gw
    first = pending_payment(gw)
    code = first["dossier_code"]
    again = ask(gw, code, [FEES[1]])
    assert again.status_code == 409 and again.get_json()["error"]["details"]["payment_id"] == first["id"]
    assert ask(gw, code, [{"code": "PHI-KHAC", "name": "Phí khác", "amount": 5000}]).status_code == 201


def ask_unpaid(gw, code: str, **extra: Any):  # noqa: ANN201
    """A payment request that names no items: the dossier's unpaid fees."""
    return gw.client.post(f"/api/v1/dossiers/{code}/payments", json=extra,
                          headers={"Authorization": f"Bearer {ONE_STOP}"})


def test_without_items_the_unpaid_fees_are_asked_for(pay_gw):
    gw = pay_gw
    free = {"code": "MIEN", "name": "Lệ phí được miễn", "amount": 0}
    code = new_dossier(gw, fees=[*FEES, free])
    r = ask_unpaid(gw, code)
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["amount"] == 33000 and body["state"] == "pending"
    assert sorted(i["code"] for i in body["items"]) == ["LPKS", "PHI-BC"]  # the 0 VND fee is not asked for
    assert [i["SoTien"] for i in gw.payment.order("national_platform", body["id"])["receipt"]["PhiLePhi"]] == [
        8000, 25000]
    # Everything is held by that pending payment now: nothing left to ask for.
    again = ask_unpaid(gw, code)
    assert again.status_code == 409
    error = again.get_json()["error"]
    assert error["code"] == "nothing_to_pay" and "no unpaid fee" in error["message"]
    assert error["details"]["held_by"] == [body["id"]]
    assert len(gw.get(f"/api/v1/dossiers/{code}/payments").get_json()["items"]) == 1


def test_without_items_only_what_is_neither_paid_nor_held_is_asked_for(pay_gw):
    gw = pay_gw
    code = new_dossier(gw, fees=FEES)
    first = pending_payment(gw, code, [FEES[0]])  # LPKS held by a pending payment
    assert ask_unpaid(gw, code, total=8000).status_code == 409  # the unpaid fees total 25000
    rest = ask_unpaid(gw, code, total=25000)
    assert rest.status_code == 201, rest.get_json()
    assert [i["code"] for i in rest.get_json()["items"]] == ["PHI-BC"]
    gw.payment.pay("national_platform", first["id"])
    paid(gw, first["id"])
    gw.payment.pay("national_platform", rest.get_json()["id"], "cancelled")
    wait_for(lambda: payment_row(gw, rest.get_json()["id"])["state"] == "cancelled", 30, what="cancelled")
    # LPKS is paid; the cancelled payment freed PHI-BC, which is asked for again.
    third = ask_unpaid(gw, code)
    assert third.status_code == 201 and [i["code"] for i in third.get_json()["items"]] == ["PHI-BC"]
    assert ask_unpaid(gw, new_dossier(gw, fees=[])).get_json()["error"]["code"] == "nothing_to_pay"


def test_provider_down_during_init_is_retried_then_the_payment_pays(pay_gw):
    gw = pay_gw
    gw.payment.faults("http_500", 2, services=["INIT"])
    code = new_dossier(gw)
    r = ask(gw, code)
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    assert body["state"] == "initiating" and body["pay_url"] is None and "HTTP 500" in body["last_error"]
    ready = wait_for(lambda: (p := gw.get(f"/api/v1/dossiers/{code}/payments/{body['id']}").get_json())
                     ["state"] == "pending" and p, 30, what="the worker's INIT retry")
    assert ready["pay_url"] and ready["last_error"] is None
    assert [i["data"]["pay_url"] for i in feed(gw, code, "payment.requested")] == [ready["pay_url"]]


def test_provider_down_for_good_ends_in_a_clear_failed_state(pay_gw):
    gw = pay_gw
    gw.payment.faults("http_500", 1000, services=["INIT"])
    code = new_dossier(gw)
    r = ask(gw, code)
    assert r.status_code == 202
    ref = r.get_json()["id"]
    failed = wait_for(lambda: (p := gw.get(f"/api/v1/dossiers/{code}/payments/{ref}").get_json())
                      ["state"] == "failed" and p, 60, what="the payment to fail")
    assert failed["state_label"] == "Không khởi tạo được giao dịch" and "HTTP 500" in failed["last_error"]
    [item] = feed(gw, code, "payment.failed")
    assert item["data"]["payment_id"] == ref and "HTTP 500" in item["data"]["error"]
    [dead] = [j for j in gw.jobs(ref) if j["state"] == "dead"]
    assert dead["kind"] == "payment.init" and dead["attempts"] == gw.settings.jobs.max_attempts
    # The fees are free again: the one-stop software can ask anew once the platform is back.
    gw.payment.reset()
    fresh = ask(gw, code)
    assert fresh.status_code == 201
    # An operator reviving the old INIT now must not open a second way to pay the same fees.
    r = gw.client.post(f"/ops/dead-letters/{dead['id']}/retry", headers={"Authorization": "Bearer dev-ops-key"})
    assert r.status_code == 200
    again = wait_for(lambda: (j := gw.jobs(ref)[0])["state"] == "dead" and j["attempts"] == 1 and j, 30,
                     what="the revived INIT to be refused")
    assert f"held by payment {fresh.get_json()['id']}" in again["last_error"]
    assert payment_row(gw, ref)["state"] == "failed" and gw.payment.order("national_platform", ref) is None


def test_a_request_that_dies_during_its_init_leaves_it_to_the_workers(pay_gw):
    """The API process is killed between storing the payment and its INIT: the lease runs out, the
    sweeper hands the INIT to a worker, and the payment becomes payable all the same."""
    gw = pay_gw
    code = new_dossier(gw)
    requested = service.request_payment(gw.gateway.context, code, PaymentRequestIn.model_validate({"items": FEES}),
                                        caller="dev-one-stop", idempotency_key=None, client_ip="10.1.2.3",
                                        attempt_now=lambda queue, claim: None)  # dies before the call
    ref = requested.payment["reference"]
    assert requested.payment["state"] == "initiating"
    with gw.gateway.engine.begin() as conn:  # its lease runs out
        conn.execute(update(jobs).where(jobs.c.ordering_key == ref)
                     .values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))
    ready = wait_for(lambda: (p := payment_row(gw, ref))["state"] == "pending" and p, 30, what="a worker's INIT")
    assert ready["pay_url"] and gw.payment.order("national_platform", ref)["amount"] == 33000


def test_a_permanent_refusal_fails_at_once(pay_gw):
    gw = pay_gw
    gw.payment.configure(platform_partner="SOMEONE-ELSE")  # the platform answers 97: wrong checksum/partner
    r = ask(gw, new_dossier(gw))
    body = r.get_json()
    assert r.status_code == 201 and body["state"] == "failed" and "MaLoi 97" in body["last_error"]


def test_a_slow_platform_answer_is_taken_up_by_the_worker(pay_gw):
    gw = pay_gw
    gw.payment.faults("delay", 1, seconds=3, services=["INIT"])  # longer than the 1.5 s client timeout
    code = new_dossier(gw)
    r = ask(gw, code)
    assert r.status_code == 202 and "Timeout" in r.get_json()["last_error"]
    ref = r.get_json()["id"]
    wait_for(lambda: payment_row(gw, ref)["state"] == "pending", 30, what="the payment to become payable")
    order = gw.payment.order("national_platform", ref)
    assert order is not None and order["amount"] == 33000  # INIT twice, one order at the platform


def test_status_6_with_fees_creates_the_payment(pay_gw):
    gw = pay_gw
    code = new_dossier(gw)
    gw.step(code, 2)
    step = {"status": 6, "note": "Nộp lệ phí", "fees": [FEES[0]], "event_id": "mc-6"}
    r = gw.post(f"/api/v1/dossiers/{code}/events", step, key=ONE_STOP)
    assert r.status_code == 201, r.get_json()
    ref = r.get_json()["payment_id"]
    assert r.get_json()["fees"] == [FEES[0]]
    ready = wait_for(lambda: (p := payment_row(gw, ref))["state"] == "pending" and p, 30, what="INIT by the worker")
    assert ready["amount"] == 8000 and ready["origin"] == "step"
    assert feed(gw, code, "payment.requested")[0]["data"]["pay_url"] == ready["pay_url"]
    repeat = gw.post(f"/api/v1/dossiers/{code}/events", step, key=ONE_STOP)
    assert repeat.status_code == 200 and repeat.get_json()["payment_id"] == ref
    assert len(gw.get(f"/api/v1/dossiers/{code}/payments").get_json()["items"]) == 1


def test_status_6_fees_are_checked(pay_gw):
    gw = pay_gw
    code = new_dossier(gw)
    r = gw.post(f"/api/v1/dossiers/{code}/events", {"status": 2, "fees": [FEES[0]]}, key=ONE_STOP)
    assert r.status_code == 422  # fees go with status 6 only
    r = gw.post(f"/api/v1/dossiers/{code}/events", {"status": 6, "fees": [{**FEES[0], "amount": 1.5}]}, key=ONE_STOP)
    assert r.status_code == 422
    partly = new_dossier(gw, level="mot_phan")
    r = gw.post(f"/api/v1/dossiers/{partly}/events", {"status": 6, "fees": [FEES[0]]}, key=ONE_STOP)
    assert r.status_code == 409
    assert gw.get(f"/api/v1/dossiers/{partly}").get_json()["status"] == 1  # the refused step did not happen
    assert gw.post(f"/api/v1/dossiers/{partly}/events", {"status": 6}, key=ONE_STOP).status_code == 201


# Callbacks -------------------------------------------------------------------------------------


def test_paid_callback_updates_feed_portal_and_receipt(pay_gw):
    gw = pay_gw
    payment = pending_payment(gw)
    code, ref = payment["dossier_code"], payment["id"]
    settled = gw.payment.pay("national_platform", ref)
    [answer] = settled["callbacks"]
    assert answer["status"] == 200 and answer["answer"]["MaLoi"] == "00" and answer["answer_valid"]
    row = paid(gw, ref, timeout=5)  # applied before the callback was answered
    assert row["settled_by"] == "callback" and row["transaction_id"] == settled["order"]["transaction_no"]
    assert row["flag"] is None
    [item] = feed(gw, code, "payment.paid")
    assert item["data"]["amount"] == 33000 and item["data"]["late"] is False
    # The national portal hears it: a progress record, and the fees marked as paid online.
    gw.wait_idle()
    state = gw.portal.dossier(code)
    [note] = [p for p in state["progress"] if "thanh toán trực tuyến" in p["NoiDungXuLy"]]
    assert "33.000 đồng" in note["NoiDungXuLy"] and ref in note["NoiDungXuLy"] and note["TrangThai"] == 1
    assert {f["HinhThucThu"] for f in state["DanhSachLePhi"]} == {"2"}
    # The receipt (GET_BILL) is stored and served.
    view = gw.get(f"/api/v1/dossiers/{code}/payments/{ref}").get_json()
    assert view["receipt_url"] == f"/api/v1/dossiers/{code}/payments/{ref}/receipt"
    pdf = gw.get(view["receipt_url"], key="dev-portal-key")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert ref.encode() in pdf.data
    assert len(audits(gw, ref, "payment.callback")) == 1


def test_receipt_of_an_unpaid_payment_is_404(pay_gw):
    gw = pay_gw
    payment = pending_payment(gw)
    r = gw.get(f"/api/v1/dossiers/{payment['dossier_code']}/payments/{payment['id']}/receipt")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    assert gw.get(f"/api/v1/dossiers/{payment['dossier_code']}/payments/NOPE").status_code == 404


def test_forged_checksum_changes_nothing_and_is_audited(pay_gw):
    gw = pay_gw
    payment = pending_payment(gw)
    ref = payment["id"]
    gw.payment.faults("bad_checksum", 1)
    [answer] = gw.payment.pay("national_platform", ref)["callbacks"]
    assert answer["answer"]["MaLoi"] == "99" and answer["answer_valid"]  # refused, in the platform's terms
    assert "sai mã xác thực" in answer["answer"]["MoTaLoi"]
    # Signed with a secret that is not ours: refused the same way.
    forged = post_callback(gw, "national_platform", signed_platform_callback(gw, ref, 33000, secret="guess"))
    assert forged.status_code == 200 and forged.json()["MaLoi"] == "99"
    assert payment_row(gw, ref)["state"] == "pending"
    assert feed(gw, payment["dossier_code"], "payment.paid") == []
    refused = audits(gw, ref, "payment.callback_refused")
    assert [a["detail"]["verdict"] for a in refused] == ["bad_signature", "bad_signature"]


def test_tampered_amount_changes_nothing(pay_gw):
    gw = pay_gw
    payment = pending_payment(gw)
    ref = payment["id"]
    gw.payment.faults("changed_amount", 1)  # re-signed by the platform, but not what we asked for
    [answer] = gw.payment.pay("national_platform", ref)["callbacks"]
    assert answer["answer"]["MaLoi"] == "99" and "sai số tiền" in answer["answer"]["MoTaLoi"]
    assert payment_row(gw, ref)["state"] == "pending"
    [refusal] = audits(gw, ref, "payment.callback_refused")
    assert refusal["detail"]["verdict"] == "wrong_amount" and refusal["detail"]["amount"] == 34000


def test_unknown_reference_is_refused(pay_gw):
    gw = pay_gw
    r = post_callback(gw, "national_platform", signed_platform_callback(gw, "241124NOSUCHREF0", 8000))
    assert r.status_code == 200 and r.json()["MaLoi"] == "99" and r.json()["MaThamChieu"] == "241124NOSUCHREF0"
    assert audits(gw, "241124NOSUCHREF0", "payment.callback_refused")[0]["detail"]["verdict"] == "unknown_reference"


def test_replayed_callback_is_acknowledged_without_a_second_effect(pay_gw):
    gw = pay_gw
    payment = pending_payment(gw)
    code, ref = payment["dossier_code"], payment["id"]
    [first] = gw.payment.pay("national_platform", ref)["callbacks"]
    for _ in range(3):
        again = post_callback(gw, "national_platform", first["body"])
        assert again.status_code == 200 and again.json()["MaLoi"] == "00"
    assert len(feed(gw, code, "payment.paid")) == 1
    gw.wait_idle()
    notes = [p for p in gw.portal.dossier(code)["progress"] if "thanh toán" in p["NoiDungXuLy"]]
    assert len(notes) == 1
    assert len([j for j in gw.jobs(ref) if j["kind"] == "payment.receipt"]) == 1


def test_two_identical_callbacks_at_the_same_moment_apply_once(pay_gw):
    gw = pay_gw
    payment = pending_payment(gw)
    code, ref = payment["dossier_code"], payment["id"]
    gw.payment.faults("callback_twice", 1)
    callbacks = gw.payment.pay("national_platform", ref)["callbacks"]
    assert [c["answer"]["MaLoi"] for c in callbacks] == ["00", "00"]
    # And a crowd of the same callback at once, across the API server's processes and threads.
    start = threading.Barrier(8)
    answers: list[Any] = [None] * 8

    def one(n: int) -> None:
        start.wait()
        answers[n] = post_callback(gw, "national_platform", callbacks[0]["body"]).json()["MaLoi"]

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == ["00"] * 8
    assert len(feed(gw, code, "payment.paid")) == 1
    assert len(audits(gw, code, "payment.paid")) == 1
    assert len([j for j in gw.jobs(ref) if j["kind"] == "payment.receipt"]) == 1


def test_cancelled_at_the_provider(pay_gw):
    gw = pay_gw
    payment = pending_payment(gw)
    [answer] = gw.payment.pay("national_platform", payment["id"], outcome="cancelled")["callbacks"]
    assert answer["answer"]["MaLoi"] == "00"
    assert payment_row(gw, payment["id"])["state"] == "cancelled"
    assert [i["data"]["state"] for i in feed(gw, payment["dossier_code"], "payment.cancelled")] == ["cancelled"]
    assert ask(gw, payment["dossier_code"]).status_code == 201  # the fees may be asked for again


def test_callbacks_that_are_not_callbacks(pay_gw):
    gw = pay_gw
    url = f"{gw.api_url}/api/v1/callbacks/payments"
    r = requests.post(f"{url}/national_platform", data=b"{not json", timeout=5,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["MaLoi"] == "99"
    r = requests.post(f"{url}/national_platform", json=[1, 2], timeout=5)
    assert r.status_code == 400 and r.json()["MaLoi"] == "99"
    r = requests.post(f"{url}/national_platform", json={"MaThamChieu": {"nested": True}, "SoTien": 1e308},
                      timeout=5)
    assert r.status_code == 200 and r.json()["MaLoi"] == "99" and "mã xác thực" in r.json()["MoTaLoi"]
    # Forged bodies with what no store holds: a NUL (PostgreSQL text), an unpaired surrogate (UTF-8).
    for raw in (b'{"MaThamChieu": "A\\u0000B"}', b'{"MaThamChieu": "A\\ud800B"}'):
        r = requests.post(f"{url}/national_platform", data=raw, timeout=5, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["MaLoi"] == "99"
    r = requests.get(f"{url}/vnpay", params={"vnp_TxnRef": "A\x00B", "vnp_SecureHash": "x"}, timeout=5)
    assert r.status_code == 400 and r.json()["RspCode"] == "99"
    r = requests.post(f"{url}/paypal", json={}, timeout=5)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


# Reconciliation and expiry ---------------------------------------------------------------------


def test_lost_callback_is_settled_by_reconciliation(pay_gw):
    gw = pay_gw
    payment = pending_payment(gw)
    code, ref = payment["dossier_code"], payment["id"]
    gw.payment.faults("no_callback", 1)
    gw.payment.pay("national_platform", ref)
    assert payment_row(gw, ref)["state"] == "pending"  # the platform took the money; we have not heard
    set_payment(gw, ref, next_check_at=datetime.now(UTC))  # the configured delay has passed
    row = paid(gw, ref)
    assert row["settled_by"] == "reconciliation" and row["flag"] is None
    [item] = feed(gw, code, "payment.paid")
    assert item["data"]["via"] == "reconciliation"
    assert [q["service"] for q in gw.payment.requests()].count("QUERY") >= 1
    wait_for(lambda: gw.get(f"/api/v1/dossiers/{code}/payments/{ref}").get_json()["receipt_url"], 30,
             what="the receipt")


def test_unpaid_payment_expires_and_a_late_payment_is_flagged(pay_gw):
    gw = pay_gw
    payment = pending_payment(gw)
    code, ref = payment["dossier_code"], payment["id"]
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    set_payment(gw, ref, expires_at=long_ago, next_check_at=datetime.now(UTC))
    wait_for(lambda: payment_row(gw, ref)["state"] == "expired", 30, what="reconciliation to expire it")
    assert [i["data"]["state"] for i in feed(gw, code, "payment.expired")] == ["expired"]
    # The citizen pays anyway (the platform still had the order open): recorded, and flagged.
    [answer] = gw.payment.pay("national_platform", ref)["callbacks"]
    assert answer["answer"]["MaLoi"] == "00"
    row = paid(gw, ref, timeout=5)
    assert row["flag"] == "confirmed while the payment was expired"
    [item] = feed(gw, code, "payment.paid")
    assert item["data"]["late"] is True
    flagged = gw.get("/ops/payments?flagged=true", key="dev-ops-key").get_json()["items"]
    assert ref in [p["id"] for p in flagged]


def test_paid_for_a_withdrawn_dossier_is_flagged(pay_gw):
    gw = pay_gw
    payment = pending_payment(gw)
    gw.step(payment["dossier_code"], 7, note="Công dân rút hồ sơ")
    gw.payment.pay("national_platform", payment["id"])
    assert paid(gw, payment["id"], timeout=5)["flag"] == "confirmed for a dossier that is already closed"


def test_ops_payment_listing_checks_its_query(pay_gw):
    gw = pay_gw
    assert gw.get("/ops/payments?state=lost", key="dev-ops-key").status_code == 400
    assert gw.get("/ops/payments?flagged=maybe", key="dev-ops-key").status_code == 400
    assert gw.get("/ops/payments").status_code == 403
    payment = pending_payment(gw)
    listed = gw.get("/ops/payments?state=pending", key="dev-ops-key").get_json()["items"]
    assert payment["id"] in [p["id"] for p in listed] and {p["state"] for p in listed} == {"pending"}


def test_paid_after_expiry_before_reconciliation_is_flagged(pay_gw):
    gw = pay_gw
    payment = pending_payment(gw)
    set_payment(gw, payment["id"], expires_at=datetime.now(UTC) - timedelta(minutes=1))
    gw.payment.pay("national_platform", payment["id"])
    assert paid(gw, payment["id"], timeout=5)["flag"] == "confirmed after the payment expired"


# VNPay -----------------------------------------------------------------------------------------


def vnpay_payment(gw) -> dict[str, Any]:
    payment = pending_payment(gw, procedure_code=gw.VNPAY_PROCEDURE)
    assert payment["provider"] == "vnpay"
    page = requests.get(payment["pay_url"], timeout=5)  # the citizen opens the signed pay URL
    assert page.status_code == 200, page.text
    return payment


def test_vnpay_pay_url_ipn_and_replay(pay_gw):
    gw = pay_gw
    payment = vnpay_payment(gw)
    assert "vnp_SecureHash=" in payment["pay_url"] and "vnp_Amount=3300000" in payment["pay_url"]
    order = gw.payment.order("vnpay", payment["id"])
    assert order["amount"] == 33000
    assert order["order_info"] == f"Thanh toan phi, le phi ho so {payment['dossier_code']}"  # VNPay wants ASCII
    settled = gw.payment.pay("vnpay", payment["id"])
    [ipn] = settled["callbacks"]
    assert ipn["answer"] == {"RspCode": "00", "Message": "Confirm Success"}
    row = paid(gw, payment["id"], timeout=5)
    assert row["transaction_id"] == settled["order"]["transaction_no"]
    # VNPay repeats its IPN until it hears 00/02: the repeat is "already confirmed", with no second effect.
    again = requests.get(gw.payment.config()["vnpay_ipn_url"], params=ipn["body"], timeout=5)
    assert again.json() == {"RspCode": "02", "Message": "Order already confirmed"}
    assert len(feed(gw, payment["dossier_code"], "payment.paid")) == 1
    # VNPay issues no receipt.
    assert gw.get(f"/api/v1/dossiers/{payment['dossier_code']}/payments/{payment['id']}").get_json()[
        "receipt_url"] is None


@pytest.mark.parametrize("fault,code", [("bad_checksum", "97"), ("changed_amount", "04")])
def test_vnpay_forged_or_tampered_ipn(pay_gw, fault, code):
    gw = pay_gw
    payment = vnpay_payment(gw)
    gw.payment.faults(fault, 1)
    [ipn] = gw.payment.pay("vnpay", payment["id"])["callbacks"]
    assert ipn["answer"]["RspCode"] == code
    assert payment_row(gw, payment["id"])["state"] == "pending"


def test_vnpay_ipn_for_a_platform_payment_is_unknown(pay_gw):
    """A provider has no say over another provider's payments, even with a valid signature of its own."""
    gw = pay_gw
    payment = pending_payment(gw)  # a national-platform payment
    cfg = gw.payment.config()
    params = {"vnp_Amount": "3300000", "vnp_ResponseCode": "00", "vnp_TmnCode": cfg["vnpay_tmn_code"],
              "vnp_TransactionNo": "1", "vnp_TransactionStatus": "00", "vnp_TxnRef": payment["id"]}
    params["vnp_SecureHash"] = vnpay_query_hash(params, cfg["vnpay_secret"])
    r = requests.get(f"{gw.api_url}/api/v1/callbacks/payments/vnpay", params=params, timeout=5)
    assert r.json()["RspCode"] == "01"
    assert payment_row(gw, payment["id"])["state"] == "pending"


def test_vnpay_lost_ipn_settled_by_querydr(pay_gw):
    gw = pay_gw
    payment = vnpay_payment(gw)
    gw.payment.faults("no_callback", 1)
    gw.payment.pay("vnpay", payment["id"])
    set_payment(gw, payment["id"], next_check_at=datetime.now(UTC))
    assert paid(gw, payment["id"])["settled_by"] == "reconciliation"
    assert "querydr" in [q["service"] for q in gw.payment.requests()]


def test_pay_page_buttons_send_the_callback(pay_gw):
    """The citizen's way through the mock: open the pay page, press Thanh toán."""
    gw = pay_gw
    payment = pending_payment(gw)
    r = requests.post(f"{payment['pay_url']}/pay", timeout=30)
    assert r.status_code == 200 and "Thanh toán thành công" in r.text
    paid(gw, payment["id"], timeout=5)


def test_a_payment_settled_after_the_result_was_returned_keeps_the_portals_return_date(pay_gw):
    """Found by bench/drift.py: the sync that marks the fees paid online carried no NgayTra, so a payment
    settled after status 10 blanked the date the portal shows the citizen."""
    gw = pay_gw
    payment = pending_payment(gw)
    code, ref = payment["dossier_code"], payment["id"]
    for status in (2, 9, 10):
        gw.step(code, status)
    gw.wait_idle()
    returned = gw.portal.dossier(code)["NgayTra"]
    assert returned
    gw.payment.pay("national_platform", ref)
    assert paid(gw, ref)["flag"]  # paid for a closed dossier: recorded, flagged
    gw.wait_idle()
    state = gw.portal.dossier(code)
    assert {f["HinhThucThu"] for f in state["DanhSachLePhi"]} == {"2"} and state["NgayTra"] == returned
