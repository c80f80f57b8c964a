"""Fee payment providers: the national portal's payment platform and VNPay, behind one port (base.py)."""

from __future__ import annotations

from gateway.config import PaymentSettings

from .base import PaymentProvider
from .national_platform import NationalPlatform
from .vnpay import VNPay

QUEUE = "payment"
INIT = "payment.init"  # register the payment with its provider, get the pay URL
QUERY = "payment.query"  # reconciliation: ask the provider how a pending payment stands
RECEIPT = "payment.receipt"  # fetch the receipt (GET_BILL) of a paid payment


def build_providers(settings: PaymentSettings) -> dict[str, PaymentProvider]:
    platform, vnpay = settings.national_platform, settings.vnpay
    return {
        NationalPlatform.name: NationalPlatform(base_url=platform.base_url, partner=platform.partner,
                                                secret=platform.secret, timeout=platform.timeout_seconds),
        VNPay.name: VNPay(base_url=vnpay.base_url, tmn_code=vnpay.tmn_code, secret=vnpay.secret,
                          return_url=vnpay.return_url, timeout=vnpay.timeout_seconds),
    }


__all__ = ["INIT", "QUERY", "QUEUE", "RECEIPT", "PaymentProvider", "build_providers"]
