"""VNPay's vnp_SecureHash: HMAC-SHA512 (hex) over the vnp_* parameters sorted by name, `urlencode(key) "="
urlencode(value)` joined by '&', the hash fields themselves left out: VNPay's PHP demo (vnpay_php,
vnpay_create_payment.php / vnpay_ipn.php, v2.1.0; copy cited in tests/conformance/vnpay/README.md).
PHP's urlencode escapes every byte but [A-Za-z0-9_.-] and writes a space as '+'; Python's quote_plus
also keeps '~', so it is escaped here by hand (a '~' in any value made our hash differ from VNPay's).
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
    IPN_BAD_AMOUNT: "invalid amount", IPN_BAD_SIGNATURE: "Invalid signature", IPN_OTHER: "Unknow error",
}  # verbatim from vnpay_ipn.php (its spelling included): VNPay reads RspCode, the text is for people


def php_urlencode(text: str) -> str:
    """PHP's urlencode() of a UTF-8 string."""
    return quote_plus(text, safe="").replace("~", "%7E")


def hash_data(params: Mapping[str, str]) -> str:
    items = sorted((k, v) for k, v in params.items() if k.startswith("vnp_") and k not in HASH_FIELDS)
    return "&".join(f"{php_urlencode(k)}={php_urlencode(str(v))}" for k, v in items)


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
