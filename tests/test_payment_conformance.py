"""The payment adapters and the payment mock against material no one here wrote (tests/conformance/*/README.md
names every source): VNPay's guide, its PHP demo and a library's test vectors; the two public clients of the
national payment platform. The referees re-implement the sources' checksum algorithms as published."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.adapters.payment import national_platform_checksum as np_sum
from gateway.adapters.payment import vnpay as vnpay_adapter
from gateway.adapters.payment import vnpay_signature as vnp_sig
from gateway.adapters.payment.base import CallbackVerdict, FeeItem, PaymentRequest, ProviderState
from gateway.adapters.payment.national_platform import INIT_DEFAULTS, NationalPlatform
from gateway.adapters.payment.vnpay import VNPay
from mocks import payment as mock_payment
from mocks.server import create_app

HERE = Path(__file__).parent / "conformance"


def load(path: str) -> Any:
    return json.loads((HERE / path).read_text(encoding="utf-8"))


# --- referees: the sources' algorithms, re-implemented as published -------------------------------------


def php_urlencode(text: str) -> str:
    """PHP's urlencode() as its manual describes it: bytes of [A-Za-z0-9_.-] kept, space as '+', every other
    byte as '%' and two upper-case hex digits."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char.isascii() and (char.isalnum() or char in "_.-"):
            out.append(char)
        elif char == " ":
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def vnpay_php_demo_hash(query: dict[str, str], secret: str) -> str:
    """vnpay_ipn.php (v2.1.0): keep the vnp_* parameters, unset vnp_SecureHash, ksort, join
    urlencode($key) . "=" . urlencode($value) with '&', hash_hmac('sha512', $hashData, $vnp_HashSecret)."""
    data = {k: v for k, v in query.items() if k[:4] == "vnp_"}
    data.pop("vnp_SecureHash", None)
    hash_data = "&".join(php_urlencode(k) + "=" + php_urlencode(v) for k, v in sorted(data.items()))
    return hmac.new(secret.encode(), hash_data.encode(), hashlib.sha512).hexdigest()


# TD.DichVuCongApi's MaXacThuc: $"{f1}|{f2}|...|{secret}" through CreateMaXacThuc (SHA256, bytes as "x2").
# C# interpolation writes a null string as nothing and an int in invariant digits.
TD_FIELDS = {
    "INIT": ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "SoTien", "LoaiHinhThanhToan", "MaKenhThanhToan",
             "MaThietBi", "NgonNgu", "MaTienTe", "MaNganHang", "ThongTinGiaoDich", "ThoiGianGD", "Ip"),
    "QUERY": ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"),
    "GET_BILL": ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"),
    "CALLBACK": ("LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "SoTien", "MaTienTe", "MaGiaoDich", "MaNganHang",
                 "ThoiGianGD", "ThongTinGiaoDich"),
}


def td_ma_xac_thuc(kind: str, message: dict[str, Any], secret: str) -> str:
    raw = "|".join("" if message.get(f) is None else str(message[f]) for f in TD_FIELDS[kind]) + "|" + secret
    return "".join(f"{b:02x}" for b in hashlib.sha256(raw.encode("utf-8")).digest())


# Text a JSON body or a query string can carry (no lone surrogates: they have no UTF-8).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
SECRET = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)


# --- VNPay ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", load("vnpay/ipn_test_vectors.json")["vectors"], ids=lambda v: v["name"][:30])
def test_vnpay_published_test_vectors(vector):
    doc = load("vnpay/ipn_test_vectors.json")
    params, expected = vector["params"], vector["vnp_SecureHash"]
    assert vnpay_php_demo_hash(params, doc["secret"]) == expected  # the referee agrees with the library
    assert vnp_sig.secure_hash(params, doc["secret"]) == expected
    assert mock_payment.vnpay_query_hash(params, doc["secret"]) == expected
    # The IPN as VNPay sends it (a GET query) is read correctly by the adapter.
    adapter = VNPay(base_url="http://vnpay.invalid", tmn_code=doc["tmn_code"], secret=doc["secret"],
                    return_url="http://portal.invalid/back")
    callback = adapter.read_callback({**params, "vnp_SecureHash": expected})
    assert callback.authentic and callback.reference == params["vnp_TxnRef"]
    assert callback.amount == vector["amount_vnd"] and callback.transaction_id == params["vnp_TransactionNo"]
    assert (callback.state is ProviderState.PAID) is vector["paid"]
    assert not adapter.read_callback({**params, "vnp_Amount": "2000000", "vnp_SecureHash": expected}).authentic


def test_vnpay_guide_pay_url_is_the_encoding_we_sign():
    url = load("vnpay/pay_url_example.json")["url"]
    query = urlsplit(url).query
    signed_part, _, given_hash = query.rpartition("&vnp_SecureHash=")
    params = dict(parse_qsl(query))
    assert vnp_sig.hash_data(params) == signed_part  # byte for byte VNPay's own encoding of its example
    assert len(given_hash) == 128 and params["vnp_Version"] == vnpay_adapter.VERSION


@settings(max_examples=300, deadline=None)
@given(params=st.dictionaries(st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1,
                                      max_size=12).map(lambda k: "vnp_" + k), TEXT, max_size=12),
       others=st.dictionaries(st.text("abcxyz_", min_size=1, max_size=6), TEXT, max_size=3),
       secret=SECRET)
def test_vnpay_hash_is_the_php_demos_for_any_parameters(params, others, secret):
    query = {**others, **params}
    expected = vnpay_php_demo_hash(query, secret)
    assert vnp_sig.secure_hash(query, secret) == expected
    assert mock_payment.vnpay_query_hash(query, secret) == expected
    assert vnp_sig.verify({**query, "vnp_SecureHash": expected.upper()}, secret)


@settings(max_examples=200, deadline=None)
@given(description=TEXT)
def test_vnpay_order_info_is_encoded_alike_by_every_published_demo(description):
    info = vnpay_adapter.order_info(description)
    assert 0 < len(info) <= 255
    # Java's URLEncoder (US-ASCII) and .NET's WebUtility.UrlEncode agree with PHP on it: plain ASCII, none of ~!*()
    assert info.isascii() and not set(info) & set("~!*()'")


def test_vnpay_pay_url_is_accepted_by_the_mock():
    client = create_app().test_client()
    adapter = VNPay(base_url="http://localhost/payment/vnpay", tmn_code="GATEWAY1", secret="VNPAYSECRET",
                    return_url="http://portal.invalid/back?a=1&b=~x")
    request = PaymentRequest(reference="241124ABCDEF012345", amount=33000, dossier_code="000.00.17.H31-240725-0001",
                             procedure_code="1.003560.000.00.00.H56", unit_code="000.00.17.H31", payer_name="Nguyễn An",
                             description="Lệ phí (đợt 1) ~ hồ sơ 000.00.17.H31-240725-0001", client_ip="10.0.0.1",
                             at=datetime(2024, 7, 25, 3, 0, tzinfo=UTC))
    url = adapter.start(request).pay_url
    assert client.get(url.removeprefix("http://localhost")).status_code == 200
    assert vnpay_php_demo_hash(dict(parse_qsl(urlsplit(url).query)), "VNPAYSECRET") == url.rsplit("=", 1)[1]


def test_vnpay_ipn_answers_are_the_demos():
    adapter = VNPay(base_url="http://vnpay.invalid", tmn_code="T", secret="s", return_url="http://r.invalid")
    rows = {row["RspCode"]: row["Message"] for row in load("vnpay/ipn_answers.json")["answers"]}
    cases = {CallbackVerdict.APPLIED: "00", CallbackVerdict.UNKNOWN_REFERENCE: "01",
             CallbackVerdict.ALREADY_APPLIED: "02", CallbackVerdict.WRONG_AMOUNT: "04",
             CallbackVerdict.BAD_SIGNATURE: "97", CallbackVerdict.ERROR: "99"}
    callback = adapter.read_callback({})
    for verdict, code in cases.items():
        assert adapter.answer(callback, verdict).body == {"RspCode": code, "Message": rows[code]}


def test_vnpay_codes_we_map_are_published_codes():
    tables = load("vnpay/response_codes.json")
    assert set(vnpay_adapter.TRANSACTION_STATES) <= set(tables["vnp_TransactionStatus"])
    assert {"91", "99"} <= set(tables["querydr_vnp_ResponseCode"])  # not found, retry: what query() reads
    assert "24" in tables["vnp_ResponseCode"]  # the mock's "cancelled"


def test_vnpay_querydr_hash_fields_and_the_mock():
    doc = load("vnpay/querydr.json")
    assert list(vnpay_adapter.QUERY_FIELDS) == doc["request_hash_fields"] == list(mock_payment.QUERYDR_ORDER)
    assert list(vnpay_adapter.QUERY_REPLY_FIELDS) == doc["answer_hash_fields"]
    assert list(mock_payment.QUERYDR_REPLY_ORDER) == doc["answer_hash_fields"]
    example = doc["request_example"]
    body = dict(example["body"])
    data = "|".join(body[f] for f in doc["request_hash_fields"])  # vnpay_querydr.php's sprintf('%s|%s|...')
    body["vnp_SecureHash"] = hmac.new(example["secret"].encode(), data.encode(), hashlib.sha512).hexdigest()
    assert body["vnp_SecureHash"] == vnpay_adapter._pipe_hash(body, vnpay_adapter.QUERY_FIELDS, example["secret"])
    client = create_app().test_client()
    config = {"vnpay_tmn_code": body["vnp_TmnCode"], "vnpay_secret": example["secret"]}
    client.post("/payment/_mock/config", json=config)
    answer = client.post("/payment/vnpay/merchant_webapi/api/transaction", json=body).json
    assert answer["vnp_ResponseCode"] == "91"  # accepted (not 97): the order is simply unknown


# --- national payment platform --------------------------------------------------------------------------


EX = load("payment_platform/examples.json")
FORMATS = load("payment_platform/message_formats.json")["messages"]
REQ = PaymentRequest(reference="241124ABCDEF012345", amount=33000, dossier_code="000.00.17.H31-240725-0001",
                     procedure_code="1.003560.000.00.00.H56", unit_code="000.00.17.H31", payer_name="Nguyễn Văn An",
                     description="Thanh toán phí, lệ phí hồ sơ 000.00.17.H31-240725-0001", client_ip="10.0.0.5",
                     at=datetime(2024, 7, 25, 2, 30, 15, tzinfo=UTC),
                     items=[FeeItem("LPKS", "Lệ phí đăng ký khai sinh", 8000), FeeItem("PHI-BC", "Phí BC", 25000)],
                     procedure_name="Đăng ký khai sinh", payer_id_number="001090000001", payer_address="Hà Nội")
BASE = "http://platform.invalid"


def platform() -> NationalPlatform:
    return NationalPlatform(base_url=BASE, partner=EX["partner"], secret=EX["secret"], timeout=2)


def test_platform_field_orders_are_tds():
    for kind in TD_FIELDS:
        assert list(np_sum.FIELD_ORDER[kind]) == list(TD_FIELDS[kind])
        fields = FORMATS["CALLBACK" if kind == "CALLBACK" else kind]["checksum_fields_TD"]
        assert list(TD_FIELDS[kind]) == fields


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(TD_FIELDS)), secret=SECRET, data=st.data())
def test_platform_ma_xac_thuc_is_tds_for_any_message(kind, secret, data):
    message = {f: data.draw(st.one_of(TEXT, st.integers(0, 10**12), st.none()), label=f) for f in TD_FIELDS[kind]}
    expected = td_ma_xac_thuc(kind, message, secret)
    assert np_sum.checksum(kind, message, secret) == expected
    order = {"INIT": mock_payment.INIT_ORDER, "QUERY": mock_payment.QUERY_ORDER, "GET_BILL": mock_payment.QUERY_ORDER,
             "CALLBACK": mock_payment.CALLBACK_ORDER}[kind]
    assert mock_payment.platform_checksum(message, order, secret) == expected
    assert np_sum.verify(kind, {**message, "MaXacThuc": expected.upper()}, secret)


@pytest.mark.parametrize("kind", ["INIT", "QUERY", "GET_BILL", "CALLBACK"])
def test_platform_examples_verify(kind):
    assert np_sum.verify(kind, EX[kind], EX["secret"])
    assert not np_sum.verify(kind, {**EX[kind], "MaThamChieu": "other"}, EX["secret"])


@responses.activate
def test_platform_init_we_send_is_shaped_as_tds():
    responses.post(f"{BASE}/api", json={"MaLoi": "00", "UrlThanhToan": "https://pay.invalid/x"})
    platform().start(REQ)
    sent = json.loads(responses.calls[0].request.body)
    example = EX["INIT"]
    assert set(sent) == set(example)
    for name, value in {**FORMATS["INIT"]["defaults_TD"], **INIT_DEFAULTS}.items():
        assert sent[name] == example[name] == value
    assert sent["SoTien"] == "33000" and isinstance(example["SoTien"], str)
    assert sent["ThoiGianGD"] == "20240725093015"  # yyyyMMddHHmmss, Vietnam time
    receipt = sent["ThongTinBienLai"]
    assert set(receipt) <= set(FORMATS["INIT"]["ThongTinBienLai_fields_TD"])
    assert receipt["MaDichVu"] == example["ThongTinBienLai"]["MaDichVu"] == "2"
    assert receipt["MaHoSo"] == REQ.dossier_code and receipt["SoCMNDNguoiNop"] == "001090000001"
    assert sum(int(i["SoTien"]) for i in receipt["PhiLePhi"]) == int(sent["SoTien"])
    assert receipt["DSKhoanNop"] == [{"NoiDung": REQ.description, "SoTien": "33000"}]
    assert sent["MaXacThuc"] == td_ma_xac_thuc("INIT", sent, EX["secret"])


@responses.activate
def test_platform_query_and_get_bill_carry_the_payments_own_time():
    responses.post(f"{BASE}/api", json=EX["QUERY_answer_paid"])
    status = platform().query(REQ.reference, created_at=REQ.at)
    assert status.state is ProviderState.PAID and status.amount == 33000 and status.transaction_id == "GD240725000123"
    responses.replace(responses.POST, f"{BASE}/api", body=b"%PDF-1.4 receipt", content_type="application/pdf")
    assert platform().receipt(REQ.reference, created_at=REQ.at) == b"%PDF-1.4 receipt"
    for call, kind in zip(responses.calls, ("QUERY", "GET_BILL"), strict=True):
        sent = json.loads(call.request.body)
        assert set(sent) == set(EX[kind]) and sent["LoaiBanTin"] == kind and sent["PhienBan"] == "1.0.6"
        assert sent["ThoiGianGD"] == "20240725093015"  # the INIT's, not the time of asking
        assert sent["MaXacThuc"] == td_ma_xac_thuc(kind, sent, EX["secret"])


@responses.activate
@pytest.mark.parametrize("code,state", [("1", ProviderState.PAID), ("3", ProviderState.PENDING),
                                        ("4", ProviderState.CANCELLED), ("9", ProviderState.UNKNOWN)])
def test_platform_query_states_are_tds_trang_thai_gd(code, state):
    assert code in FORMATS["QUERY_answer"]["TrangThaiGD_TD"] or state is ProviderState.UNKNOWN
    responses.post(f"{BASE}/api", json={**EX["QUERY_answer_paid"], "TrangThaiGD": code})
    assert platform().query(REQ.reference, created_at=REQ.at).state is state


@responses.activate
def test_platform_init_answer_wrapped_as_td_receives_it():
    responses.post(f"{BASE}/api", json=EX["INIT_answer_wrapped_TD"])
    assert platform().start(REQ).pay_url == json.loads(EX["INIT_answer_wrapped_TD"]["message"])["UrlThanhToan"]


def test_platform_callback_is_read_and_answered_as_the_clients_do():
    p = platform()
    callback = p.read_callback(EX["CALLBACK"])
    assert callback.authentic and callback.state is ProviderState.PAID and callback.amount == 33000
    assert callback.reference == EX["CALLBACK"]["MaThamChieu"] and callback.transaction_id == "GD240725000123"
    assert p.answer(callback, CallbackVerdict.APPLIED).body == EX["CALLBACK_answer_applied"]
    refused = p.answer(p.read_callback({**EX["CALLBACK"], "SoTien": 1}), CallbackVerdict.BAD_SIGNATURE).body
    assert refused["MaLoi"] == "99" and refused["MoTaLoi"].startswith("Các lỗi khác")
    assert set(refused) == set(FORMATS["CALLBACK_answer"]["fields"])
    # The mock takes that answer as a proper one.
    assert mock_payment.PaymentProviders()._answer_valid(mock_payment.PLATFORM, EX["CALLBACK_answer_applied"],
                                                         EX["CALLBACK"])


def test_platform_example_requests_are_accepted_by_the_mock():
    client = create_app().test_client()
    client.post("/payment/_mock/config", json={"platform_partner": EX["partner"], "platform_secret": EX["secret"]})

    def call(kind: str) -> Any:
        return client.post("/payment/platform/api", json=EX[kind])

    init = call("INIT").json
    assert init["MaLoi"] == "00" and init["UrlThanhToan"].endswith(EX["INIT"]["MaThamChieu"])
    assert call("QUERY").json["TrangThaiGD"] == "3"
    assert call("GET_BILL").json["MaLoi"] == "05"  # not paid yet
    client.post(f"/payment/_mock/pay/national_platform/{EX['INIT']['MaThamChieu']}", json={"outcome": "paid"})
    paid = call("QUERY").json
    assert paid["TrangThaiGD"] == "1" and paid["SoTien"] == 33000
    assert set(FORMATS["QUERY_answer"]["fields_TD"][:6]) <= set(paid)
    bill = call("GET_BILL")
    assert bill.mimetype == "application/pdf" and bill.data.startswith(b"%PDF")
