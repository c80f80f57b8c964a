"""Fake VNPay (cổng thanh toán VNPAY): a signed pay URL (HMAC-SHA512), the IPN and return URL, and querydr.

The payer opens `/vnpay/paymentv2/vpcpay.html?vnp_...`; after paying or cancelling VNPay calls the IPN URL
(GET with the signed vnp_* params) and links back to vnp_ReturnUrl. Orders, pages and callback sending are
shared with the payment platform (`payment_orders.py`).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
from typing import Any
from urllib.parse import quote_plus, urlencode

from flask import Blueprint, Response, request

from mocks.harness import Delivery, Fault, Outcome, deliver, json_object
from mocks.payment_orders import OrderStatus, Partner, PaymentConfig, PaymentOrders, add_pay_buttons, page, pay_page

VNPAY = "vnpay"
QUERYDR_ORDER = (
    "vnp_RequestId", "vnp_Version", "vnp_Command", "vnp_TmnCode", "vnp_TxnRef", "vnp_TransactionDate",
    "vnp_CreateDate", "vnp_IpAddr", "vnp_OrderInfo",
)  # fmt: skip
QUERYDR_REPLY_ORDER = (
    "vnp_ResponseId", "vnp_Command", "vnp_ResponseCode", "vnp_Message", "vnp_TmnCode", "vnp_TxnRef", "vnp_Amount",
    "vnp_BankCode", "vnp_PayDate", "vnp_TransactionNo", "vnp_TransactionType", "vnp_TransactionStatus",
    "vnp_OrderInfo", "vnp_PromotionCode", "vnp_PromotionAmount",
)  # fmt: skip
VNPAY_STATUS = {OrderStatus.PAID: "00", OrderStatus.PENDING: "01", OrderStatus.CANCELLED: "02"}
_HASH_KEYS = ("vnp_SecureHash", "vnp_SecureHashType")


# --- signatures (own implementation: never shared with the gateway) ----------


def _php_urlencode(text: str) -> str:
    """PHP's urlencode(): all but [A-Za-z0-9_.-] escaped, space as "+" (quote_plus keeps "~" too)."""
    return quote_plus(text, safe="").replace("~", "%7E")


def vnpay_query_hash(params: dict[str, Any], secret: str) -> str:
    """HMAC-SHA512 over the sorted vnp_* params (minus the hash fields), `urlencode(name)=urlencode(value)`
    joined by "&", as VNPay's PHP demo (vnpay_ipn.php) computes it."""
    items = sorted((k, str(v)) for k, v in params.items() if k.startswith("vnp_") and k not in _HASH_KEYS)
    data = "&".join(f"{_php_urlencode(k)}={_php_urlencode(v)}" for k, v in items)
    return hmac.new(secret.encode(), data.encode(), hashlib.sha512).hexdigest()


def vnpay_pipe_hash(message: dict[str, Any], order: tuple[str, ...], secret: str) -> str:
    """HMAC-SHA512 over the fields in `order` joined by "|" (missing → "")."""
    data = "|".join("" if message.get(k) is None else str(message[k]) for k in order)
    return hmac.new(secret.encode(), data.encode(), hashlib.sha512).hexdigest()


# --- the pay URL, the result params, querydr -------------------------------------


def open_order(state: PaymentOrders, params: dict[str, str]) -> tuple[int, str]:
    """Check a pay URL and create/keep its order; returns (status, error message or txnref)."""
    with state.lock:
        cfg = state.config
        given = params.get("vnp_SecureHash", "")
        expected = vnpay_query_hash(params, cfg.vnpay_secret)
        if params.get("vnp_TmnCode") != cfg.vnpay_tmn_code or not hmac.compare_digest(given.lower(), expected):
            return 400, "Sai chữ ký"
        ref, raw = params.get("vnp_TxnRef", ""), params.get("vnp_Amount", "")
        if not ref or not raw.isdigit() or int(raw) <= 0 or int(raw) % 100:
            return 400, "Dữ liệu không hợp lệ (vnp_TxnRef, vnp_Amount)"
        amount = int(raw) // 100
        details = {
            "order_info": params.get("vnp_OrderInfo", ""),
            "return_url": params.get("vnp_ReturnUrl", ""),
            "create_date": params.get("vnp_CreateDate", ""),
        }
        if not state.open_order(VNPAY, ref, amount, details):
            return 400, "Mã giao dịch đã tồn tại với số tiền khác"
        return 200, ref


def result_params(cfg: PaymentConfig, found: dict[str, Any]) -> dict[str, str]:
    """Signed IPN / return-URL params for a finished order."""
    paid = found["status"] == OrderStatus.PAID
    params = {
        "vnp_Amount": str(found["amount"] * 100),
        "vnp_BankCode": "NCB",
        "vnp_CardType": "ATM",
        "vnp_OrderInfo": found.get("order_info") or "",
        "vnp_PayDate": found["paid_at"],
        "vnp_ResponseCode": "00" if paid else "24",
        "vnp_TmnCode": cfg.vnpay_tmn_code,
        "vnp_TransactionNo": found["transaction_no"],
        "vnp_TransactionStatus": VNPAY_STATUS[found["status"]],
        "vnp_TxnRef": found["ref"],
    }
    if paid:  # empty values are never sent (they would be ambiguous in the hash)
        params["vnp_BankTranNo"] = f"VNP{found['transaction_no']}"
    params["vnp_SecureHash"] = vnpay_query_hash(params, cfg.vnpay_secret)
    return params


def querydr(state: PaymentOrders, body: dict[str, Any]) -> Outcome:
    with state.lock:
        cfg = state.config
        given = body.get("vnp_SecureHash")
        expected = vnpay_pipe_hash(body, QUERYDR_ORDER, cfg.vnpay_secret)
        if (
            body.get("vnp_TmnCode") != cfg.vnpay_tmn_code
            or body.get("vnp_Command") != "querydr"
            or not isinstance(given, str)
            or not hmac.compare_digest(given.lower(), expected)
        ):
            return 200, querydr_reply(cfg, body, "97", "Invalid Checksum")
        found = state.orders[VNPAY].get(str(body.get("vnp_TxnRef")))
        if found is None:
            return 200, querydr_reply(cfg, body, "91", "Transaction not found")
        extra = {
            "vnp_Amount": str(found["amount"] * 100),
            "vnp_BankCode": "NCB" if found["status"] == OrderStatus.PAID else "",
            "vnp_PayDate": found["paid_at"] or "",
            "vnp_TransactionNo": found["transaction_no"] or "",
            "vnp_TransactionType": "01",
            "vnp_TransactionStatus": VNPAY_STATUS[found["status"]],
            "vnp_OrderInfo": found.get("order_info") or "",
        }
        return 200, querydr_reply(cfg, body, "00", "QueryDR Success", **extra)


def querydr_reply(cfg: PaymentConfig, body: dict[str, Any], code: str, message: str, **extra: Any) -> dict[str, Any]:
    answer = {
        "vnp_ResponseId": secrets.token_hex(16),
        "vnp_Command": "querydr",
        "vnp_ResponseCode": code,
        "vnp_Message": message,
        "vnp_TmnCode": cfg.vnpay_tmn_code,
        "vnp_TxnRef": body.get("vnp_TxnRef") if isinstance(body.get("vnp_TxnRef"), str) else "",
    } | extra
    answer["vnp_SecureHash"] = vnpay_pipe_hash(answer, QUERYDR_REPLY_ORDER, cfg.vnpay_secret)
    return answer


# --- the IPN --------------------------------------------------------------------


def answer_valid(answer: Any, message: dict[str, Any]) -> bool:
    """Whether the IPN answer has VNPay's shape: {"RspCode", "Message"}."""
    return isinstance(answer, dict) and isinstance(answer.get("RspCode"), str) and "Message" in answer


def _send(url: str, message: dict[str, Any], timeout: float) -> Delivery:
    return deliver("GET", url, timeout, params=message)


PARTNER = Partner(
    name=VNPAY,
    transaction_no=lambda counter, paid: str(14000000 + counter) if paid else "0",
    callback_url=lambda cfg: cfg.vnpay_ipn_url,
    callback=result_params,  # the IPN carries the same signed params as the return URL
    signature="vnp_SecureHash",
    send=_send,
    answer_valid=answer_valid,
)


# --- routes --------------------------------------------------------------------


def add_routes(bp: Blueprint, state: PaymentOrders) -> None:
    """VNPay's pay URL, pay page and merchant API, under `/vnpay` of the payment mock."""

    def back_to_service(found: dict[str, Any]) -> str:
        if not found.get("return_url"):
            return ""
        return f"{found['return_url']}?{urlencode(result_params(state.config, found))}"

    @bp.get("/vnpay/paymentv2/vpcpay.html")
    def vnpay_pay_url() -> Response:
        params = request.args.to_dict()
        status, detail = open_order(state, params)
        state.record("pay_url", params, status, None if status == 200 else detail, None)
        if status != 200:
            return page(detail, f"<p>{html.escape(detail)}</p>", status)
        return pay_page(state.snapshot(VNPAY, detail), f"/payment/vnpay/pay/{detail}")

    add_pay_buttons(bp, state, VNPAY, "/vnpay/pay", back=back_to_service)

    @bp.post("/vnpay/merchant_webapi/api/transaction")
    def vnpay_api() -> Response:
        body = json_object()
        if body is None:
            return state.unreadable(None, 400, querydr_reply(state.config, {}, "03", "Invalid data format"))

        def busy(_fault: Fault) -> Outcome:
            return 200, querydr_reply(state.config, body, "99", "System busy")

        return state.serve("querydr", body, lambda: querydr(state, body), busy)
