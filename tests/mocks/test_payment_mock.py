"""Tests for the payment mock: national payment platform and VNPay, with a real local callback receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from mocks.server import create_app

P = "/payment"
SECRET, VSECRET = "payment-secret", "VNPAYSECRET"
INIT_ORDER = [
    "LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "SoTien", "LoaiHinhThanhToan", "MaKenhThanhToan",
    "MaThietBi", "NgonNgu", "MaTienTe", "MaNganHang", "ThongTinGiaoDich", "ThoiGianGD", "Ip",
]  # fmt: skip
QUERY_ORDER = ["LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"]
CALLBACK_ORDER = [
    "LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "SoTien", "MaTienTe", "MaGiaoDich", "MaNganHang",
    "ThoiGianGD", "ThongTinGiaoDich",
]  # fmt: skip
REPLY_ORDER = ["MaLoi", "MaDoiTac", "MaThamChieu", "ThoiGianGD"]


def sha(msg: dict, order: list[str]) -> str:
    parts = ["" if msg.get(k) is None else str(msg[k]) for k in order]
    return hashlib.sha256(("|".join(parts) + "|" + SECRET).encode()).hexdigest()


def vhash(params: dict) -> str:
    items = sorted((k, v) for k, v in params.items() if k not in ("vnp_SecureHash", "vnp_SecureHashType"))
    data = "&".join(f"{k}={quote_plus(str(v))}" for k, v in items)
    return hmac.new(VSECRET.encode(), data.encode(), hashlib.sha512).hexdigest()


def vpipe(values: list[str]) -> str:
    return hmac.new(VSECRET.encode(), "|".join(values).encode(), hashlib.sha512).hexdigest()


class Receiver:
    """A real HTTP server on an ephemeral port recording callbacks and answering a configurable JSON."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.answer: Any = None  # None = a correctly signed platform reply / VNPay {"RspCode": "00"}
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def app(self, environ: dict, start_response: Any) -> Any:
        req = Request(environ)
        body = req.get_json(silent=True)
        with self.lock:
            record = {"method": req.method, "path": req.path, "json": body, "args": req.args.to_dict()}
            self.received.append(record | {"t": time.monotonic()})
        answer = self.answer
        if answer is None and req.method == "GET":
            answer = {"RspCode": "00", "Message": "Confirm Success"}
        elif answer is None:  # as the platform's clients answer: the callback's own MaXacThuc handed back
            answer = {"MaLoi": "00", "MoTaLoi": "Thành công", "MaDoiTac": body["MaDoiTac"]}
            answer |= {"MaThamChieu": body["MaThamChieu"], "ThoiGianGD": body["ThoiGianGD"]}
            answer["MaXacThuc"] = body["MaXacThuc"]
        return Response(json.dumps(answer), content_type="application/json")(environ, start_response)

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=3)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture
def app() -> Flask:
    return create_app()


@pytest.fixture
def client(app: Flask, receiver: Receiver) -> FlaskClient:
    c = app.test_client()
    cfg = {"platform_callback_url": f"{receiver.url}/np", "vnpay_ipn_url": f"{receiver.url}/ipn"}
    assert c.post(f"{P}/_mock/config", json=cfg).status_code == 200
    return c


def init_body(ref: str = "REF-1", amount: int = 30000, fees: list[int] | None = None, **extra: Any) -> dict:
    fees = fees if fees is not None else [10000, 20000]
    body = {
        "LoaiBanTin": "INIT", "PhienBan": "1.0", "MaDoiTac": "GATEWAY", "MaThamChieu": ref, "SoTien": amount,
        "LoaiHinhThanhToan": "PAY", "MaKenhThanhToan": "1", "MaThietBi": "1", "NgonNgu": "vi", "MaTienTe": "VND",
        "MaNganHang": None, "ThongTinGiaoDich": "Nộp phí hồ sơ", "ThoiGianGD": "20240725091500", "Ip": "127.0.0.1",
        "ThongTinBienLai": {
            "MaDVC": "DVC", "MaTTHC": "1.003560", "MaHoSo": "HS-1", "MaDonVi": "H56", "HoTenNguoiNop": "Nguyễn A",
            "PhiLePhi": [{"MaPhiLePhi": f"P{i}", "TenPhiLePhi": f"Lệ phí {i}", "SoTien": v}
                         for i, v in enumerate(fees)],
        },
    } | extra  # fmt: skip
    body["MaXacThuc"] = sha(body, INIT_ORDER)
    return body


def query_body(kind: str, ref: str = "REF-1") -> dict:
    body = {"LoaiBanTin": kind, "PhienBan": "1.0", "MaDoiTac": "GATEWAY", "MaThamChieu": ref}
    body["ThoiGianGD"] = "20240725091600"
    body["MaXacThuc"] = sha(body, QUERY_ORDER)
    return body


def test_init_takes_sotien_as_text_as_the_platforms_clients_send_it(client: FlaskClient) -> None:
    assert api(client, init_body(amount="30000"))["MaLoi"] == "00"  # type: ignore[arg-type]


def api(client: FlaskClient, body: dict) -> dict:
    resp = client.post(f"{P}/platform/api", json=body)
    reply = resp.json
    assert reply["MaXacThuc"] == sha(reply, REPLY_ORDER)
    return reply


def pay_url_params(ref: str = "TX-1", amount_vnd: int = 50000, **extra: Any) -> dict:
    params = {
        "vnp_Version": "2.1.0", "vnp_Command": "pay", "vnp_TmnCode": "GATEWAY1", "vnp_Amount": str(amount_vnd * 100),
        "vnp_CurrCode": "VND", "vnp_TxnRef": ref, "vnp_OrderInfo": "Thanh toan ho so HS-1", "vnp_OrderType": "other",
        "vnp_Locale": "vn", "vnp_ReturnUrl": "http://127.0.0.1:8000/return", "vnp_IpAddr": "127.0.0.1",
        "vnp_CreateDate": "20240725091500",
    } | extra  # fmt: skip
    params["vnp_SecureHash"] = vhash(params)
    return params


def open_vnpay(client: FlaskClient, **kw: Any) -> Any:
    return client.get(f"{P}/vnpay/paymentv2/vpcpay.html?{urlencode(pay_url_params(**kw))}")


def querydr(client: FlaskClient, ref: str = "TX-1", bad: bool = False) -> dict:
    body = {
        "vnp_RequestId": "r1", "vnp_Version": "2.1.0", "vnp_Command": "querydr", "vnp_TmnCode": "GATEWAY1",
        "vnp_TxnRef": ref, "vnp_OrderInfo": "q", "vnp_TransactionDate": "20240725091500",
        "vnp_CreateDate": "20240725092000", "vnp_IpAddr": "127.0.0.1",
    }  # fmt: skip
    order = ["vnp_RequestId", "vnp_Version", "vnp_Command", "vnp_TmnCode", "vnp_TxnRef", "vnp_TransactionDate"]
    order += ["vnp_CreateDate", "vnp_IpAddr", "vnp_OrderInfo"]
    body["vnp_SecureHash"] = vpipe([body[k] for k in order]) + ("00" if bad else "")
    reply = client.post(f"{P}/vnpay/merchant_webapi/api/transaction", json=body).json
    rorder = [
        "vnp_ResponseId", "vnp_Command", "vnp_ResponseCode", "vnp_Message", "vnp_TmnCode", "vnp_TxnRef",
        "vnp_Amount", "vnp_BankCode", "vnp_PayDate", "vnp_TransactionNo", "vnp_TransactionType",
        "vnp_TransactionStatus", "vnp_OrderInfo", "vnp_PromotionCode", "vnp_PromotionAmount",
    ]  # fmt: skip
    assert reply["vnp_SecureHash"] == vpipe([str(reply.get(k, "")) for k in rorder])
    return reply


def mock_pay(client: FlaskClient, provider: str, ref: str, outcome: str = "paid") -> Any:
    return client.post(f"{P}/_mock/pay/{provider}/{ref}", json={"outcome": outcome})


def arm(client: FlaskClient, mode: str, **kw: Any) -> None:
    assert client.post(f"{P}/_mock/faults", json={"mode": mode, "count": 1} | kw).status_code == 200


# --- national platform -------------------------------------------------------


def test_init_creates_pending_order_and_is_idempotent(client: FlaskClient) -> None:
    first = api(client, init_body())
    assert first["MaLoi"] == "00" and first["MaThamChieu"] == "REF-1"
    assert first["UrlThanhToan"] == "http://localhost/payment/platform/pay/REF-1"
    assert len(first["ThoiGianGD"]) == 14
    again = api(client, init_body())
    assert again["MaLoi"] == "00" and again["UrlThanhToan"] == first["UrlThanhToan"]
    assert api(client, init_body(amount=40000, fees=[40000]))["MaLoi"] == "02"
    state = client.get(f"{P}/_mock/state/national_platform/REF-1").json
    assert state["status"] == "PENDING" and state["amount"] == 30000


@pytest.mark.parametrize(
    "kw", [{"fees": [10000, 10000]}, {"amount": 0, "fees": []}, {"amount": "3e4"}, {"amount": -5, "fees": [-5]}]
)
def test_init_bad_amount_is_04(client: FlaskClient, kw: dict) -> None:
    assert api(client, init_body(**kw))["MaLoi"] == "04"
    assert client.get(f"{P}/_mock/state").json["orders"]["national_platform"] == {}


def test_bad_checksum_or_partner_is_97(client: FlaskClient) -> None:
    body = init_body()
    body["SoTien"] = 30001
    reply = api(client, body)
    assert reply["MaLoi"] == "97" and reply["MoTaLoi"] == "Sai mã xác thực"
    other = init_body(MaDoiTac="OTHER")
    assert api(client, other)["MaLoi"] == "97"
    assert api(client, query_body("QUERY") | {"MaXacThuc": "0" * 64})["MaLoi"] == "97"


def test_query_and_get_bill_states(client: FlaskClient, receiver: Receiver) -> None:
    assert api(client, query_body("QUERY"))["MaLoi"] == "01"
    assert api(client, query_body("GET_BILL"))["MaLoi"] == "01"
    api(client, init_body())
    pending = api(client, query_body("QUERY"))
    assert pending["MaLoi"] == "00" and pending["TrangThaiGD"] == "3" and pending["SoTien"] == 30000
    assert api(client, query_body("GET_BILL"))["MaLoi"] == "05"
    assert mock_pay(client, "national_platform", "REF-1").status_code == 200
    paid = api(client, query_body("QUERY"))
    assert paid["TrangThaiGD"] == "1" and paid["MaGiaoDich"].startswith("GD") and paid["MaNganHang"] == "NCB"
    bill = client.post(f"{P}/platform/api", json=query_body("GET_BILL"))
    assert bill.status_code == 200 and bill.mimetype == "application/pdf"
    pdf = bill.data
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert b"REF-1" in pdf and b"30000" in pdf and paid["MaGiaoDich"].encode() in pdf
    xref = int(pdf.rsplit(b"startxref\n", 1)[1].split()[0])
    assert pdf[xref:].startswith(b"xref")


def test_pay_page_html_and_buttons(client: FlaskClient, receiver: Receiver) -> None:
    api(client, init_body())
    page = client.get(f"{P}/platform/pay/REF-1")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html" and "charset=utf-8" in page.content_type
    assert "Thanh toán" in text and "Hủy" in text and "30.000 VND" in text and "Lệ phí 1" in text
    assert 'action="/payment/platform/pay/REF-1/pay"' in text and 'action="/payment/platform/pay/REF-1/cancel"' in text
    assert client.get(f"{P}/platform/pay/NOPE").status_code == 404
    done = client.post(f"{P}/platform/pay/REF-1/pay")
    assert done.status_code == 200 and "Thanh toán thành công" in done.get_data(as_text=True)
    again = client.post(f"{P}/platform/pay/REF-1/cancel")
    assert again.status_code == 409 and "không thay đổi" in again.get_data(as_text=True)
    assert client.get(f"{P}/_mock/state/national_platform/REF-1").json["status"] == "PAID"
    assert len(receiver.received) == 1


def test_pay_sends_signed_callback_and_records_answer(client: FlaskClient, receiver: Receiver) -> None:
    api(client, init_body())
    result = mock_pay(client, "national_platform", "REF-1").json
    assert result["changed"] and result["order"]["status"] == "PAID"
    [got] = receiver.received
    msg = got["json"]
    assert got["method"] == "POST" and got["path"] == "/np"
    assert msg["LoaiBanTin"] == "PAY" and msg["MaLoi"] == "00" and msg["SoTien"] == 30000
    assert msg["MaTienTe"] == "VND" and msg["MaNganHang"] == "NCB" and msg["MaGiaoDich"].startswith("GD")
    assert msg["MaXacThuc"] == sha(msg, CALLBACK_ORDER)
    [cb] = client.get(f"{P}/_mock/state/national_platform/REF-1").json["callbacks"]
    assert cb["status"] == 200 and cb["answer"]["MaLoi"] == "00" and cb["answer_valid"] and cb["error"] is None
    assert cb["body"] == msg and cb["sent_at"]


def test_cancel_sends_24_and_errors_are_recorded(client: FlaskClient, receiver: Receiver) -> None:
    api(client, init_body())
    receiver.answer = {"unexpected": True}
    result = mock_pay(client, "national_platform", "REF-1", "cancelled").json
    assert result["order"]["status"] == "CANCELLED"
    msg = receiver.received[0]["json"]
    assert msg["MaLoi"] == "24" and msg["MaXacThuc"] == sha(msg, CALLBACK_ORDER)
    assert result["callbacks"][0]["answer_valid"] is False
    assert mock_pay(client, "national_platform", "REF-1").status_code == 409
    assert mock_pay(client, "national_platform", "NOPE").status_code == 404
    assert mock_pay(client, "bank", "REF-1").status_code == 400
    # An unreachable gateway: the error is recorded, the order still changes.
    api(client, init_body("REF-2"))
    client.post(f"{P}/_mock/config", json={"platform_callback_url": "http://127.0.0.1:9/x"})
    cb = mock_pay(client, "national_platform", "REF-2").json["callbacks"][0]
    assert cb["status"] is None and "ConnectionError" in cb["error"]


# --- callback faults ---------------------------------------------------------


def test_fault_no_callback(client: FlaskClient, receiver: Receiver) -> None:
    api(client, init_body())
    arm(client, "no_callback")
    result = mock_pay(client, "national_platform", "REF-1").json
    assert result["order"]["status"] == "PAID" and result["callbacks"] == [] and receiver.received == []
    assert result["order"]["callback_faults"] == ["no_callback"]


def test_fault_callback_twice_at_the_same_moment(client: FlaskClient, receiver: Receiver) -> None:
    api(client, init_body())
    arm(client, "callback_twice", services=["callback"])
    result = mock_pay(client, "national_platform", "REF-1").json
    assert len(receiver.received) == 2 and receiver.received[0]["json"] == receiver.received[1]["json"]
    assert abs(receiver.received[0]["t"] - receiver.received[1]["t"]) < 0.5
    assert [c["status"] for c in result["callbacks"]] == [200, 200]
    assert len(client.get(f"{P}/_mock/state/national_platform/REF-1").json["callbacks"]) == 2


def test_fault_bad_checksum_and_changed_amount(client: FlaskClient, receiver: Receiver) -> None:
    api(client, init_body())
    api(client, init_body("REF-2"))
    arm(client, "bad_checksum")
    arm(client, "changed_amount")
    mock_pay(client, "national_platform", "REF-1")
    mock_pay(client, "national_platform", "REF-2")
    bad, changed = (r["json"] for r in receiver.received)
    assert bad["MaXacThuc"] != sha(bad, CALLBACK_ORDER) and bad["SoTien"] == 30000
    assert changed["MaXacThuc"] == sha(changed, CALLBACK_ORDER) and changed["SoTien"] == 31000


def test_callback_faults_do_not_touch_api_calls_and_vice_versa(client: FlaskClient, receiver: Receiver) -> None:
    arm(client, "no_callback")
    arm(client, "http_500", services=["INIT"])
    assert client.post(f"{P}/platform/api", json=init_body()).status_code == 500
    assert api(client, init_body())["MaLoi"] == "00"
    arm(client, "error_code")
    busy = api(client, query_body("QUERY"))
    assert busy["MaLoi"] == "99"
    mock_pay(client, "national_platform", "REF-1")
    assert receiver.received == [] and client.get(f"{P}/_mock/faults").json["faults"] == []


def test_api_faults_timeout_and_delay(client: FlaskClient) -> None:
    arm(client, "timeout", seconds=0.05, services=["INIT"])
    assert client.post(f"{P}/platform/api", json=init_body()).status_code == 504
    arm(client, "delay", seconds=0.05)
    started = time.monotonic()
    assert api(client, init_body())["MaLoi"] == "00" and time.monotonic() - started >= 0.05


# --- VNPay -------------------------------------------------------------------


def test_vnpay_pay_url_signature_and_idempotency(client: FlaskClient) -> None:
    params = pay_url_params()
    params["vnp_Amount"] = "100"
    bad = client.get(f"{P}/vnpay/paymentv2/vpcpay.html?{urlencode(params)}")
    assert bad.status_code == 400 and "Sai chữ ký" in bad.get_data(as_text=True)
    assert open_vnpay(client, vnp_TmnCode="OTHER").status_code == 400
    page = open_vnpay(client, vnp_OrderInfo="Thanh toán hồ sơ & phí")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Thanh toán" in text and "Hủy" in text and "50.000 VND" in text
    assert 'action="/payment/vnpay/pay/TX-1/pay"' in text and 'action="/payment/vnpay/pay/TX-1/cancel"' in text
    assert open_vnpay(client).status_code == 200
    assert open_vnpay(client, amount_vnd=60000).status_code == 400
    assert client.get(f"{P}/_mock/state/vnpay/TX-1").json["amount"] == 50000


def test_vnpay_pay_sends_signed_ipn(client: FlaskClient, receiver: Receiver) -> None:
    open_vnpay(client)
    done = client.post(f"{P}/vnpay/pay/TX-1/pay")
    assert done.status_code == 200 and "http://127.0.0.1:8000/return?" in done.get_data(as_text=True)
    [got] = receiver.received
    ipn = got["args"]
    assert got["method"] == "GET" and got["path"] == "/ipn"
    assert ipn["vnp_SecureHash"] == vhash(ipn)
    assert ipn["vnp_Amount"] == "5000000" and ipn["vnp_ResponseCode"] == "00" and ipn["vnp_TransactionStatus"] == "00"
    assert ipn["vnp_BankCode"] == "NCB" and ipn["vnp_CardType"] == "ATM" and ipn["vnp_TxnRef"] == "TX-1"
    assert ipn["vnp_TmnCode"] == "GATEWAY1" and ipn["vnp_TransactionNo"] and len(ipn["vnp_PayDate"]) == 14
    cb = client.get(f"{P}/_mock/state/vnpay/TX-1").json["callbacks"][0]
    assert cb["answer"] == {"RspCode": "00", "Message": "Confirm Success"} and cb["answer_valid"]
    # The return link carries the same signed result.
    link = done.get_data(as_text=True).split('href="')[1].split('"')[0].replace("&amp;", "&")
    back = dict(parse_qsl(urlsplit(link).query))
    assert back["vnp_SecureHash"] == vhash(back)


def test_vnpay_cancel_and_faults(client: FlaskClient, receiver: Receiver) -> None:
    open_vnpay(client)
    open_vnpay(client, ref="TX-2")
    client.post(f"{P}/vnpay/pay/TX-1/cancel")
    ipn = receiver.received[0]["args"]
    assert ipn["vnp_ResponseCode"] == "24" and ipn["vnp_TransactionStatus"] == "02"
    assert ipn["vnp_SecureHash"] == vhash(ipn)
    arm(client, "changed_amount")
    mock_pay(client, "vnpay", "TX-2")
    changed = receiver.received[1]["args"]
    assert changed["vnp_Amount"] == "5100000" and changed["vnp_SecureHash"] == vhash(changed)
    assert client.post(f"{P}/vnpay/pay/NOPE/pay").status_code == 404


def test_querydr(client: FlaskClient, receiver: Receiver) -> None:
    assert querydr(client, bad=True)["vnp_ResponseCode"] == "97"
    assert querydr(client)["vnp_ResponseCode"] == "91"
    open_vnpay(client)
    pending = querydr(client)
    assert pending["vnp_ResponseCode"] == "00" and pending["vnp_TransactionStatus"] == "01"
    assert pending["vnp_Amount"] == "5000000"
    mock_pay(client, "vnpay", "TX-1")
    paid = querydr(client)
    assert paid["vnp_TransactionStatus"] == "00" and paid["vnp_TransactionNo"] and paid["vnp_PayDate"]
    arm(client, "error_code", services=["querydr"])
    assert querydr(client)["vnp_ResponseCode"] == "99"


# --- inspection, config and reset ---------------------------------------------


def test_config_rejects_unknown_keys(client: FlaskClient) -> None:
    assert client.post(f"{P}/_mock/config", json={"nope": 1}).status_code == 400
    assert client.post(f"{P}/_mock/config", json={"callback_timeout_seconds": "x"}).status_code == 400
    assert client.post(f"{P}/_mock/config", json={"callback_timeout_seconds": 2}).json["callback_timeout_seconds"] == 2


def test_requests_log_and_reset(client: FlaskClient, receiver: Receiver) -> None:
    api(client, init_body())
    open_vnpay(client)
    arm(client, "http_500")
    log = client.get(f"{P}/_mock/requests").json
    assert log["total"] == 2 and log["requests"][0]["service"] == "INIT"
    assert client.post(f"{P}/_mock/reset").status_code == 200
    assert client.get(f"{P}/_mock/state").json == {"orders": {"national_platform": {}, "vnpay": {}}}
    assert client.get(f"{P}/_mock/requests").json == {"total": 0, "requests": []}
    assert client.get(f"{P}/_mock/faults").json == {"faults": []}
    assert client.get(f"{P}/_mock/config").json["platform_callback_url"].startswith("http://127.0.0.1:8000/")
    assert client.get(f"{P}/_mock/state/vnpay/TX-1").status_code == 404
