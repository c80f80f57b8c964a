"""Payment rules without I/O: request validation, what a late confirmation means, provider routing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from gateway.domain.payment import PaymentRequestIn, PaymentState, confirm
from gateway.domain.payment_routing import choose_provider, unit_of
from gateway.domain.vietnamese_text import without_diacritics

ITEMS = [{"code": "LP", "name": "Lệ phí", "amount": 8000}, {"code": "PHI", "name": "Phí", "amount": 50000}]
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def test_a_request_totals_its_items_exactly():
    body = PaymentRequestIn.model_validate({"items": ITEMS, "total": 58000})
    assert body.total == 58000 and all(isinstance(i.amount, int) for i in body.items)
    with pytest.raises(ValidationError, match="not the sum of the items"):
        PaymentRequestIn.model_validate({"items": ITEMS, "total": 58001})


@pytest.mark.parametrize("amount", [8000.0, "8000", True, 0, -1, 10**12 + 1, 8000.5])
def test_amounts_are_positive_whole_dong(amount):
    with pytest.raises(ValidationError):
        PaymentRequestIn.model_validate({"items": [{"code": "LP", "name": "Lệ phí", "amount": amount}]})


def test_a_huge_total_is_refused_even_when_each_item_is_allowed():
    items = [{"code": f"F{n}", "name": "Phí", "amount": 10**12} for n in range(2)]
    with pytest.raises(ValidationError, match="may not exceed"):
        PaymentRequestIn.model_validate({"items": items})


EXPIRES = NOW + timedelta(minutes=30)


@pytest.mark.parametrize("state,now,closed,applies,late", [
    (PaymentState.PENDING, NOW, False, True, False),
    (PaymentState.INITIATING, NOW, False, True, False),  # paid before our INIT answer came back
    (PaymentState.PENDING, EXPIRES + timedelta(seconds=1), False, True, True),
    (PaymentState.EXPIRED, NOW, False, True, True),
    (PaymentState.CANCELLED, NOW, False, True, True),
    (PaymentState.FAILED, NOW, False, True, True),
    (PaymentState.PENDING, NOW, True, True, True),  # the dossier was withdrawn meanwhile
    (PaymentState.PAID, NOW, False, False, False),  # a repeat: nothing to do
])
def test_money_taken_is_never_dropped_but_odd_cases_are_flagged(state, now, closed, applies, late):
    verdict = confirm(state, now=now, expires_at=EXPIRES, dossier_closed=closed)
    assert (verdict.applies, verdict.late, verdict.reason is not None) == (applies, late, late)


@dataclass
class Route:
    provider: str
    procedure_code: str | None = None
    unit_code: str | None = None


def test_routes_by_procedure_then_unit_then_default():
    routes = [Route("vnpay", unit_code="000.00.17.H31"), Route("national_platform", procedure_code="1.000001")]
    pick = lambda procedure, code: choose_provider(routes, procedure_code=procedure, dossier_code=code,  # noqa: E731
                                                   default="national_platform")
    assert pick("1.003560", "000.00.17.H31-240725-0001") == "vnpay"
    assert pick("1.000001", "000.00.17.H31-240725-0001") == "national_platform"  # procedure wins over unit
    assert pick("1.003560", "H56.14-240725-0001") == "national_platform"
    assert unit_of("H56.14-240725-0001") == "H56.14"


def test_vietnamese_without_diacritics():
    assert without_diacritics("Thanh toán phí, lệ phí hồ sơ") == "Thanh toan phi, le phi ho so"
    assert without_diacritics("ĐĂNG KÝ Đất đai Nguyễn Thị Hồng Nhung") == "DANG KY Dat dai Nguyen Thi Hong Nhung"
