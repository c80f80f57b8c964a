"""What a dossier and a processing step are, and what makes them valid."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)

from .codes import DOSSIER_CODE_RE, ID_NUMBER_RE, LEVELS, PROCEDURE_CODE_RE, Status, normalise_phone
from .fees import MAX_ITEMS, Fee, Strict, check_payable_items

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def _aware(value: datetime) -> datetime:
    # A time without an offset is Vietnamese local time: that is what every partner here means.
    value = value.replace(tzinfo=VN_TZ) if value.tzinfo is None else value
    if not 2000 <= value.year <= 2100:  # also keeps UTC conversion away from year 0 / 10000
        raise ValueError("a date between the years 2000 and 2100")
    return value


def _matches(pattern, what: str):  # noqa: ANN001, ANN202 - tiny validator factory
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"not a valid {what}: {value!r}")
        return value

    return check


def _level(value: Any) -> str:
    try:
        return LEVELS[value]
    except (KeyError, TypeError):
        raise ValueError("level must be 3, 4, 'mot_phan' or 'toan_trinh'") from None


VnTime = Annotated[datetime, AfterValidator(_aware)]
DossierCode = Annotated[str, AfterValidator(_matches(DOSSIER_CODE_RE, "dossier code (<unit>-YYMMDD-NNNN)"))]
ProcedureCode = Annotated[str, AfterValidator(_matches(PROCEDURE_CODE_RE, "procedure code"))]
IdNumber = Annotated[str, AfterValidator(_matches(ID_NUMBER_RE, "ID number (12-digit CCCD or 9-digit CMND)"))]
Phone = Annotated[str, AfterValidator(normalise_phone)]
Email = Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Level = Annotated[Literal["mot_phan", "toan_trinh"], BeforeValidator(_level)]
Text = Annotated[str, Field(min_length=1, max_length=500)]


class Address(Strict):
    province: Text
    commune: Text
    street: str | None = Field(None, max_length=500)
    district: str | None = Field(None, max_length=200)  # optional: no district level since 2025-07-01


class Applicant(Strict):
    type: Literal[1, 2, 3, 4] = 1
    full_name: Text
    id_number: IdNumber
    phone: Phone | None = None
    email: Email | None = None
    address: Address | None = None


class Attachment(Strict):
    id: Annotated[str, Field(min_length=1, max_length=100)]
    name: Text
    component_code: str | None = Field(None, max_length=100)
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    content_base64: str | None = None
    url: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _has_content(self) -> Attachment:
        if (self.content_base64 is None) == (self.url is None):
            raise ValueError("an attachment has exactly one of content_base64 or url")
        return self


class DossierIn(Strict):
    code: DossierCode
    procedure_code: ProcedureCode
    procedure_name: Text
    level: Level
    applicant: Applicant
    summary: str = Field("", max_length=1000)
    submitted_at: VnTime
    channel: Literal[1, 2, 3] = 2
    delivery_method: Literal["counter", "post", "online"] = "counter"
    fees: list[Fee] = Field(default_factory=list, max_length=100)
    attachments: list[Attachment] = Field(default_factory=list, max_length=200)
    form: dict[str, Any] = Field(default_factory=dict)

    @field_validator("fees")
    @classmethod
    def _unique_fee_codes(cls, fees: list[Fee]) -> list[Fee]:
        codes = [f.code for f in fees]
        if len(codes) != len(set(codes)):
            raise ValueError("fee codes must be unique")
        return fees

    @property
    def fee_total(self) -> int:
        return sum(f.amount for f in self.fees)

    def fingerprint(self) -> str:
        """Same dossier, same fingerprint: compares bodies after validation and normalisation."""
        return fingerprint(self.model_dump(mode="json"))


def _base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("content_base64 is not valid base64") from None
    return value


class ResultFile(Strict):
    """A result document returned online: sent to the applicant as an email attachment."""

    name: Text
    content_type: str = Field("application/pdf", pattern=r"^[a-z]+/[a-zA-Z0-9.+-]+$", max_length=100)
    content_base64: Annotated[str, Field(min_length=1), AfterValidator(_base64)]


class EventIn(Strict):
    status: Annotated[StrictInt, Field(ge=2, le=10)]
    at: VnTime | None = None
    officer: str | None = Field(None, max_length=50)  # NguoiXuLy is at most 50 characters
    position: str | None = Field(None, max_length=200)
    department: str | None = Field(None, max_length=200)
    note: str | None = Field(None, max_length=2000)
    due_at: VnTime | None = None
    event_id: str | None = Field(None, min_length=1, max_length=100)
    # With status 6 (payment required): the fees to pay online; the gateway asks the provider for them.
    fees: list[Fee] | None = Field(None, min_length=1, max_length=MAX_ITEMS)
    # With status 9 or 10, for a result returned online: the documents, attached to the email to the applicant.
    results: list[ResultFile] | None = Field(None, min_length=1, max_length=20)

    @field_validator("status")
    @classmethod
    def _known(cls, value: int) -> int:
        Status(value)
        return value

    @field_validator("fees")
    @classmethod
    def _payable(cls, fees: list[Fee] | None) -> list[Fee] | None:
        return None if fees is None else check_payable_items(fees)

    @model_validator(mode="after")
    def _fees_with_status_6(self) -> EventIn:
        if self.fees is not None and self.status != Status.PAYMENT_REQUIRED:
            raise ValueError("fees go with status 6 (payment required) only")
        if self.results is not None and self.status not in (Status.RESULT_READY, Status.RESULT_RETURNED):
            raise ValueError("results go with status 9 or 10 only")
        return self

    def fingerprint(self) -> str:
        # Optional fields left out stay out of the fingerprint: a step stored before `fees` existed still
        # matches its repeat.
        absent = {name for name in ("at", "fees", "results") if getattr(self, name) is None}
        return fingerprint(self.model_dump(mode="json", exclude=absent))


def fingerprint(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
