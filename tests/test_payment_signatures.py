"""Payment checksums (groundwork for issue 3): the national platform's MaXacThuc and VNPay's HMAC."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from gateway.adapters.payment import national_platform_checksum as np_sum
from gateway.adapters.payment import vnpay_signature as vnp

CALLBACK = {"LoaiBanTin": "PAY", "MaLoi": "00", "MaDoiTac": "H56", "MaThamChieu": "PAY-000.00.17.H31-240725-0001",
            "SoTien": 8000, "MaTienTe": "VND", "MaGiaoDich": "GD123", "MaNganHang": "VCB",
            "ThoiGianGD": "20240725101500", "ThongTinGiaoDich": "Lệ phí đăng ký khai sinh"}


def test_ma_xac_thuc_is_sha256_over_the_pipe_joined_fields_and_secret():
    expected = hashlib.sha256(("PAY|00|H56|PAY-000.00.17.H31-240725-0001|8000|VND|GD123|VCB|20240725101500|"
                               "Lệ phí đăng ký khai sinh|s3cret").encode()).hexdigest()
    assert np_sum.checksum("CALLBACK", CALLBACK, "s3cret") == expected
    assert np_sum.verify("CALLBACK", np_sum.sign("CALLBACK", CALLBACK, "s3cret"), "s3cret")


@pytest.mark.parametrize("tamper", [{"SoTien": 80000}, {"MaLoi": "01"}, {"MaThamChieu": "PAY-other"},
                                    {"MaXacThuc": "0" * 64}, {"MaXacThuc": None}])
def test_tampered_or_forged_callbacks_fail(tamper):
    signed = np_sum.sign("CALLBACK", CALLBACK, "s3cret")
    assert not np_sum.verify("CALLBACK", {**signed, **tamper}, "s3cret")
    assert not np_sum.verify("CALLBACK", signed, "another-secret")


def test_vnpay_hash_is_hmac_sha512_over_the_sorted_encoded_query():
    params = {"vnp_TxnRef": "166117", "vnp_Amount": "1000000", "vnp_OrderInfo": "Thanh toan le phi: ho so 1",
              "vnp_TmnCode": "CTTVNP01", "vnp_ResponseCode": "00", "vnp_SecureHashType": "HMACSHA512"}
    data = ("vnp_Amount=1000000&vnp_OrderInfo=Thanh+toan+le+phi%3A+ho+so+1&vnp_ResponseCode=00"
            "&vnp_TmnCode=CTTVNP01&vnp_TxnRef=166117")
    assert vnp.hash_data(params) == data
    digest = hmac.new(b"SECRET", data.encode(), hashlib.sha512).hexdigest()
    assert vnp.secure_hash(params, "SECRET") == digest
    assert vnp.verify({**params, "vnp_SecureHash": digest.upper()}, "SECRET")
    assert not vnp.verify({**params, "vnp_Amount": "2000000", "vnp_SecureHash": digest}, "SECRET")
    assert not vnp.verify(params, "SECRET")


def test_vnpay_amounts_are_whole_dong_times_100():
    assert vnp.to_vnpay_amount(8000) == 800000
    assert vnp.from_vnpay_amount("800000") == 8000
    for bad in ("800050", "-100", "8e5", ""):
        with pytest.raises(ValueError):
            vnp.from_vnpay_amount(bad)
    with pytest.raises(ValueError):
        vnp.to_vnpay_amount(80.5)  # type: ignore[arg-type]
