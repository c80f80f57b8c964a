"""Fee payments: what a payment request is, the states a payment goes through, and what a
confirmation means for a payment that was no longer waiting for one. Money is whole VND, integers only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, StrictInt, field_validator, model_validator

from .fees import MAX_ITEMS, MAX_TOTAL, Fee, Strict, check_payable_items, total_of

# Online payment is part of the whole-online ("toàn trình", level 4) procedure; một phần dossiers pay
# at the counter.
ONLINE_PAYMENT_LEVELS = frozenset({"toan_trinh"})


class PaymentState(StrEnum):
    INITIATING = "initiating"  # stored; the provider has not yet given a pay URL
    PENDING = "pending"  # the citizen can pay at the pay URL
    PAID = "paid"
    CANCELLED = "cancelled"  # the citizen cancelled at the provider
    EXPIRED = "expired"  # not paid in time (reconciliation found it still unpaid)
    FAILED = "failed"  # the provider refused or stayed unreachable: a new payment must be asked for


STATE_LABELS_VI: dict[PaymentState, str] = {
    PaymentState.INITIATING: "Đang khởi tạo giao dịch",
    PaymentState.PENDING: "Chờ thanh toán",
    PaymentState.PAID: "Đã thanh toán",
    PaymentState.CANCELLED: "Đã hủy",
    PaymentState.EXPIRED: "Quá hạn thanh toán",
    PaymentState.FAILED: "Không khởi tạo được giao dịch",
}

OPEN = frozenset({PaymentState.INITIATING, PaymentState.PENDING})
# A fee held by a payment in one of these states may not be asked for again.
HOLDS_FEES = OPEN | {PaymentState.PAID}
# A pay URL may be set on a payment in these states (a failed INIT retried by an operator comes back).
MAY_START = frozenset({PaymentState.INITIATING, PaymentState.FAILED})
MAY_CANCEL = OPEN
MAY_EXPIRE = frozenset({PaymentState.PENDING})


def _ip(value: str) -> str:
    ipaddress.ip_address(value)  # ValueError names the problem
    return value


class PaymentRequestIn(Strict):
    """The body of POST /api/v1/dossiers/{code}/payments. Without `items`: the dossier's unpaid fees."""

    items: list[Fee] | None = Field(None, min_length=1, max_length=MAX_ITEMS)
    total: Annotated[StrictInt, Field(gt=0, le=MAX_TOTAL)] | None = None  # if given, must equal the items' sum
    description: str | None = Field(None, min_length=1, max_length=255)
    payer_ip: Annotated[str, AfterValidator(_ip)] | None = None  # the citizen's address, for the provider

    @field_validator("items")
    @classmethod
    def _payable(cls, items: list[Fee] | None) -> list[Fee] | None:
        return None if items is None else check_payable_items(items)

    @model_validator(mode="after")
    def _total_matches(self) -> PaymentRequestIn:
        if self.items is not None and self.total is not None and self.total != total_of(self.items):
            raise ValueError(f"total {self.total} is not the sum of the items ({total_of(self.items)})")
        return self


def unpaid(filed: list[Fee], held_codes: set[str]) -> list[Fee]:
    """The fees a dossier was filed with that are still to pay: above zero, and held by no open or paid payment."""
    return [fee for fee in filed if fee.amount > 0 and fee.code not in held_codes]


@dataclass(frozen=True)
class Confirmation:
    """What a provider's "paid" means for a payment in a given state."""

    applies: bool  # False: it was already paid, nothing to do
    late: bool  # paid after it expired, was cancelled or failed: recorded, and flagged for operators
    reason: str | None


def confirm(state: PaymentState, *, now: datetime, expires_at: datetime, dossier_closed: bool = False) -> Confirmation:
    """Money taken is never dropped: a confirmation applies in every state but PAID; outside the
    normal window it is recorded and flagged so an operator can decide (refund or accept)."""
    if state is PaymentState.PAID:
        return Confirmation(False, False, None)
    if state in (PaymentState.EXPIRED, PaymentState.CANCELLED, PaymentState.FAILED):
        return Confirmation(True, True, f"confirmed while the payment was {state.value}")
    if now > expires_at:
        return Confirmation(True, True, "confirmed after the payment expired")
    if dossier_closed:
        return Confirmation(True, True, "confirmed for a dossier that is already closed")
    return Confirmation(True, False, None)
