"""Payment providers' protocol code against recorded-style answers (responses) — groundwork for issue 3."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses

from gateway.adapters.base import PermanentError, RetryableError
from gateway.adapters.payment import national_platform_checksum as np_sum
from gateway.adapters.payment import vnpay_signature as vnp_sig
from gateway.adapters.payment.base import CallbackVerdict, FeeItem, PaymentRequest, ProviderState
from gateway.adapters.payment.national_platform import NationalPlatform
from gateway.adapters.payment.vnpay import VNPay

BASE = "http://pay.invalid/payment/platform"
REQ = PaymentRequest(reference="PAY-1", amount=58000, dossier_code="000.00.17.H31-240725-0001",
                     procedure_code="1.003560.000.00.00.H56", unit_code="000.00.17.H31", payer_name="Nguyễn Văn An",
                     description="Lệ phí hồ sơ 000.00.17.H31-240725-0001", client_ip="10.0.0.1",
                     at=datetime(2024, 7, 25, 3, 0, tzinfo=UTC),
                     items=[FeeItem("LP", "Lệ phí", 8000), FeeItem("PHI", "Phí thẩm định", 50000)])


def platform() -> NationalPlatform:
    return NationalPlatform(base_url=BASE, partner="GATEWAY", secret="payment-secret", timeout=2)


def reply(code: str = "00", **extra) -> dict:
    body = {"MaLoi": code, "MoTaLoi": "x", "MaDoiTac": "GATEWAY", "MaThamChieu": "PAY-1",
            "ThoiGianGD": "20240725100000", **extra}
    return np_sum.sign("REPLY", body, "payment-secret")


@responses.activate
def test_init_is_signed_and_returns_the_pay_url():
    responses.post(f"{BASE}/api", json=reply(UrlThanhToan=f"{BASE}/pay/PAY-1"))
    started = platform().start(REQ)
    assert started.pay_url == f"{BASE}/pay/PAY-1"
    body = json.loads(responses.calls[0].request.body)
    assert np_sum.verify("INIT", body, "payment-secret")
    assert body["SoTien"] == "58000" and body["ThoiGianGD"] == "20240725100000" and body["PhienBan"] == "1.0.6"
    assert sum(f["SoTien"] for f in body["ThongTinBienLai"]["PhiLePhi"]) == int(body["SoTien"])


@responses.activate
@pytest.mark.parametrize("answer,kind", [
    (lambda: reply("99"), RetryableError),
    (lambda: reply("02"), PermanentError),
    (lambda: ["not", "an", "object"], RetryableError),
    (lambda: reply(), PermanentError),  # success, but no pay URL
])
def test_init_failures_have_the_right_kind(answer, kind):
    responses.post(f"{BASE}/api", json=answer())
    with pytest.raises(kind):
        platform().start(REQ)


def test_platform_callbacks_are_authenticated_and_answered_with_their_own_checksum():
    p = platform()
    good = np_sum.sign("CALLBACK", {"LoaiBanTin": "PAY", "MaLoi": "00", "MaDoiTac": "GATEWAY", "MaThamChieu": "PAY-1",
                                    "SoTien": 58000, "MaTienTe": "VND", "MaGiaoDich": "GD1", "MaNganHang": "NCB",
                                    "ThoiGianGD": "20240725101500", "ThongTinGiaoDich": "x"}, "payment-secret")
    cb = p.read_callback(good)
    assert cb.authentic and cb.state is ProviderState.PAID and cb.amount == 58000 and cb.reference == "PAY-1"
    assert not p.read_callback({**good, "SoTien": 59000}).authentic
    assert not p.read_callback({**good, "MaXacThuc": "f" * 64}).authentic
    answer = p.answer(cb, CallbackVerdict.WRONG_AMOUNT)
    assert answer.body["MaLoi"] == "99" and answer.body["MaXacThuc"] == good["MaXacThuc"]
    assert answer.body["ThoiGianGD"] == "20240725101500"
    assert p.answer(cb, CallbackVerdict.ALREADY_APPLIED).body["MaLoi"] == "00"


def test_vnpay_pay_url_is_signed_and_ipn_checked():
    v = VNPay(base_url="http://pay.invalid/payment/vnpay", tmn_code="GATEWAY1", secret="VNPAYSECRET",
              return_url="http://portal.invalid/back")
    url = v.start(REQ).pay_url
    params = dict(parse_qsl(urlsplit(url).query))
    assert params["vnp_Amount"] == "5800000" and vnp_sig.verify(params, "VNPAYSECRET")
    ipn = {"vnp_Amount": "5800000", "vnp_ResponseCode": "00", "vnp_TransactionStatus": "00", "vnp_TxnRef": "PAY-1",
           "vnp_TmnCode": "GATEWAY1", "vnp_TransactionNo": "14226112"}
    ipn["vnp_SecureHash"] = vnp_sig.secure_hash(ipn, "VNPAYSECRET")
    cb = v.read_callback(ipn)
    assert cb.authentic and cb.state is ProviderState.PAID and cb.amount == 58000
    assert not v.read_callback({**ipn, "vnp_Amount": "5900000"}).authentic
    assert v.answer(cb, CallbackVerdict.BAD_SIGNATURE).body == {"RspCode": "97", "Message": "Invalid signature"}
    assert v.answer(cb, CallbackVerdict.ALREADY_APPLIED).body["RspCode"] == "02"


@pytest.fixture(scope="module")
def pay_mock(tmp_path_factory):
    from .conftest import mock_server

    server = mock_server(tmp_path_factory.mktemp("pay-mock"))
    yield server.url
    server.stop()


def test_both_providers_against_the_payment_mock(pay_mock):
    import requests

    p = NationalPlatform(base_url=f"{pay_mock}/payment/platform", partner="GATEWAY", secret="payment-secret")
    request = PaymentRequest(**{**REQ.__dict__, "reference": f"PAY-{datetime.now().timestamp()}"})
    assert p.start(request).pay_url.endswith(f"/payment/platform/pay/{request.reference}")
    assert p.start(request).pay_url  # INIT again: the same order
    assert p.query(request.reference, created_at=request.at).state is ProviderState.PENDING
    requests.post(f"{pay_mock}/payment/_mock/pay/national_platform/{request.reference}", json={"outcome": "paid"},
                  timeout=10)
    status = p.query(request.reference, created_at=request.at)
    assert status.state is ProviderState.PAID and status.amount == 58000 and status.transaction_id
    assert p.receipt(request.reference, created_at=request.at).startswith(b"%PDF")
    assert p.query("PAY-unknown", created_at=request.at).state is ProviderState.UNKNOWN

    v = VNPay(base_url=f"{pay_mock}/payment/vnpay", tmn_code="GATEWAY1", secret="VNPAYSECRET",
              return_url="http://portal.invalid/back")
    page = requests.get(v.start(request).pay_url, timeout=10)
    assert page.status_code == 200 and "vnpay/pay/" in page.text
    assert v.query(request.reference, created_at=request.at).state is ProviderState.PENDING
    requests.post(f"{pay_mock}/payment/_mock/pay/vnpay/{request.reference}", json={"outcome": "paid"}, timeout=10)
    done = v.query(request.reference, created_at=request.at)
    assert done.state is ProviderState.PAID and done.amount == 58000
