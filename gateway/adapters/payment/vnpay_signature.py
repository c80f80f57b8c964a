"""VNPay's vnp_SecureHash: HMAC-SHA512 (hex) over the vnp_* parameters sorted by name, each value
URL-encoded as a form value (spaces as '+'), joined by '&'; the hash fields themselves are left out.
Amounts travel multiplied by 100 (VND has no minor unit, VNPay's field has two).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote_plus

HASH_FIELDS = frozenset({"vnp_SecureHash", "vnp_SecureHashType"})

# IPN answers {RspCode, Message}, in VNPay's own codes.
IPN_OK, IPN_NOT_FOUND, IPN_ALREADY_CONFIRMED, IPN_BAD_AMOUNT, IPN_BAD_SIGNATURE, IPN_OTHER = (
    "00", "01", "02", "04", "97", "99")
IPN_MESSAGES: dict[str, str] = {
    IPN_OK: "Confirm Success", IPN_NOT_FOUND: "Order not found", IPN_ALREADY_CONFIRMED: "Order already confirmed",
    IPN_BAD_AMOUNT: "Invalid amount", IPN_BAD_SIGNATURE: "Invalid signature", IPN_OTHER: "Unknow error",
}


def hash_data(params: Mapping[str, str]) -> str:
    items = sorted((k, v) for k, v in params.items() if k.startswith("vnp_") and k not in HASH_FIELDS)
    return "&".join(f"{k}={quote_plus(str(v))}" for k, v in items)


def secure_hash(params: Mapping[str, str], secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), hash_data(params).encode("utf-8"), hashlib.sha512).hexdigest()


def verify(params: Mapping[str, str], secret: str) -> bool:
    given = params.get("vnp_SecureHash")
    return isinstance(given, str) and hmac.compare_digest(given.lower(), secure_hash(params, secret))


def to_vnpay_amount(vnd: int) -> int:
    if not isinstance(vnd, int) or isinstance(vnd, bool) or vnd < 0:
        raise ValueError("an amount is a whole, non-negative number of VND")
    return vnd * 100


def from_vnpay_amount(raw: str) -> int:
    """vnp_Amount back to VND; refuses anything that is not a whole number of dong."""
    if not raw.isdigit() or int(raw) % 100:
        raise ValueError(f"vnp_Amount {raw!r} is not a whole number of VND x 100")
    return int(raw) // 100
