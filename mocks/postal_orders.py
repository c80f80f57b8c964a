"""What VNPost accepts in a CreateOrder (flat fields, as OpenCPS sends them) and the waybill number it gives."""

from __future__ import annotations

import re
from typing import Any

TEL = re.compile(r"(0[0-9]{9}|84[0-9]{9})")  # [0-9], not \d: \d would also take non-ASCII digits
ORDER_NUMBER_MAX = 64
PARTY_REQUIRED = ("Name", "Address", "Province", "Tel")
RECEIVER_REQUIRED = (*PARTY_REQUIRED, "Commune")
# District is optional: since 2025-07-01 local government has two levels (province, commune).
PARTY_OPTIONAL = {"Sender": ("District", "Email", "Desc"), "Receiver": ("District", "Email")}
PARTIES = ("Sender", "Receiver")
# Province and district go as numeric codes in public clients (OpenCPS sends ints); names are taken too.
CODE_FIELDS = ("Province", "District")
S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


class Invalid(ValueError):
    """A validation failure, answered with Status 101 and the offending field (a test control's: 400)."""


def s10_check_digit(serial: str) -> int:
    """UPU S10 check digit of an 8-digit serial, so waybills look like real ones."""
    check = 11 - sum(int(d) * w for d, w in zip(serial, S10_WEIGHTS, strict=True)) % 11
    return 0 if check == 10 else 5 if check == 11 else check


def parties(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The flat CreateOrder fields (SenderName, ReceiverTel, ...) as one object per party, as the mock keeps them."""
    return {party: {k[len(party):]: v for k, v in body.items() if k.startswith(party) and len(k) > len(party)}
            for party in PARTIES}  # fmt: skip


def _text(party: dict[str, Any], path: str, key: str, required: bool) -> None:
    value = party.get(key)
    if not required and value is None:
        return
    if key in CODE_FIELDS and isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return
    if not isinstance(value, str) or (required and not value.strip()):
        raise Invalid(f"{path}{key} là bắt buộc" if required else f"{path}{key} phải là chuỗi")


def _party(party: dict[str, Any], path: str) -> None:
    for key in RECEIVER_REQUIRED if path == "Receiver" else PARTY_REQUIRED:
        _text(party, path, key, required=True)
    for key in PARTY_OPTIONAL[path]:
        _text(party, path, key, required=False)
    if not TEL.fullmatch(party["Tel"]):
        raise Invalid(f"{path}Tel không hợp lệ (0xxxxxxxxx hoặc 84xxxxxxxxx)")


def validate_order(body: dict[str, Any], customer_code: str) -> None:
    """Check a CreateOrder body (flat, as OpenCPS sends it); raises Invalid naming the first bad field."""
    if body.get("CustomerCode") != customer_code:
        raise Invalid("CustomerCode không đúng")
    number = body.get("OrderNumber")
    if not isinstance(number, str) or not number.strip():
        raise Invalid("OrderNumber là bắt buộc")
    if len(number) > ORDER_NUMBER_MAX:
        raise Invalid(f"OrderNumber vượt quá {ORDER_NUMBER_MAX} ký tự")
    amount = body.get("CODAmount")
    # bool is an int in Python and 1.0 == 1: both would slip through a plain comparison.
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise Invalid("CODAmount phải là số nguyên không âm (VND)")
    split = parties(body)
    _party(split["Sender"], "Sender")
    _party(split["Receiver"], "Receiver")
    if body.get("Description") is not None and not isinstance(body["Description"], str):
        raise Invalid("Description phải là chuỗi")
