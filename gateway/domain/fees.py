"""Fees and charges (phí, lệ phí): whole VND, integers only, never a float."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

MAX_ITEMS = 50  # fee items in one payment
MAX_TOTAL = 10**12  # a trillion dong: far above any fee, far below any integer limit downstream


class Strict(BaseModel):
    """Unknown fields are refused, so a typo is an error rather than silently dropped data."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Fee(Strict):
    code: Annotated[str, Field(min_length=1, max_length=50)]
    name: Annotated[str, Field(min_length=1, max_length=500)]
    amount: Annotated[StrictInt, Field(ge=0, le=MAX_TOTAL)]  # whole VND: no minor unit, never a float


def total_of(items: list[Fee]) -> int:
    return sum(i.amount for i in items)


def check_payable_items(items: list[Fee]) -> list[Fee]:
    """Fee items that can be paid online: unique codes, each above zero, a total within bounds."""
    codes = [i.code for i in items]
    if len(codes) != len(set(codes)):
        raise ValueError("fee codes must be unique")
    if any(i.amount <= 0 for i in items):
        raise ValueError("every fee paid online must be more than 0 VND")
    if total_of(items) > MAX_TOTAL:
        raise ValueError(f"the total may not exceed {MAX_TOTAL} VND")
    return items
