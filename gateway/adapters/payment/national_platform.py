"""The national portal's payment platform: INIT, QUERY, GET_BILL over JSON, each signed with MaXacThuc.

Fields, defaults and codes follow two provincial clients of the platform (docs/partners/payment-platform.md
names them; their messages are in tests/conformance/payment_platform/): TD.DichVuCongApi's DvcPaymentService
and OpenCPS v2's pay-gate-integration. What neither shows is marked [assumed] here and in that document.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import requests

from gateway.adapters.base import PermanentError, PerThreadHttp, RetryableError, send
from gateway.domain.dossier import VN_TZ

from . import national_platform_checksum as checksum
from .base import Answer, Callback, CallbackVerdict, PaymentProvider, PaymentRequest, ProviderState, Started, Status

VERSION = "1.0.6"  # PhienBan of INIT, QUERY and GET_BILL in TD.DichVuCongApi
TIME = "%Y%m%d%H%M%S"
# INIT's fixed fields, as both clients send them (TD's defaults; OpenCPS reads the same names from config).
INIT_DEFAULTS: dict[str, str] = {"LoaiHinhThanhToan": "PAY", "MaKenhThanhToan": "1", "MaThietBi": "1",
                                 "NgonNgu": "vi-VN", "MaTienTe": "VND", "MaNganHang": "PAYMENT"}
SERVICE_KIND = "2"  # ThongTinBienLai.MaDichVu: 2 = a public service fee (both clients); 1 = a fine
PDF_MAGIC = b"%PDF"

# MaLoi of the platform's answers: "00" is success in both clients; which others are worth another try
# is not published. [assumed: "99" only]
RETRYABLE_CODES = frozenset({"99"})
NOT_FOUND = "01"  # [assumed] MaLoi of an answer about a MaThamChieu the platform does not know
# TrangThaiGD of a QUERY answer (TD.DichVuCongApi, TaskCheckConfirmGiaoDichThanhToanServices.cs):
# 1 paid; 3 pending, the platform does not know the final state yet; 4 payment failed.
QUERY_STATES: dict[str, ProviderState] = {"1": ProviderState.PAID, "3": ProviderState.PENDING,
                                         "4": ProviderState.CANCELLED}
# MaLoi of a callback: "00" paid (both clients); anything else is not a payment (TD marks it failed).
# [assumed: "24" is the citizen cancelling, VNPay's code; other codes leave the payment as it is]
CALLBACK_STATES: dict[str, ProviderState] = {"00": ProviderState.PAID, "24": ProviderState.CANCELLED}
# Our verdict on a callback, as MaLoi / MoTaLoi. OpenCPS answers "00" "Thành công" or "99" "Các lỗi khác";
# the text after the colon is ours, for the people reading the platform's logs.
VERDICT_CODES: dict[CallbackVerdict, tuple[str, str]] = {
    CallbackVerdict.APPLIED: ("00", "Thành công"),
    CallbackVerdict.ALREADY_APPLIED: ("00", "Thành công"),
    CallbackVerdict.UNKNOWN_REFERENCE: ("99", "Các lỗi khác: không tìm thấy giao dịch"),
    CallbackVerdict.WRONG_AMOUNT: ("99", "Các lỗi khác: sai số tiền"),
    CallbackVerdict.BAD_SIGNATURE: ("99", "Các lỗi khác: sai mã xác thực"),
    CallbackVerdict.ERROR: ("99", "Các lỗi khác"),
}


def vn_time(moment: datetime) -> str:
    return moment.astimezone(VN_TZ).strftime(TIME)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def unwrapped(reply: dict[str, Any]) -> dict[str, Any]:
    """An answer as TD.DichVuCongApi receives INIT's through its connection, {"error_code", "message": "<the
    platform's answer as a JSON string>"}, is opened; any other answer is the platform's own."""
    inner = reply.get("message")
    if "error_code" in reply and "MaLoi" not in reply and isinstance(inner, str):
        try:
            opened = json.loads(inner)
        except ValueError:
            return reply
        if isinstance(opened, dict):
            return opened
    return reply


class NationalPlatform(PaymentProvider):
    name = "national_platform"
    issues_receipts = True  # GET_BILL

    def __init__(self, *, base_url: str, partner: str, secret: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.partner = partner
        self.secret = secret
        self.timeout = timeout
        self._http_sessions = PerThreadHttp(abandon_after=timeout)

    def _post(self, kind: str, message: dict[str, Any]) -> requests.Response:
        # [assumed] one endpoint for every message type; both clients configure a URL per type.
        return send(self._http_sessions, "POST", f"{self.base_url}/api", f"payment platform {kind}",
                    timeout=self.timeout, json=checksum.sign(kind, message, self.secret))

    def _checked(self, kind: str, response: requests.Response) -> dict[str, Any]:
        try:
            reply = response.json()
        except ValueError:
            raise RetryableError(f"payment platform {kind}: answer is not JSON") from None
        if not isinstance(reply, dict):
            raise RetryableError(f"payment platform {kind}: answer is not a JSON object")
        # Its MaXacThuc is not checked: neither public client checks one, nor shows how the platform signs its
        # answers; an answer to our own call over TLS is the platform's.
        reply = unwrapped(reply)
        code = str(reply.get("MaLoi"))
        if code != "00":
            error = RetryableError if code in RETRYABLE_CODES else PermanentError
            raise error(f"payment platform {kind}: MaLoi {code}: {reply.get('MoTaLoi')!r}")
        return reply

    def _base(self, kind: str, reference: str, at: datetime) -> dict[str, Any]:
        return {"LoaiBanTin": kind, "PhienBan": VERSION, "MaDoiTac": self.partner, "MaThamChieu": reference,
                "ThoiGianGD": vn_time(at)}

    def init_message(self, request: PaymentRequest) -> dict[str, Any]:
        """The INIT message, unsigned: SoTien as text, as both clients send it."""
        return {
            **self._base("INIT", request.reference, request.at), "SoTien": str(request.amount), **INIT_DEFAULTS,
            "ThongTinGiaoDich": request.description, "Ip": request.client_ip,
            "ThongTinBienLai": {
                "MaDichVu": SERVICE_KIND,
                "MaDVC": request.procedure_code,  # [assumed] the procedure code stands for the service code
                "TenDVC": request.procedure_name, "MaTTHC": request.procedure_code,
                "TenTTHC": request.procedure_name, "MaDonVi": request.unit_code, "MaHoSo": request.dossier_code,
                "NoiDungThanhToan": request.description, "HoTenNguoiNop": request.payer_name,
                "SoCMNDNguoiNop": request.payer_id_number, "DiaChiNguoiNop": request.payer_address,
                "PhiLePhi": [{"MaPhiLePhi": i.code, "TenPhiLePhi": i.name, "SoTien": i.amount}
                             for i in request.items],
                "DSKhoanNop": [{"NoiDung": request.description, "SoTien": str(request.amount)}],
            },
        }

    def start(self, request: PaymentRequest) -> Started:
        reply = self._checked("INIT", self._post("INIT", self.init_message(request)))
        if not reply.get("UrlThanhToan"):
            raise PermanentError("payment platform INIT: no UrlThanhToan in the answer")
        return Started(reply["UrlThanhToan"])

    def query(self, reference: str, *, created_at: datetime) -> Status:
        # ThoiGianGD of a QUERY is the payment's own (the INIT's), as TD.DichVuCongApi sends it.
        try:
            reply = self._checked("QUERY", self._post("QUERY", self._base("QUERY", reference, created_at)))
        except PermanentError as exc:
            if f"MaLoi {NOT_FOUND}" in str(exc):
                return Status(ProviderState.UNKNOWN)
            raise
        amount = reply.get("SoTien")
        return Status(QUERY_STATES.get(str(reply.get("TrangThaiGD")), ProviderState.UNKNOWN),
                      _whole(amount), reply.get("MaGiaoDich") or None)

    def receipt(self, reference: str, *, created_at: datetime) -> bytes | None:
        """GET_BILL answers the receipt PDF itself (TD.DichVuCongApi stores the body as the .pdf); a JSON
        answer is an error, or [assumed] the PDF in base64 under BienLai."""
        response = self._post("GET_BILL", self._base("GET_BILL", reference, created_at))
        if response.content.startswith(PDF_MAGIC):
            return response.content
        reply = self._checked("GET_BILL", response)
        try:
            pdf = base64.b64decode(reply.get("BienLai") or "", validate=True)
        except (binascii.Error, ValueError):
            raise PermanentError("payment platform GET_BILL: BienLai is not base64") from None
        if not pdf.startswith(PDF_MAGIC):
            raise PermanentError("payment platform GET_BILL: the answer is no PDF")
        return pdf

    def read_callback(self, data: Mapping[str, Any]) -> Callback:
        return Callback(
            authentic=checksum.verify("CALLBACK", data, self.secret) and data.get("MaDoiTac") == self.partner,
            reference=data.get("MaThamChieu") if isinstance(data.get("MaThamChieu"), str) else None,
            amount=_whole(data.get("SoTien")),
            state=CALLBACK_STATES.get(str(data.get("MaLoi")), ProviderState.UNKNOWN),
            transaction_id=data.get("MaGiaoDich") if isinstance(data.get("MaGiaoDich"), str) else None,
            raw=dict(data),
        )

    def answer(self, callback: Callback, verdict: CallbackVerdict) -> Answer:
        """Both clients answer MaLoi, MoTaLoi, MaDoiTac, MaThamChieu and ThoiGianGD, and hand the callback's
        own MaXacThuc and ThoiGianGD back (no new checksum)."""
        code, text = VERDICT_CODES[verdict]
        raw = callback.raw
        return Answer(200, {"MaLoi": code, "MoTaLoi": text, "MaDoiTac": self.partner,
                            "MaThamChieu": callback.reference or "", "ThoiGianGD": _text(raw.get("ThoiGianGD")),
                            "MaXacThuc": _text(raw.get("MaXacThuc"))})


def _whole(amount: Any) -> int | None:
    """SoTien as a number (TD's callback) or as digits (both clients' INIT); anything else is unreadable."""
    if isinstance(amount, int) and not isinstance(amount, bool):
        return amount
    if isinstance(amount, str) and amount.isascii() and amount.isdigit():
        return int(amount)
    return None
