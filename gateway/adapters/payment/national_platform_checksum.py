"""MaXacThuc of the national portal's payment platform: SHA-256, lower-case hex, of the message's fields in
a fixed order joined by '|', then '|' and the shared secret; a missing field is empty text. So computes it
TD.DichVuCongApi's DvcPaymentService.CreateMaXacThuc (the one client that enforces the check on callbacks;
OpenCPS v2 computes an HMAC-SHA256 instead and ignores the result: docs/partners/payment-platform.md).

The field order per message type is one table, to correct in one place if the platform says otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

# INIT, CALLBACK, QUERY, GET_BILL: TD.DichVuCongApi's orders (DvcPaymentService.cs, ConfirmDvcPaymentCommandHandler.cs).
# REPLY (the platform's JSON answers, as the mock signs them): [assumed]. The gateway checks no answer's MaXacThuc:
# neither public client does, and none shows how the platform signs its answers.
FIELD_ORDER: dict[str, tuple[str, ...]] = {
    "INIT": ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "SoTien", "LoaiHinhThanhToan",
             "MaKenhThanhToan", "MaThietBi", "NgonNgu", "MaTienTe", "MaNganHang", "ThongTinGiaoDich",
             "ThoiGianGD", "Ip"),
    "CALLBACK": ("LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "SoTien", "MaTienTe", "MaGiaoDich",
                 "MaNganHang", "ThoiGianGD", "ThongTinGiaoDich"),
    "REPLY": ("MaLoi", "MaDoiTac", "MaThamChieu", "ThoiGianGD"),
    "QUERY": ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"),
    "GET_BILL": ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"),
}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def checksum(kind: str, message: Mapping[str, Any], secret: str) -> str:
    fields = [_text(message.get(name)) for name in FIELD_ORDER[kind]]
    return hashlib.sha256("|".join([*fields, secret]).encode("utf-8")).hexdigest()


def sign(kind: str, message: Mapping[str, Any], secret: str) -> dict[str, Any]:
    """The message with its MaXacThuc added."""
    return {**message, "MaXacThuc": checksum(kind, message, secret)}


def verify(kind: str, message: Mapping[str, Any], secret: str) -> bool:
    """True only when MaXacThuc matches; compared in constant time, case-insensitively (hex)."""
    given = message.get("MaXacThuc")
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.lower(), checksum(kind, message, secret))
