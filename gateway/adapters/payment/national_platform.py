"""The national portal's payment platform: INIT, QUERY, GET_BILL over JSON, each signed with MaXacThuc."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import requests

from gateway.adapters.base import PermanentError, PerThreadHttp, RetryableError, send
from gateway.domain.dossier import VN_TZ

from . import national_platform_checksum as checksum
from .base import Answer, Callback, CallbackVerdict, PaymentProvider, PaymentRequest, ProviderState, Started, Status

VERSION = "2.0.0"
TIME = "%Y%m%d%H%M%S"

# MaLoi of the platform's replies: which are worth another try. [assumed beyond "00"]
RETRYABLE_CODES = frozenset({"99"})
# TrangThai of a QUERY reply, and MaLoi of a callback, to our states.
QUERY_STATES: dict[str, ProviderState] = {"PENDING": ProviderState.PENDING, "PAID": ProviderState.PAID,
                                         "CANCELLED": ProviderState.CANCELLED}
CALLBACK_STATES: dict[str, ProviderState] = {"00": ProviderState.PAID, "24": ProviderState.CANCELLED}
# Our verdict on a callback, as the platform's MaLoi / MoTaLoi.
VERDICT_CODES: dict[CallbackVerdict, tuple[str, str]] = {
    CallbackVerdict.APPLIED: ("00", "Thành công"),
    CallbackVerdict.ALREADY_APPLIED: ("00", "Giao dịch đã được ghi nhận trước đó"),
    CallbackVerdict.UNKNOWN_REFERENCE: ("01", "Không tìm thấy giao dịch"),
    CallbackVerdict.WRONG_AMOUNT: ("04", "Sai số tiền"),
    CallbackVerdict.BAD_SIGNATURE: ("97", "Sai mã xác thực"),
    CallbackVerdict.ERROR: ("99", "Lỗi hệ thống"),
}


def vn_time(moment: datetime) -> str:
    return moment.astimezone(VN_TZ).strftime(TIME)


class NationalPlatform(PaymentProvider):
    name = "national_platform"
    issues_receipts = True  # GET_BILL

    def __init__(self, *, base_url: str, partner: str, secret: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.partner = partner
        self.secret = secret
        self.timeout = timeout
        self._http_sessions = PerThreadHttp()

    def _http(self) -> requests.Session:
        return self._http_sessions.session()

    def _call(self, kind: str, message: dict[str, Any]) -> dict[str, Any]:
        signed = checksum.sign(kind, message, self.secret)
        response = send(self._http(), "POST", f"{self.base_url}/api", f"payment platform {kind}",
                        timeout=self.timeout, json=signed)
        try:
            reply = response.json()
        except ValueError:
            raise RetryableError(f"payment platform {kind}: answer is not JSON") from None
        if not isinstance(reply, dict):
            raise RetryableError(f"payment platform {kind}: answer is not a JSON object")
        if not checksum.verify("REPLY", reply, self.secret):
            # An answer we cannot authenticate is not one to act on; the platform may answer properly later.
            raise RetryableError(f"payment platform {kind}: answer fails its MaXacThuc check")
        code = str(reply.get("MaLoi"))
        if code != "00":
            error = RetryableError if code in RETRYABLE_CODES else PermanentError
            raise error(f"payment platform {kind}: MaLoi {code}: {reply.get('MoTaLoi')!r}")
        return reply

    def _base(self, kind: str, reference: str, at: datetime) -> dict[str, Any]:
        return {"LoaiBanTin": kind, "PhienBan": VERSION, "MaDoiTac": self.partner, "MaThamChieu": reference,
                "ThoiGianGD": vn_time(at)}

    def start(self, request: PaymentRequest) -> Started:
        message = {
            **self._base("INIT", request.reference, request.at),
            "SoTien": request.amount, "LoaiHinhThanhToan": "PAY", "MaKenhThanhToan": "1", "MaThietBi": "1",
            "NgonNgu": "vi-VN", "MaTienTe": "VND", "MaNganHang": "", "ThongTinGiaoDich": request.description,
            "Ip": request.client_ip,
            "ThongTinBienLai": {
                "MaDVC": request.procedure_code, "MaTTHC": request.procedure_code, "MaHoSo": request.dossier_code,
                "MaDonVi": request.unit_code, "HoTenNguoiNop": request.payer_name,
                "PhiLePhi": [{"MaPhiLePhi": i.code, "TenPhiLePhi": i.name, "SoTien": i.amount}
                             for i in request.items],
            },
        }
        reply = self._call("INIT", message)
        if not reply.get("UrlThanhToan"):
            raise PermanentError("payment platform INIT: no UrlThanhToan in the answer")
        return Started(reply["UrlThanhToan"])

    def query(self, reference: str, *, created_at: datetime) -> Status:
        try:
            reply = self._call("QUERY", self._base("QUERY", reference, datetime.now(VN_TZ)))
        except PermanentError as exc:
            if "MaLoi 01" in str(exc):
                return Status(ProviderState.UNKNOWN)
            raise
        amount = reply.get("SoTien")
        return Status(QUERY_STATES.get(str(reply.get("TrangThai")), ProviderState.UNKNOWN),
                      amount if isinstance(amount, int) else None, reply.get("MaGiaoDich"))

    def receipt(self, reference: str) -> bytes | None:
        reply = self._call("GET_BILL", self._base("GET_BILL", reference, datetime.now(VN_TZ)))
        try:
            pdf = base64.b64decode(reply.get("BienLai") or "", validate=True)
        except (binascii.Error, ValueError):
            raise PermanentError("payment platform GET_BILL: BienLai is not base64") from None
        if not pdf.startswith(b"%PDF"):
            raise PermanentError("payment platform GET_BILL: BienLai is not a PDF")
        return pdf

    def read_callback(self, data: Mapping[str, Any]) -> Callback:
        amount = data.get("SoTien")
        return Callback(
            authentic=checksum.verify("CALLBACK", data, self.secret) and data.get("MaDoiTac") == self.partner,
            reference=data.get("MaThamChieu") if isinstance(data.get("MaThamChieu"), str) else None,
            amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
            state=CALLBACK_STATES.get(str(data.get("MaLoi")), ProviderState.UNKNOWN),
            transaction_id=data.get("MaGiaoDich") if isinstance(data.get("MaGiaoDich"), str) else None,
            raw=dict(data),
        )

    def answer(self, callback: Callback, verdict: CallbackVerdict) -> Answer:
        code, text = VERDICT_CODES[verdict]
        body = {"MaLoi": code, "MoTaLoi": text, "MaDoiTac": self.partner, "MaThamChieu": callback.reference or "",
                "ThoiGianGD": vn_time(datetime.now(VN_TZ))}
        return Answer(200, checksum.sign("REPLY", body, self.secret))
