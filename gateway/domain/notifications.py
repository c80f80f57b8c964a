"""Telling citizens: which message each status change sends, on which channels, and ad-hoc requests."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, model_validator

from .codes import Status, normalise_phone
from .dossier import DossierCode
from .fees import Strict


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class NotificationState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"  # refused for good, or out of attempts: an operator sees it in the dead letters


# The template that tells the citizen of each status. Processing (4) is internal and tells nothing.
# Payment required (6) with fees waits for the pay link: the payment's start sends it instead.
STATUS_TEMPLATES: dict[Status, str] = {
    Status.NEW: "received",
    Status.ACCEPTED: "accepted",
    Status.REFUSED: "refused",
    Status.SUPPLEMENT_REQUESTED: "supplement_requested",
    Status.PAYMENT_REQUIRED: "payment_required",
    Status.WITHDRAWN: "withdrawn",
    Status.STOPPED: "stopped",
    Status.RESULT_READY: "result_ready",
    Status.RESULT_RETURNED: "result_returned",
}
RESULT_POSTED = "result_posted"  # the post has the result: the citizen gets the waybill
PAYMENT_REQUIRED = STATUS_TEMPLATES[Status.PAYMENT_REQUIRED]

TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def recipients(applicant: dict[str, Any]) -> dict[Channel, str]:
    """The channels a dossier gives: its applicant's phone (already normalised at filing) and email."""
    found: dict[Channel, str] = {}
    if applicant.get("phone"):
        found[Channel.SMS] = applicant["phone"]
    if applicant.get("email"):
        found[Channel.EMAIL] = applicant["email"]
    return found


class NotificationIn(Strict):
    """POST /api/v1/notifications: one templated SMS or email, with or without a dossier behind it."""

    channel: Channel
    to: Annotated[str, Field(min_length=3, max_length=254)]
    template: Annotated[str, Field(pattern=TEMPLATE_NAME.pattern)]
    params: dict[str, Any] = Field(default_factory=dict)
    dossier_code: DossierCode | None = None

    @model_validator(mode="after")
    def _recipient_fits_channel(self) -> NotificationIn:
        if self.channel is Channel.SMS:
            self.to = normalise_phone(self.to)  # 0912... -> 84912...; a clear error otherwise
        elif not EMAIL_RE.match(self.to):
            raise ValueError(f"not an email address: {self.to!r}")
        return self
