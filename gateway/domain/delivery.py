"""Public-post (VNPost) delivery of a dossier's result: its states, the post's codes, and what a booking holds."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StrictInt

from .dossier import Address, Email, Phone, Text, VnTime
from .fees import Strict


class DeliveryState(StrEnum):
    BOOKING = "booking"  # stored; the post has not given a waybill yet
    BOOKED = "booked"
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"  # an attempt failed; the post tries again or returns it
    RETURNING = "returning"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    FAILED = "failed"  # the booking itself never succeeded


# VNPost tracking codes (not public: this table is our reading of them, kept in one place to correct).
VNPOST_STATES: dict[str, DeliveryState] = {
    "100": DeliveryState.BOOKED,
    "200": DeliveryState.PICKED_UP,
    "300": DeliveryState.IN_TRANSIT,
    "400": DeliveryState.OUT_FOR_DELIVERY,
    "500": DeliveryState.DELIVERED,
    "501": DeliveryState.DELIVERY_FAILED,
    "600": DeliveryState.RETURNING,
    "601": DeliveryState.RETURNED,
    "700": DeliveryState.CANCELLED,
}

STATE_LABELS_VI: dict[DeliveryState, str] = {
    DeliveryState.BOOKING: "Đang đặt dịch vụ bưu chính",
    DeliveryState.BOOKED: "Đã tạo đơn gửi kết quả",
    DeliveryState.PICKED_UP: "Bưu điện đã nhận kết quả",
    DeliveryState.IN_TRANSIT: "Đang vận chuyển",
    DeliveryState.OUT_FOR_DELIVERY: "Đang phát",
    DeliveryState.DELIVERED: "Đã phát thành công",
    DeliveryState.DELIVERY_FAILED: "Phát không thành công",
    DeliveryState.RETURNING: "Đang chuyển hoàn",
    DeliveryState.RETURNED: "Đã chuyển hoàn",
    DeliveryState.CANCELLED: "Đã hủy",
    DeliveryState.FAILED: "Không đặt được dịch vụ bưu chính",
}

FINAL = frozenset({DeliveryState.DELIVERED, DeliveryState.RETURNED, DeliveryState.CANCELLED, DeliveryState.FAILED})
# How far along the way each state is: breaks ties between updates stamped with the same time.
PROGRESS: dict[DeliveryState, int] = {state: rank for rank, state in enumerate(DeliveryState)}


def moves_forward(current: DeliveryState, current_at: datetime | None, new: DeliveryState, new_at: datetime) -> bool:
    """Whether a tracking update changes the delivery. Updates arrive late and out of order (a callback
    retried after a poll saw a later state): only a newer one counts, and a final state stays final.
    Time, not rank, decides, because a failed attempt may be followed by another round of delivery."""
    if current in FINAL or new == current:
        return False
    if current_at is None:
        return True
    if new_at != current_at:
        return new_at > current_at
    return PROGRESS[new] > PROGRESS[current]


class Receiver(Strict):
    name: Text
    phone: Phone
    email: Email | None = None
    address: Address  # province and commune; the district is optional (two-level local government)


class DeliveryIn(Strict):
    """POST /api/v1/dossiers/{code}/deliveries. Without a receiver, the result goes to the applicant."""

    receiver: Receiver | None = None
    cod_amount: Annotated[StrictInt, Field(ge=0)] = 0  # whole VND the postman collects (fees paid on delivery)
    description: str = Field("Kết quả giải quyết thủ tục hành chính", max_length=500)


class TrackingIn(Strict):
    """A VNPost tracking callback (its own field names). Other fields the post may add are ignored."""

    model_config = {"extra": "ignore"}

    orderNumber: Annotated[str, Field(min_length=1, max_length=64)]  # noqa: N815 - VNPost's name
    statusCode: Annotated[str, Field(min_length=1, max_length=16)]  # noqa: N815
    statusMessage: Annotated[str, Field(max_length=300)] = ""  # noqa: N815
    at: VnTime
