"""What both payment partners share: the order a payer pays or cancels on the pay page, and the callback after it.

The national payment platform (`payment_platform.py`) and VNPay (`vnpay.py`) each bring their own messages,
signatures and codes as a `Partner`; the order book, the pay and result pages, and when and how often the
callback goes out (with the callback faults) are the same for both and live here.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from flask import Blueprint, Response, make_response, request

from mocks.harness import (
    CALLBACK_MODES,
    Delivery,
    Fault,
    MockConfig,
    MockState,
    send_copies,
    vn_now,
)

CHANGED_AMOUNT_VND = 1000  # what a changed_amount callback fault adds
MSG_NOT_FOUND = "Không tìm thấy giao dịch"


class OrderStatus(StrEnum):
    """Where an order is; each partner answers it as a code of its own."""

    PENDING = "PENDING"
    PAID = "PAID"
    CANCELLED = "CANCELLED"


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


@dataclass(frozen=True)
class Partner:
    """What the shared pay flow needs from one partner's protocol."""

    name: str
    transaction_no: Callable[[int, bool], str | None]  # from the mock's counter; paid or not
    callback_url: Callable[[PaymentConfig], str]
    callback: Callable[[PaymentConfig, dict[str, Any]], dict[str, Any]]  # the signed callback for a finished order
    signature: str  # the callback's signature field, which a bad_checksum fault spoils
    send: Callable[[str, dict[str, Any], float], Delivery]
    answer_valid: Callable[[Any, dict[str, Any]], bool]  # whether the gateway's answer has the partner's shape


def now_vn() -> str:
    return vn_now().strftime("%Y%m%d%H%M%S")


def _corrupt(signature: str) -> str:
    """The signature with its first digit changed (the bad_checksum callback fault)."""
    return ("1" if signature[0] == "0" else "0") + signature[1:]


def _new_order(provider: str, ref: str, amount: int) -> dict[str, Any]:
    return {
        "provider": provider,
        "ref": ref,
        "amount": amount,
        "status": OrderStatus.PENDING,
        "created_at": now_vn(),
        "paid_at": None,
        "transaction_no": None,
        "bank_code": None,
        "callbacks": [],
        "callback_faults": [],
    }


class PaymentOrders(MockState[PaymentConfig]):
    """State of one payment mock: settings, the orders of each partner, and the transaction counter."""

    config_class = PaymentConfig

    def __init__(self, partners: dict[str, Partner]) -> None:
        self.partners = partners
        super().__init__()

    def clear(self) -> None:
        self.orders: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.partners}
        self.counter = 0

    def snapshot(self, provider: str | None = None, ref: str | None = None) -> Any:
        with self.lock:
            if provider is None:
                return copy.deepcopy(self.orders)
            return copy.deepcopy(self.orders.get(provider, {}).get(ref or ""))

    def record(self, service: str | None, body: Any, status: int, response: Any, fault: Fault | None,
               **extra: Any) -> None:
        logged = {"pdf_bytes": len(response)} if isinstance(response, bytes) else response
        super().record(service, body, status, logged, fault, method=request.method, **extra)

    def open_order(self, provider: str, ref: str, amount: int, details: dict[str, Any]) -> bool:
        """Open an order for `ref` with the partner's own `details`, or keep the one open for the same amount.
        False (nothing changed) when `ref` is taken with another amount. Callers hold the lock."""
        found = self.orders[provider].get(ref)
        if found is None:
            self.orders[provider][ref] = _new_order(provider, ref, amount) | details
        return found is None or found["amount"] == amount

    def settle(self, provider: str, ref: str, outcome: str) -> tuple[bool, dict[str, Any] | None, list[dict[str, Any]]]:
        """Pay or cancel a pending order and send its callback.

        Returns (changed, order snapshot or None if unknown, callback results of this action).
        """
        with self.lock:
            found = self.orders.get(provider, {}).get(ref)
            if found is None:
                return False, None, []
            if found["status"] != OrderStatus.PENDING:
                return False, copy.deepcopy(found), []
            partner = self.partners[provider]
            self.counter += 1
            found["status"] = OrderStatus.PAID if outcome == "paid" else OrderStatus.CANCELLED
            found["paid_at"] = now_vn()
            found["bank_code"] = "NCB"
            found["transaction_no"] = partner.transaction_no(self.counter, outcome == "paid")
            fault = self.faults.take("callback", modes=CALLBACK_MODES)
            if fault is not None:
                found["callback_faults"].append(fault.mode)
            message = self._callback(partner, found, fault)
            timeout = self.config.callback_timeout_seconds
            url = partner.callback_url(self.config)
        results: list[dict[str, Any]] = []
        # Sent outside the lock: the gateway answering the callback may well call this mock back.
        if fault is None or fault.mode != "no_callback":
            copies = 2 if fault is not None and fault.mode == "callback_twice" else 1
            results = send_copies(lambda: self._send_once(partner, url, message, timeout), copies, timeout + 5)
        with self.lock:
            found["callbacks"].extend(results)
            return True, copy.deepcopy(found), copy.deepcopy(results)

    def _callback(self, partner: Partner, found: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
        """The partner's signed callback, as a callback fault spoils it: signed over a changed amount, or with
        a signature that does not match."""
        mode = fault.mode if fault is not None else None
        shown = found | {"amount": found["amount"] + CHANGED_AMOUNT_VND} if mode == "changed_amount" else found
        message = partner.callback(self.config, shown)
        if mode == "bad_checksum":
            message[partner.signature] = _corrupt(message[partner.signature])
        return message

    @staticmethod
    def _send_once(partner: Partner, url: str, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        sent = partner.send(url, message, timeout)
        result = {"sent_at": now_vn(), "body": dict(message), "status": sent.status, "answer": sent.answer,
                  "error": sent.error}  # fmt: skip
        if sent.error is None:
            result["answer_valid"] = partner.answer_valid(sent.answer, message)
        return result

    def _answer_valid(self, provider: str, answer: Any, message: dict[str, Any]) -> bool:
        return self.partners[provider].answer_valid(answer, message)


# --- the pages the payer sees ---------------------------------------------------


def page(title: str, body: str, status: int = 200) -> Response:
    doc = (
        '<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return make_response(doc, status, {"Content-Type": "text/html; charset=utf-8"})


def _vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".") + " VND"


def pay_page(found: dict[str, Any], action_base: str) -> Response:
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
    return page("Cổng thanh toán", body)


def _result_page(changed: bool, found: dict[str, Any], callbacks: list[dict[str, Any]], back: str = "") -> Response:
    if not changed:
        text = f"Giao dịch không còn chờ thanh toán (trạng thái: {found['status']}); không thay đổi gì."
        return page("Không thực hiện", f"<p>{html.escape(text)}</p>", 409)
    title = "Thanh toán thành công" if found["status"] == OrderStatus.PAID else "Đã hủy giao dịch"
    sent = ", ".join(str(c.get("status") or c.get("error")) for c in callbacks) or "không gửi"
    body = f"<p>Mã tham chiếu: {html.escape(found['ref'])}</p><p>Kết quả thông báo: {html.escape(sent)}</p>"
    if back:
        body += f'<p><a href="{html.escape(back)}">Quay lại trang dịch vụ</a></p>'
    return page(title, body)


def not_found_page() -> Response:
    return page("Không tìm thấy giao dịch", "<p>Mã giao dịch không tồn tại.</p>", 404)


def add_pay_buttons(bp: Blueprint, state: PaymentOrders, provider: str, prefix: str,
                    back: Callable[[dict[str, Any]], str] | None = None) -> None:
    """POST `<prefix>/<ref>/pay` and `.../cancel`: the pay page's two buttons. `back` gives the result page's
    link back to the service (VNPay's return URL), read under the lock."""

    def settle_page(ref: str, outcome: str) -> Response:
        changed, found, callbacks = state.settle(provider, ref, outcome)
        state.record(f"pay:{outcome}", None, 404 if found is None else 200 if changed else 409, None, None)
        if found is None:
            return not_found_page()
        link = ""
        if back is not None and changed:
            with state.lock:
                link = back(found)
        return _result_page(changed, found, callbacks, link)

    @bp.post(f"{prefix}/<ref>/pay", endpoint=f"{provider}_pay")
    def pay(ref: str) -> Response:
        return settle_page(ref, "paid")

    @bp.post(f"{prefix}/<ref>/cancel", endpoint=f"{provider}_cancel")
    def cancel(ref: str) -> Response:
        return settle_page(ref, "cancelled")
