"""Fake national portal payment platform (Nền tảng thanh toán, DVCQG): JSON messages signed with SHA-256.

INIT opens an order and answers its pay URL, QUERY reads it, GET_BILL answers the receipt PDF; after the
payer pays or cancels, the platform POSTs the signed PAY callback. Orders, pages and callback sending are
shared with VNPay (`payment_orders.py`).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
from typing import Any

from flask import Blueprint, Response, make_response, request

from mocks.harness import Delivery, Fault, Outcome, deliver, json_object, json_reply
from mocks.payment_orders import (
    OrderStatus,
    Partner,
    PaymentConfig,
    PaymentOrders,
    add_pay_buttons,
    not_found_page,
    now_vn,
    pay_page,
)

PLATFORM = "national_platform"
INIT_ORDER = (
    "LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "SoTien", "LoaiHinhThanhToan", "MaKenhThanhToan",
    "MaThietBi", "NgonNgu", "MaTienTe", "MaNganHang", "ThongTinGiaoDich", "ThoiGianGD", "Ip",
)  # fmt: skip
QUERY_ORDER = ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD")
CALLBACK_ORDER = (
    "LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "SoTien", "MaTienTe", "MaGiaoDich", "MaNganHang",
    "ThoiGianGD", "ThongTinGiaoDich",
)  # fmt: skip
REPLY_ORDER = ("MaLoi", "MaDoiTac", "MaThamChieu", "ThoiGianGD")
REQUEST_ORDERS = {"INIT": INIT_ORDER, "QUERY": QUERY_ORDER, "GET_BILL": QUERY_ORDER}
RECEIPT_TEXT = ("MaDVC", "MaTTHC", "MaHoSo", "MaDonVi", "HoTenNguoiNop")
# TrangThaiGD of a QUERY answer: 1 paid, 3 pending, 4 failed (TD.DichVuCongApi).
PLATFORM_STATUS = {OrderStatus.PAID: "1", OrderStatus.PENDING: "3", OrderStatus.CANCELLED: "4"}


class Invalid(Exception):
    """A bad INIT, answered with MaLoi 04."""


def platform_checksum(message: dict[str, Any], order: tuple[str, ...], secret: str) -> str:
    """SHA-256 hex of the fields in `order` (None/missing → ""), joined by "|", then "|" + secret.

    Own implementation: never shared with the gateway."""
    parts = ["" if message.get(key) is None else str(message[key]) for key in order]
    return hashlib.sha256("|".join([*parts, secret]).encode()).hexdigest()


def receipt_pdf(lines: list[str]) -> bytes:
    """A minimal valid one-page PDF showing `lines` (ASCII) in Helvetica."""
    text = " ".join(
        f"({line.encode('ascii', 'replace').decode().replace(chr(92), '/').replace('(', '[').replace(')', ']')}) Tj T*"
        for line in lines
    )
    stream = f"BT /F1 12 Tf 14 TL 50 780 Td {text} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def _whole(value: Any) -> int | None:
    """SoTien as a JSON number or as digits (the platform's clients send INIT's SoTien as text)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _validate_init(body: dict[str, Any]) -> int:
    """Check SoTien and ThongTinBienLai of an INIT; returns the amount or raises Invalid."""
    amount = _whole(body.get("SoTien"))
    if amount is None or amount <= 0:
        raise Invalid("SoTien phải là số nguyên dương")
    receipt = body.get("ThongTinBienLai")
    if not isinstance(receipt, dict):
        raise Invalid("ThongTinBienLai phải là đối tượng")
    for key in RECEIPT_TEXT:
        if not isinstance(receipt.get(key), str) or not receipt[key].strip():
            raise Invalid(f"ThongTinBienLai.{key} là bắt buộc")
    items = receipt.get("PhiLePhi")
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise Invalid("PhiLePhi phải là danh sách không rỗng")
    total = 0
    for item in items:
        value = _whole(item.get("SoTien"))
        if value is None or value <= 0:
            raise Invalid("SoTien của phí/lệ phí phải là số nguyên dương")
        total += value
    if total != amount:
        raise Invalid("Tổng phí/lệ phí không khớp SoTien")
    return amount


def reply(cfg: PaymentConfig, body: dict[str, Any], code: str, message: str, **extra: Any) -> dict[str, Any]:
    answer = {
        "MaLoi": code,
        "MoTaLoi": message,
        "MaDoiTac": body.get("MaDoiTac") if isinstance(body.get("MaDoiTac"), str) else "",
        "MaThamChieu": body.get("MaThamChieu") if isinstance(body.get("MaThamChieu"), str) else "",
        "ThoiGianGD": now_vn(),
    } | extra
    answer["MaXacThuc"] = platform_checksum(answer, REPLY_ORDER, cfg.platform_secret)
    return answer


def call(state: PaymentOrders, body: dict[str, Any], host_url: str) -> Outcome:
    """Answer one INIT, QUERY or GET_BILL."""
    with state.lock:
        cfg = state.config
        kind = body.get("LoaiBanTin")
        order = REQUEST_ORDERS.get(kind) if isinstance(kind, str) else None
        if order is None:
            return 200, reply(cfg, body, "03", f"Loại bản tin không hợp lệ: {kind}")
        expected = platform_checksum(body, order, cfg.platform_secret)
        given = body.get("MaXacThuc")
        if body.get("MaDoiTac") != cfg.platform_partner or not isinstance(given, str) or not hmac.compare_digest(
            given.lower(), expected
        ):
            return 200, reply(cfg, body, "97", "Sai mã xác thực")
        ref = body.get("MaThamChieu")
        if not isinstance(ref, str) or not ref:
            return 200, reply(cfg, body, "01", "Thiếu mã tham chiếu")
        if kind == "INIT":
            return _init(state, body, ref, host_url)
        found = state.orders[PLATFORM].get(ref)
        if found is None:
            return 200, reply(cfg, body, "01", "Không tìm thấy giao dịch")
        if kind == "QUERY":
            # The answer TD.DichVuCongApi reads: the callback's fields and TrangThaiGD.
            extra: dict[str, Any] = {
                "LoaiBanTin": "QUERY", "TrangThaiGD": PLATFORM_STATUS[found["status"]], "SoTien": found["amount"],
                "MaTienTe": "VND", "MaGiaoDich": found["transaction_no"] or "",
                "MaNganHang": found["bank_code"] or "", "ThongTinGiaoDich": found.get("order_info") or "",
            }  # fmt: skip
            return 200, reply(cfg, body, "00", "Thành công", **extra)
        if found["status"] != OrderStatus.PAID:
            return 200, reply(cfg, body, "05", "Giao dịch chưa được thanh toán")
        lines = [
            "BIEN LAI THU PHI, LE PHI",
            f"Ma tham chieu: {ref}",
            f"So tien: {found['amount']} VND",
            f"Ma giao dich: {found['transaction_no']}",
            f"Thoi gian thanh toan: {found['paid_at']}",
        ]
        return 200, receipt_pdf(lines)  # GET_BILL answers the PDF itself


def _init(state: PaymentOrders, body: dict[str, Any], ref: str, host_url: str) -> Outcome:
    try:
        amount = _validate_init(body)
    except Invalid as exc:
        return 200, reply(state.config, body, "04", f"Sai số tiền: {exc}")
    details = {"order_info": body.get("ThongTinGiaoDich"), "receipt": copy.deepcopy(body["ThongTinBienLai"])}
    if not state.open_order(PLATFORM, ref, amount, details):
        return 200, reply(state.config, body, "02", "Mã tham chiếu đã tồn tại với số tiền khác")
    url = f"{host_url.rstrip('/')}/payment/platform/pay/{ref}"
    return 200, reply(state.config, body, "00", "Thành công", UrlThanhToan=url)


# --- the PAY callback ------------------------------------------------------------


def callback(cfg: PaymentConfig, found: dict[str, Any]) -> dict[str, Any]:
    paid = found["status"] == OrderStatus.PAID
    message = {
        "LoaiBanTin": "PAY",
        "MaLoi": "00" if paid else "24",
        "MaDoiTac": cfg.platform_partner,
        "MaThamChieu": found["ref"],
        "SoTien": found["amount"],
        "MaTienTe": "VND",
        "MaGiaoDich": found["transaction_no"] or "",
        "MaNganHang": "NCB",
        "ThoiGianGD": found["paid_at"],
        "ThongTinGiaoDich": found.get("order_info") or "",
    }
    message["MaXacThuc"] = platform_checksum(message, CALLBACK_ORDER, cfg.platform_secret)
    return message


def answer_valid(answer: Any, message: dict[str, Any]) -> bool:
    """Whether the callback answer has the expected shape: its MaLoi, and the callback's MaXacThuc handed back
    (both public clients of the platform do so)."""
    if not isinstance(answer, dict):
        return False
    given, sent = answer.get("MaXacThuc"), message.get("MaXacThuc")
    return isinstance(answer.get("MaLoi"), str) and isinstance(given, str) and given == sent


def _send(url: str, message: dict[str, Any], timeout: float) -> Delivery:
    return deliver("POST", url, timeout, json=message)


PARTNER = Partner(
    name=PLATFORM,
    transaction_no=lambda counter, paid: f"GD{counter:08d}" if paid else None,
    callback_url=lambda cfg: cfg.platform_callback_url,
    callback=callback,
    signature="MaXacThuc",
    send=_send,
    answer_valid=answer_valid,
)


# --- routes --------------------------------------------------------------------


def _render(status: int, payload: Any) -> Response:
    if isinstance(payload, bytes):
        return make_response(payload, status, {"Content-Type": "application/pdf"})
    return json_reply(status, payload)


def add_routes(bp: Blueprint, state: PaymentOrders) -> None:
    """The platform's API and pay page, under `/platform` of the payment mock."""

    @bp.post("/platform/api")
    def platform_api() -> Response:
        body = json_object()
        if body is None:
            return state.unreadable(None, 400, reply(state.config, {}, "03", "Body phải là đối tượng JSON hợp lệ"))
        kind = body.get("LoaiBanTin")
        service = kind if isinstance(kind, str) else ""

        def busy(_fault: Fault) -> Outcome:
            return 200, reply(state.config, body, "99", "Hệ thống đang bận")

        return state.serve(service, body, lambda: call(state, body, request.host_url), busy, render=_render)

    @bp.get("/platform/pay/<ref>")
    def platform_pay_page(ref: str) -> Response:
        found = state.snapshot(PLATFORM, ref)
        state.record(None, None, 200 if found else 404, None, None)
        return pay_page(found, f"/payment/platform/pay/{ref}") if found else not_found_page()

    add_pay_buttons(bp, state, PLATFORM, "/platform/pay")
