"""The payment-provider port: what the gateway needs from any provider, in its own words.

Each provider file maps these to its protocol (the national platform's INIT/QUERY/GET_BILL with
MaXacThuc, VNPay's signed pay URL, IPN and querydr). Errors are the adapter kinds of adapters/base.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class ProviderState(Enum):
    PENDING = "pending"
    PAID = "paid"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class FeeItem:
    code: str
    name: str
    amount: int  # whole VND


@dataclass(frozen=True)
class PaymentRequest:
    reference: str  # our payment id, the provider's MaThamChieu / vnp_TxnRef
    amount: int  # whole VND, the sum of the items
    dossier_code: str
    procedure_code: str
    unit_code: str
    payer_name: str
    description: str
    client_ip: str
    at: datetime
    items: list[FeeItem] = field(default_factory=list)
    procedure_name: str = ""
    payer_id_number: str = ""
    payer_address: str = ""


@dataclass(frozen=True)
class Started:
    pay_url: str


@dataclass(frozen=True)
class Status:
    state: ProviderState
    amount: int | None = None
    transaction_id: str | None = None


@dataclass(frozen=True)
class Callback:
    """A provider's callback, checked: `authentic` is False for a wrong or missing signature."""

    authentic: bool
    reference: str | None
    amount: int | None
    state: ProviderState
    transaction_id: str | None
    raw: Mapping[str, Any]

    @classmethod
    def unreadable(cls, raw: Mapping[str, Any] | None = None) -> Callback:
        """What a body that is not even a callback (not JSON, not an object) is taken as."""
        return cls(False, None, None, ProviderState.UNKNOWN, None, raw or {})


class CallbackVerdict(Enum):
    APPLIED = "applied"
    ALREADY_APPLIED = "already_applied"
    UNKNOWN_REFERENCE = "unknown_reference"
    WRONG_AMOUNT = "wrong_amount"
    BAD_SIGNATURE = "bad_signature"
    ERROR = "error"


@dataclass(frozen=True)
class Answer:
    """What to send back to the provider, in its own format."""

    status: int
    body: dict[str, Any]


class PaymentProvider(ABC):
    name: str
    issues_receipts: bool = False  # whether receipt() gives the payer's receipt PDF

    @abstractmethod
    def start(self, request: PaymentRequest) -> Started:
        """Register the payment with the provider (or sign its pay URL); idempotent on the reference."""

    @abstractmethod
    def query(self, reference: str, *, created_at: datetime) -> Status:
        """Ask the provider how the payment stands (reconciliation when a callback never came)."""

    @abstractmethod
    def read_callback(self, data: Mapping[str, Any]) -> Callback:
        """Parse and authenticate a callback."""

    @abstractmethod
    def answer(self, callback: Callback, verdict: CallbackVerdict) -> Answer:
        """The reply the provider expects for this verdict."""

    def receipt(self, reference: str, *, created_at: datetime) -> bytes | None:
        """The receipt PDF, where the provider issues one (`created_at`: when the payment was registered)."""
        return None
