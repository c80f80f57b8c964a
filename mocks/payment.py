"""Fake payment providers under `/payment`: the national portal payment platform and VNPay.

Each partner's protocol is its own module (`payment_platform.py`: `/payment/platform/...`, `vnpay.py`:
`/payment/vnpay/...`); what they share, the order book, the pay page and the callback, is in
`payment_orders.py`. Here they are put together with one state, one `_mock/*` and the test control that
pays or cancels an order as the payer would.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from mocks import payment_platform, vnpay
from mocks.harness import add_action_endpoint, add_standard_endpoints, add_state_endpoints
from mocks.payment_orders import MSG_NOT_FOUND, PaymentOrders
from mocks.payment_platform import CALLBACK_ORDER, INIT_ORDER, PLATFORM, QUERY_ORDER, platform_checksum, receipt_pdf
from mocks.vnpay import QUERYDR_ORDER, QUERYDR_REPLY_ORDER, VNPAY, vnpay_query_hash

# Kept importable from here, where tests and fixtures have always taken them.
__all__ = [
    "CALLBACK_ORDER", "INIT_ORDER", "PLATFORM", "QUERYDR_ORDER", "QUERYDR_REPLY_ORDER", "QUERY_ORDER", "VNPAY",
    "PaymentProviders", "create_blueprint", "platform_checksum", "receipt_pdf", "vnpay_query_hash",
]  # fmt: skip


class PaymentProviders(PaymentOrders):
    """State of one payment mock, with both partners."""

    def __init__(self) -> None:
        super().__init__({PLATFORM: payment_platform.PARTNER, VNPAY: vnpay.PARTNER})


def create_blueprint() -> Blueprint:
    """A fresh payment mock (own state, log and faults) as a blueprint; mount it at /payment."""
    mock = PaymentProviders()
    bp = Blueprint("payment", __name__)
    add_standard_endpoints(bp, mock)
    payment_platform.add_routes(bp, mock)
    vnpay.add_routes(bp, mock)

    def pay(body: dict[str, Any], provider: str, ref: str) -> tuple[dict[str, Any], int] | None:
        outcome = body.get("outcome")
        if provider not in (PLATFORM, VNPAY) or outcome not in ("paid", "cancelled"):
            raise ValueError("provider must be national_platform|vnpay, outcome paid|cancelled")
        changed, found, callbacks = mock.settle(provider, ref, outcome)
        if found is None:
            return None
        return {"changed": changed, "order": found, "callbacks": callbacks}, 200 if changed else 409

    add_action_endpoint(bp, "/_mock/pay/<provider>/<ref>", pay, MSG_NOT_FOUND)
    add_state_endpoints(bp, "orders", mock.snapshot, MSG_NOT_FOUND, "provider", "ref")
    return bp
