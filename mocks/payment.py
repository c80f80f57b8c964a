"""Fake payment providers: the national portal payment platform (JSON, SHA-256) and VNPay (HMAC-SHA512)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import html
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import quote_plus, urlencode

import requests
from flask import Blueprint, Response, jsonify, make_response, request

from mocks.harness import (
    CALLBACK_MODES,
    Fault,
    FaultInjector,
    MockConfig,
    Outcome,
    RequestLog,
    add_config_endpoints,
    add_mock_endpoints,
    finish,
    replaced_outcome,
)

VN_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")  # no DST in Vietnam
PLATFORM, VNPAY = "national_platform", "vnpay"
PENDING, PAID, CANCELLED = "PENDING", "PAID", "CANCELLED"
CHANGED_AMOUNT_VND = 1000

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
QUERYDR_ORDER = (
    "vnp_RequestId", "vnp_Version", "vnp_Command", "vnp_TmnCode", "vnp_TxnRef", "vnp_TransactionDate",
    "vnp_CreateDate", "vnp_IpAddr", "vnp_OrderInfo",
)  # fmt: skip
QUERYDR_REPLY_ORDER = (
    "vnp_ResponseId", "vnp_Command", "vnp_ResponseCode", "vnp_Message", "vnp_TmnCode", "vnp_TxnRef", "vnp_Amount",
    "vnp_BankCode", "vnp_PayDate", "vnp_TransactionNo", "vnp_TransactionType", "vnp_TransactionStatus",
    "vnp_OrderInfo", "vnp_PromotionCode", "vnp_PromotionAmount",
)  # fmt: skip
RECEIPT_TEXT = ("MaDVC", "MaTTHC", "MaHoSo", "MaDonVi", "HoTenNguoiNop")
VNPAY_STATUS = {PAID: "00", PENDING: "01", CANCELLED: "02"}
# TrangThaiGD of a QUERY answer: 1 paid, 3 pending, 4 failed (TD.DichVuCongApi).
PLATFORM_STATUS = {PAID: "1", PENDING: "3", CANCELLED: "4"}


class Invalid(Exception):
    """A validation failure (bad config body or bad INIT)."""


@dataclass
class PaymentConfig(MockConfig):
    POSITIVE: ClassVar[frozenset[str]] = frozenset({"callback_timeout_seconds"})

    platform_partner: str = "GATEWAY"
    platform_secret: str = "payment-secret"
    platform_callback_url: str = "http://127.0.0.1:8000/api/v1/callbacks/payments/national_platform"
    vnpay_tmn_code: str = "GATEWAY1"
    vnpay_secret: str = "VNPAYSECRET"
    vnpay_ipn_url: str = "http://127.0.0.1:8000/api/v1/callbacks/payments/vnpay"
    callback_timeout_seconds: float = 5.0


# --- signatures (own implementation: never shared with the gateway) ----------


def platform_checksum(message: dict[str, Any], order: tuple[str, ...], secret: str) -> str:
    """SHA-256 hex of the fields in `order` (None/missing → ""), joined by "|", then "|" + secret."""
    parts = ["" if message.get(key) is None else str(message[key]) for key in order]
    return hashlib.sha256("|".join([*parts, secret]).encode()).hexdigest()


def _php_urlencode(text: str) -> str:
    """PHP's urlencode(): all but [A-Za-z0-9_.-] escaped, space as "+" (quote_plus keeps "~" too)."""
    return quote_plus(text, safe="").replace("~", "%7E")


def vnpay_query_hash(params: dict[str, Any], secret: str) -> str:
    """HMAC-SHA512 over the sorted vnp_* params (minus the hash fields), `urlencode(name)=urlencode(value)`
    joined by "&", as VNPay's PHP demo (vnpay_ipn.php) computes it."""
    items = sorted((k, str(v)) for k, v in params.items() if k.startswith("vnp_") and k not in _HASH_KEYS)
    data = "&".join(f"{_php_urlencode(k)}={_php_urlencode(v)}" for k, v in items)
    return hmac.new(secret.encode(), data.encode(), hashlib.sha512).hexdigest()


_HASH_KEYS = ("vnp_SecureHash", "vnp_SecureHashType")


def vnpay_pipe_hash(message: dict[str, Any], order: tuple[str, ...], secret: str) -> str:
    """HMAC-SHA512 over the fields in `order` joined by "|" (missing → "")."""
    data = "|".join("" if message.get(k) is None else str(message[k]) for k in order)
    return hmac.new(secret.encode(), data.encode(), hashlib.sha512).hexdigest()


def now_vn() -> str:
    return datetime.now(VN_TZ).strftime("%Y%m%d%H%M%S")


def _corrupt(signature: str) -> str:
    return ("1" if signature[0] == "0" else "0") + signature[1:]


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


class PaymentProviders:
    """State of one mock instance: config, orders of both providers, counters."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.log = RequestLog()
        self.faults = FaultInjector()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.config = PaymentConfig()
            self.orders: dict[str, dict[str, dict[str, Any]]] = {PLATFORM: {}, VNPAY: {}}
            self.counter = 0

    def snapshot(self, provider: str | None = None, ref: str | None = None) -> Any:
        with self.lock:
            if provider is None:
                return copy.deepcopy(self.orders)
            return copy.deepcopy(self.orders.get(provider, {}).get(ref or ""))

    # --- national platform ---------------------------------------------

    def platform_reply(self, body: dict[str, Any], code: str, message: str, **extra: Any) -> dict[str, Any]:
        reply = {
            "MaLoi": code,
            "MoTaLoi": message,
            "MaDoiTac": body.get("MaDoiTac") if isinstance(body.get("MaDoiTac"), str) else "",
            "MaThamChieu": body.get("MaThamChieu") if isinstance(body.get("MaThamChieu"), str) else "",
            "ThoiGianGD": now_vn(),
        } | extra
        reply["MaXacThuc"] = platform_checksum(reply, REPLY_ORDER, self.config.platform_secret)
        return reply

    def platform_call(self, body: dict[str, Any], host_url: str) -> Outcome:
        with self.lock:
            kind = body.get("LoaiBanTin")
            order = REQUEST_ORDERS.get(kind) if isinstance(kind, str) else None
            if order is None:
                return 200, self.platform_reply(body, "03", f"Loại bản tin không hợp lệ: {kind}")
            cfg = self.config
            expected = platform_checksum(body, order, cfg.platform_secret)
            given = body.get("MaXacThuc")
            if body.get("MaDoiTac") != cfg.platform_partner or not isinstance(given, str) or not hmac.compare_digest(
                given.lower(), expected
            ):
                return 200, self.platform_reply(body, "97", "Sai mã xác thực")
            ref = body.get("MaThamChieu")
            if not isinstance(ref, str) or not ref:
                return 200, self.platform_reply(body, "01", "Thiếu mã tham chiếu")
            if kind == "INIT":
                return self._platform_init(body, ref, host_url)
            found = self.orders[PLATFORM].get(ref)
            if found is None:
                return 200, self.platform_reply(body, "01", "Không tìm thấy giao dịch")
            if kind == "QUERY":
                # The answer TD.DichVuCongApi reads: the callback's fields and TrangThaiGD.
                extra: dict[str, Any] = {
                    "LoaiBanTin": "QUERY", "TrangThaiGD": PLATFORM_STATUS[found["status"]], "SoTien": found["amount"],
                    "MaTienTe": "VND", "MaGiaoDich": found["transaction_no"] or "",
                    "MaNganHang": found["bank_code"] or "", "ThongTinGiaoDich": found.get("order_info") or "",
                }
                return 200, self.platform_reply(body, "00", "Thành công", **extra)
            if found["status"] != PAID:
                return 200, self.platform_reply(body, "05", "Giao dịch chưa được thanh toán")
            lines = [
                "BIEN LAI THU PHI, LE PHI",
                f"Ma tham chieu: {ref}",
                f"So tien: {found['amount']} VND",
                f"Ma giao dich: {found['transaction_no']}",
                f"Thoi gian thanh toan: {found['paid_at']}",
            ]
            return 200, receipt_pdf(lines)  # GET_BILL answers the PDF itself

    def _platform_init(self, body: dict[str, Any], ref: str, host_url: str) -> Outcome:
        try:
            amount = _validate_init(body)
        except Invalid as exc:
            return 200, self.platform_reply(body, "04", f"Sai số tiền: {exc}")
        found = self.orders[PLATFORM].get(ref)
        if found is not None and found["amount"] != amount:
            return 200, self.platform_reply(body, "02", "Mã tham chiếu đã tồn tại với số tiền khác")
        if found is None:
            self.orders[PLATFORM][ref] = self._new_order(PLATFORM, ref, amount) | {
                "order_info": body.get("ThongTinGiaoDich"),
                "receipt": copy.deepcopy(body["ThongTinBienLai"]),
            }
        url = f"{host_url.rstrip('/')}/payment/platform/pay/{ref}"
        return 200, self.platform_reply(body, "00", "Thành công", UrlThanhToan=url)

    def _new_order(self, provider: str, ref: str, amount: int) -> dict[str, Any]:
        return {
            "provider": provider,
            "ref": ref,
            "amount": amount,
            "status": PENDING,
            "created_at": now_vn(),
            "paid_at": None,
            "transaction_no": None,
            "bank_code": None,
            "callbacks": [],
            "callback_faults": [],
        }

    # --- VNPay ----------------------------------------------------------

    def vnpay_open(self, params: dict[str, str]) -> tuple[int, str]:
        """Check a pay URL and create/keep its order; returns (status, error message or txnref)."""
        with self.lock:
            cfg = self.config
            given = params.get("vnp_SecureHash", "")
            expected = vnpay_query_hash(params, cfg.vnpay_secret)
            if params.get("vnp_TmnCode") != cfg.vnpay_tmn_code or not hmac.compare_digest(given.lower(), expected):
                return 400, "Sai chữ ký"
            ref, raw = params.get("vnp_TxnRef", ""), params.get("vnp_Amount", "")
            if not ref or not raw.isdigit() or int(raw) <= 0 or int(raw) % 100:
                return 400, "Dữ liệu không hợp lệ (vnp_TxnRef, vnp_Amount)"
            amount = int(raw) // 100
            found = self.orders[VNPAY].get(ref)
            if found is not None and found["amount"] != amount:
                return 400, "Mã giao dịch đã tồn tại với số tiền khác"
            if found is None:
                self.orders[VNPAY][ref] = self._new_order(VNPAY, ref, amount) | {
                    "order_info": params.get("vnp_OrderInfo", ""),
                    "return_url": params.get("vnp_ReturnUrl", ""),
                    "create_date": params.get("vnp_CreateDate", ""),
                }
            return 200, ref

    def vnpay_result_params(self, found: dict[str, Any]) -> dict[str, str]:
        """Signed IPN / return-URL params for a finished order."""
        paid = found["status"] == PAID
        params = {
            "vnp_Amount": str(found["amount"] * 100),
            "vnp_BankCode": "NCB",
            "vnp_CardType": "ATM",
            "vnp_OrderInfo": found.get("order_info") or "",
            "vnp_PayDate": found["paid_at"],
            "vnp_ResponseCode": "00" if paid else "24",
            "vnp_TmnCode": self.config.vnpay_tmn_code,
            "vnp_TransactionNo": found["transaction_no"],
            "vnp_TransactionStatus": VNPAY_STATUS[found["status"]],
            "vnp_TxnRef": found["ref"],
        }
        if paid:  # empty values are never sent (they would be ambiguous in the hash)
            params["vnp_BankTranNo"] = f"VNP{found['transaction_no']}"
        params["vnp_SecureHash"] = vnpay_query_hash(params, self.config.vnpay_secret)
        return params

    def querydr(self, body: dict[str, Any]) -> Outcome:
        with self.lock:
            cfg = self.config
            given = body.get("vnp_SecureHash")
            expected = vnpay_pipe_hash(body, QUERYDR_ORDER, cfg.vnpay_secret)
            if (
                body.get("vnp_TmnCode") != cfg.vnpay_tmn_code
                or body.get("vnp_Command") != "querydr"
                or not isinstance(given, str)
                or not hmac.compare_digest(given.lower(), expected)
            ):
                return 200, self.querydr_reply(body, "97", "Invalid Checksum")
            found = self.orders[VNPAY].get(str(body.get("vnp_TxnRef")))
            if found is None:
                return 200, self.querydr_reply(body, "91", "Transaction not found")
            extra = {
                "vnp_Amount": str(found["amount"] * 100),
                "vnp_BankCode": "NCB" if found["status"] == PAID else "",
                "vnp_PayDate": found["paid_at"] or "",
                "vnp_TransactionNo": found["transaction_no"] or "",
                "vnp_TransactionType": "01",
                "vnp_TransactionStatus": VNPAY_STATUS[found["status"]],
                "vnp_OrderInfo": found.get("order_info") or "",
            }
            return 200, self.querydr_reply(body, "00", "QueryDR Success", **extra)

    def querydr_reply(self, body: dict[str, Any], code: str, message: str, **extra: Any) -> dict[str, Any]:
        reply = {
            "vnp_ResponseId": secrets.token_hex(16),
            "vnp_Command": "querydr",
            "vnp_ResponseCode": code,
            "vnp_Message": message,
            "vnp_TmnCode": self.config.vnpay_tmn_code,
            "vnp_TxnRef": body.get("vnp_TxnRef") if isinstance(body.get("vnp_TxnRef"), str) else "",
        } | extra
        reply["vnp_SecureHash"] = vnpay_pipe_hash(reply, QUERYDR_REPLY_ORDER, self.config.vnpay_secret)
        return reply

    # --- paying, cancelling and the callback -----------------------------

    def settle(self, provider: str, ref: str, outcome: str) -> tuple[bool, dict[str, Any] | None, list[dict[str, Any]]]:
        """Pay or cancel a pending order and send its callback.

        Returns (changed, order snapshot or None if unknown, callback results of this action).
        """
        with self.lock:
            found = self.orders.get(provider, {}).get(ref)
            if found is None:
                return False, None, []
            if found["status"] != PENDING:
                return False, copy.deepcopy(found), []
            self.counter += 1
            found["status"] = PAID if outcome == "paid" else CANCELLED
            found["paid_at"] = now_vn()
            found["bank_code"] = "NCB"
            if provider == PLATFORM:
                found["transaction_no"] = f"GD{self.counter:08d}" if outcome == "paid" else None
            else:
                found["transaction_no"] = str(14000000 + self.counter) if outcome == "paid" else "0"
            fault = self.faults.take("callback", modes=CALLBACK_MODES)
            if fault is not None:
                found["callback_faults"].append(fault.mode)
            message = self._callback_message(found, fault)
            timeout = self.config.callback_timeout_seconds
            url = self.config.platform_callback_url if provider == PLATFORM else self.config.vnpay_ipn_url
        results: list[dict[str, Any]] = []
        if fault is None or fault.mode != "no_callback":
            copies = 2 if fault is not None and fault.mode == "callback_twice" else 1
            results = self._send(provider, url, message, timeout, copies)
        with self.lock:
            found["callbacks"].extend(results)
            return True, copy.deepcopy(found), copy.deepcopy(results)

    def _callback_message(self, found: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
        mode = fault.mode if fault is not None else None
        if found["provider"] == VNPAY:
            params = self.vnpay_result_params(found)
            if mode == "changed_amount":
                params["vnp_Amount"] = str(int(params["vnp_Amount"]) + CHANGED_AMOUNT_VND * 100)
                params["vnp_SecureHash"] = vnpay_query_hash(params, self.config.vnpay_secret)
            if mode == "bad_checksum":
                params["vnp_SecureHash"] = _corrupt(params["vnp_SecureHash"])
            return params
        paid = found["status"] == PAID
        message = {
            "LoaiBanTin": "PAY",
            "MaLoi": "00" if paid else "24",
            "MaDoiTac": self.config.platform_partner,
            "MaThamChieu": found["ref"],
            "SoTien": found["amount"] + (CHANGED_AMOUNT_VND if mode == "changed_amount" else 0),
            "MaTienTe": "VND",
            "MaGiaoDich": found["transaction_no"] or "",
            "MaNganHang": "NCB",
            "ThoiGianGD": found["paid_at"],
            "ThongTinGiaoDich": found.get("order_info") or "",
        }
        message["MaXacThuc"] = platform_checksum(message, CALLBACK_ORDER, self.config.platform_secret)
        if mode == "bad_checksum":
            message["MaXacThuc"] = _corrupt(message["MaXacThuc"])
        return message

    def _send(self, provider: str, url: str, message: dict[str, Any], timeout: float, copies: int) -> list[dict]:
        """Send the callback `copies` times at the same moment (one thread each); returns what came back."""
        results: list[dict[str, Any]] = [{} for _ in range(copies)]
        start = threading.Barrier(copies)

        def one(slot: int) -> None:
            start.wait()
            results[slot] = self._send_once(provider, url, message, timeout)

        if copies == 1:
            return [self._send_once(provider, url, message, timeout)]
        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(copies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout + 5)
        return results

    def _send_once(self, provider: str, url: str, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        result: dict[str, Any] = {"sent_at": now_vn(), "body": dict(message), "status": None, "answer": None}
        result["error"] = None
        try:
            if provider == PLATFORM:
                resp = requests.post(url, json=message, timeout=timeout)
            else:
                resp = requests.get(url, params=message, timeout=timeout)
        except requests.RequestException as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
            return result
        result["status"] = resp.status_code
        try:
            result["answer"] = resp.json()
        except ValueError:
            result["answer"] = resp.text[:2000]
        result["answer_valid"] = self._answer_valid(provider, result["answer"], message)
        return result

    def _answer_valid(self, provider: str, answer: Any, message: dict[str, Any]) -> bool:
        """Whether the callback answer has the expected shape (for the platform: its MaXacThuc handed back)."""
        if not isinstance(answer, dict):
            return False
        if provider == VNPAY:
            return isinstance(answer.get("RspCode"), str) and "Message" in answer
        # The partner hands the callback's own MaXacThuc back (both public clients of the platform do).
        given, sent = answer.get("MaXacThuc"), message.get("MaXacThuc")
        return isinstance(answer.get("MaLoi"), str) and isinstance(given, str) and given == sent


# --- HTML --------------------------------------------------------------------


def _page(title: str, body: str, status: int = 200) -> Response:
    doc = (
        '<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return make_response(doc, status, {"Content-Type": "text/html; charset=utf-8"})


def _vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".") + " VND"


def _pay_page(found: dict[str, Any], action_base: str) -> Response:
    rows = ""
    for item in (found.get("receipt") or {}).get("PhiLePhi", []):
        name, value = html.escape(str(item.get("TenPhiLePhi", ""))), item.get("SoTien", 0)
        rows += f"<tr><td>{html.escape(str(item.get('MaPhiLePhi', '')))}</td><td>{name}</td><td>{_vnd(value)}</td></tr>"
    table = f"<table><tr><th>Mã</th><th>Tên phí, lệ phí</th><th>Số tiền</th></tr>{rows}</table>" if rows else ""
    body = (
        f"<p>Mã tham chiếu: {html.escape(found['ref'])}</p>"
        f"<p>Nội dung: {html.escape(str(found.get('order_info') or ''))}</p>"
        f"<p>Số tiền: <strong>{_vnd(found['amount'])}</strong></p>{table}"
        f"<p>Trạng thái: {found['status']}</p>"
        f'<form method="post" action="{action_base}/pay"><button type="submit">Thanh toán</button></form>'
        f'<form method="post" action="{action_base}/cancel"><button type="submit">Hủy</button></form>'
    )
    return _page("Cổng thanh toán", body)


def _result_page(changed: bool, found: dict[str, Any], callbacks: list[dict[str, Any]], back: str = "") -> Response:
    if not changed:
        text = f"Giao dịch không còn chờ thanh toán (trạng thái: {found['status']}); không thay đổi gì."
        return _page("Không thực hiện", f"<p>{html.escape(text)}</p>", 409)
    title = "Thanh toán thành công" if found["status"] == PAID else "Đã hủy giao dịch"
    sent = ", ".join(str(c.get("status") or c.get("error")) for c in callbacks) or "không gửi"
    body = f"<p>Mã tham chiếu: {html.escape(found['ref'])}</p><p>Kết quả thông báo: {html.escape(sent)}</p>"
    if back:
        body += f'<p><a href="{html.escape(back)}">Quay lại trang dịch vụ</a></p>'
    return _page(title, body)


def _not_found_page() -> Response:
    return _page("Không tìm thấy giao dịch", "<p>Mã giao dịch không tồn tại.</p>", 404)


# --- blueprint -----------------------------------------------------------------


def create_blueprint() -> Blueprint:
    """A fresh payment mock (own state, log and faults) as a blueprint; mount it at /payment."""
    mock = PaymentProviders()
    bp = Blueprint("payment", __name__)
    add_mock_endpoints(bp, mock.log, mock.faults, mock.reset)

    def record(service: str | None, body: Any, status: int, payload: Any, fault: Fault | None) -> None:
        mock.log.append(
            {
                "path": request.path,
                "method": request.method,
                "service": service,
                "body": body,
                "status": status,
                "response": payload,
                "fault": fault.mode if fault else None,
            }
        )

    def json_body() -> dict[str, Any] | None:
        body = request.get_json(force=True, silent=True)
        return body if isinstance(body, dict) else None

    @bp.post("/platform/api")
    def platform_api() -> Response:
        body = json_body()
        if body is None:
            status, payload = 400, mock.platform_reply({}, "03", "Body phải là đối tượng JSON hợp lệ")
            record(None, request.get_data(as_text=True)[:2000], status, payload, None)
            return finish(None, status, payload)
        kind = body.get("LoaiBanTin")
        service = kind if isinstance(kind, str) else ""
        fault = mock.faults.take(service)
        busy: Outcome = (200, mock.platform_reply(body, "99", "Hệ thống đang bận"))
        status, payload = replaced_outcome(fault, busy) or mock.platform_call(body, request.host_url)
        is_pdf = isinstance(payload, bytes)
        record(service, body, status, {"pdf_bytes": len(payload)} if is_pdf else payload, fault)
        response = finish(fault, status, None if is_pdf else payload)  # the fault's sleep or drop
        if is_pdf and (fault is None or fault.mode != "drop"):
            response = make_response(payload, status, {"Content-Type": "application/pdf"})
        return response

    @bp.get("/platform/pay/<ref>")
    def platform_pay_page(ref: str) -> Response:
        found = mock.snapshot(PLATFORM, ref)
        record(None, None, 200 if found else 404, None, None)
        return _pay_page(found, f"/payment/platform/pay/{ref}") if found else _not_found_page()

    def html_settle(provider: str, ref: str, outcome: str) -> Response:
        changed, found, callbacks = mock.settle(provider, ref, outcome)
        record(f"pay:{outcome}", None, 404 if found is None else 200 if changed else 409, None, None)
        if found is None:
            return _not_found_page()
        back = ""
        if provider == VNPAY and changed and found.get("return_url"):
            with mock.lock:
                back = f"{found['return_url']}?{urlencode(mock.vnpay_result_params(found))}"
        return _result_page(changed, found, callbacks, back)

    @bp.post("/platform/pay/<ref>/pay")
    def platform_pay(ref: str) -> Response:
        return html_settle(PLATFORM, ref, "paid")

    @bp.post("/platform/pay/<ref>/cancel")
    def platform_cancel(ref: str) -> Response:
        return html_settle(PLATFORM, ref, "cancelled")

    @bp.get("/vnpay/paymentv2/vpcpay.html")
    def vnpay_pay_url() -> Response:
        params = request.args.to_dict()
        status, detail = mock.vnpay_open(params)
        record("pay_url", params, status, None if status == 200 else detail, None)
        if status != 200:
            return _page(detail, f"<p>{html.escape(detail)}</p>", status)
        return _pay_page(mock.snapshot(VNPAY, detail), f"/payment/vnpay/pay/{detail}")

    @bp.post("/vnpay/pay/<ref>/pay")
    def vnpay_pay(ref: str) -> Response:
        return html_settle(VNPAY, ref, "paid")

    @bp.post("/vnpay/pay/<ref>/cancel")
    def vnpay_cancel(ref: str) -> Response:
        return html_settle(VNPAY, ref, "cancelled")

    @bp.post("/vnpay/merchant_webapi/api/transaction")
    def vnpay_api() -> Response:
        body = json_body()
        if body is None:
            status, payload = 400, mock.querydr_reply({}, "03", "Invalid data format")
            record(None, request.get_data(as_text=True)[:2000], status, payload, None)
            return finish(None, status, payload)
        fault = mock.faults.take("querydr")
        busy: Outcome = (200, mock.querydr_reply(body, "99", "System busy"))
        status, payload = replaced_outcome(fault, busy) or mock.querydr(body)
        record("querydr", body, status, payload, fault)
        return finish(fault, status, payload)

    @bp.post("/_mock/pay/<provider>/<ref>")
    def mock_pay(provider: str, ref: str) -> Response | tuple[Response, int]:
        body = json_body() or {}
        outcome = body.get("outcome")
        if provider not in (PLATFORM, VNPAY) or outcome not in ("paid", "cancelled"):
            return jsonify({"error": "provider must be national_platform|vnpay, outcome paid|cancelled"}), 400
        changed, found, callbacks = mock.settle(provider, ref, outcome)
        if found is None:
            return jsonify({"error": "not_found", "message": "Không tìm thấy giao dịch"}), 404
        return jsonify({"changed": changed, "order": found, "callbacks": callbacks}), 200 if changed else 409

    @bp.get("/_mock/state")
    def mock_state() -> Response:
        return jsonify({"orders": mock.snapshot()})

    @bp.get("/_mock/state/<provider>/<ref>")
    def mock_state_one(provider: str, ref: str) -> Response | tuple[Response, int]:
        found = mock.snapshot(provider, ref)
        if found is None:
            return jsonify({"error": "not_found", "message": "Không tìm thấy giao dịch"}), 404
        return jsonify(found)

    add_config_endpoints(bp, mock)

    return bp
