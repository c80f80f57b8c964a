"""Pure domain rules: codes, status machine, dossier validation, retry schedule, DVCQG mapping."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from gateway.adapters.national_portal.mapping import DvcqgDossierIn, dossier_to_dvcqg, dvcqg_time, event_to_progress
from gateway.domain.codes import DOSSIER_CODE_RE, PROCEDURE_CODE_RE, Status, normalise_phone
from gateway.domain.dossier import DossierIn, EventIn
from gateway.domain.status_machine import TRANSITIONS, IllegalTransition, is_final, next_status
from gateway.jobs.retry_schedule import backoff_seconds, retry_delay

from .conftest import dossier_body


@pytest.mark.parametrize("code", ["000.00.17.H31-240725-0001", "000.00.01.H22-251231-9999", "H56.14-240101-0001"])
def test_valid_dossier_codes(code):
    assert DOSSIER_CODE_RE.match(code)


@pytest.mark.parametrize("code", ["000.00.17.H31-241325-0001", "000.00.17.H31-240732-0001", "000.00.17.H31-240725-001",
                                  "00.00.17.H31-240725-0001", "000.00.17.H31_240725_0001", "", "HS-2024-1"])
def test_invalid_dossier_codes(code):
    assert not DOSSIER_CODE_RE.match(code)


def test_procedure_codes():
    assert PROCEDURE_CODE_RE.match("1.003560.000.00.00.H56")
    assert PROCEDURE_CODE_RE.match("2.000001")
    assert not PROCEDURE_CODE_RE.match("1.3560")


@pytest.mark.parametrize("raw", ["0912345678", "84912345678", "+84912345678", "091 234 5678"])
def test_phone_normalised_to_84(raw):
    assert normalise_phone(raw) == "84912345678"


@pytest.mark.parametrize("raw", ["0212345678", "091234567", "12345", "0912345678901"])
def test_bad_phone_refused(raw):
    with pytest.raises(ValueError):
        normalise_phone(raw)


def test_every_status_has_a_row_and_finals_allow_nothing():
    assert set(TRANSITIONS) == set(Status)
    assert {s for s in Status if is_final(s)} == {Status.REFUSED, Status.WITHDRAWN, Status.STOPPED,
                                                   Status.RESULT_RETURNED}


def test_a_whole_journey_is_legal():
    status = Status.NEW
    for step in (2, 4, 4, 5, 4, 6, 4, 9, 10):
        status = next_status(status, step)
    assert status is Status.RESULT_RETURNED


def test_illegal_step_names_the_allowed_ones():
    with pytest.raises(IllegalTransition) as info:
        next_status(1, 9)
    assert info.value.allowed == sorted({Status.ACCEPTED, Status.REFUSED, Status.SUPPLEMENT_REQUESTED,
                                         Status.PAYMENT_REQUIRED, Status.WITHDRAWN})
    with pytest.raises(IllegalTransition):
        next_status(10, 4)


@pytest.mark.parametrize("level,stored", [(3, "mot_phan"), (4, "toan_trinh"), ("mot_phan", "mot_phan"),
                                          ("toan_trinh", "toan_trinh"), ("4", "toan_trinh")])
def test_both_level_vocabularies_accepted(level, stored):
    assert DossierIn.model_validate(dossier_body(level=level)).level == stored


@pytest.mark.parametrize("patch", [
    {"level": 2},
    {"fees": [{"code": "A", "name": "x", "amount": 8000.5}]},
    {"fees": [{"code": "A", "name": "x", "amount": "8000"}]},
    {"fees": [{"code": "A", "name": "x", "amount": -1}]},
    {"fees": [{"code": "A", "name": "x", "amount": 1}, {"code": "A", "name": "y", "amount": 2}]},
    {"channel": 4},
    {"delivery_method": "drone"},
    {"unknown_field": 1},
    {"attachments": [{"id": "a", "name": "a.pdf"}]},
])
def test_invalid_dossiers_refused(patch):
    with pytest.raises(ValidationError):
        DossierIn.model_validate(dossier_body(**patch))


@pytest.mark.parametrize("applicant_patch", [{"id_number": "12345"}, {"id_number": "00119001234X"},
                                             {"phone": "12345"}, {"email": "not-an-email"}, {"type": 5}])
def test_invalid_applicants_refused(applicant_patch):
    body = dossier_body()
    body["applicant"].update(applicant_patch)
    with pytest.raises(ValidationError):
        DossierIn.model_validate(body)


def test_district_is_optional_and_cmnd_accepted():
    body = dossier_body()
    body["applicant"]["id_number"] = "012345678"
    body["applicant"]["address"] = {"province": "Cần Thơ", "commune": "Phường Ninh Kiều"}
    assert DossierIn.model_validate(body).applicant.address.district is None


def test_fingerprint_ignores_formatting_not_content():
    a = DossierIn.model_validate(dossier_body(code="000.00.17.H31-240725-0001"))
    b = DossierIn.model_validate({**dossier_body(code="000.00.17.H31-240725-0001"),
                                  "submitted_at": "2024-07-25T02:15:00Z"})
    c = DossierIn.model_validate(dossier_body(code="000.00.17.H31-240725-0001", summary="khác"))
    assert a.fingerprint() != c.fingerprint()
    assert a.submitted_at == b.submitted_at


@pytest.mark.parametrize("status", [1, 11, 0, "4", 4.0])
def test_event_status_must_be_a_step(status):
    with pytest.raises(ValidationError):
        EventIn.model_validate({"status": status})


def test_officer_limited_to_50_characters():
    with pytest.raises(ValidationError):
        EventIn.model_validate({"status": 2, "officer": "x" * 51})


def test_backoff_grows_caps_and_jitters():
    rng = random.Random(1)
    delays = [backoff_seconds(n, base=1, cap=30, rng=rng) for n in range(1, 10)]
    assert 0.5 <= delays[0] <= 1
    assert all(d <= 30 for d in delays)
    assert delays[-1] >= 15  # capped ceiling, jitter keeps at least half of it
    assert len({round(d, 6) for d in delays}) == len(delays)


def test_retry_after_wins_when_longer_but_is_capped():
    assert retry_delay(1, base=1, cap=60, retry_after=20) == 20
    assert retry_delay(1, base=1, cap=60, retry_after=600) == 60


def test_dvcqg_dates_are_vietnamese_local_time():
    assert dvcqg_time("2024-07-25T02:15:00+00:00") == "20240725091500"
    assert dvcqg_time("2024-07-25T09:15:00") == "20240725091500"
    assert dvcqg_time(None) == ""


def test_dossier_and_progress_mapped_to_dvcqg_names():
    d = DossierIn.model_validate(dossier_body(code="000.00.17.H31-240725-0001")).model_dump(mode="json")
    record = dossier_to_dvcqg({**d, "status": 2, "due_at": "2024-07-30T17:00:00+07:00"})
    assert record["MaHoSo"] == "000.00.17.H31-240725-0001"
    assert record["SoDienThoai"] == "0912345678"
    assert record["NgayTiepNhan"] == "20240725091500"
    assert record["NgayHenTra"] == "20240730170000"
    assert record["TrangThaiHoSo"] == "2"
    assert record["DanhSachLePhi"] == [{"MaPhiLePhi": "LPKS", "TenPhiLePhi": "Lệ phí đăng ký khai sinh", "Gia": "8000",
                                        "HinhThucThu": "1"}]
    step = event_to_progress("X", {"status": 4, "at": "2024-07-26T08:00:00+07:00", "officer": "Lê Văn C" * 10})
    assert step["TrangThai"] == "4" and step["ThoiDiemXuLy"] == "20240726080000" and len(step["NguoiXuLy"]) == 50


def test_national_portal_dossier_maps_into_the_same_model():
    incoming = DvcqgDossierIn.model_validate({
        "MaHoSo": "000.00.17.H31-240725-0002", "MaTTHC": "1.003560.000.00.00.H56", "TenTTHC": "Đăng ký kết hôn",
        "MucDo": "toan_trinh", "ChuHoSo": "Phạm Thu Hà", "LoaiDoiTuong": 1, "SoDinhDanh": "001190099999",
        "SoDienThoai": "0987654321", "TinhThanh": "Đà Nẵng", "PhuongXa": "Phường Hải Châu",
        "NgayNopHoSo": "20240725101500", "HinhThucNhanKetQua": "1",
        "DanhSachLePhi": [{"MaPhiLePhi": "LPKH", "TenPhiLePhi": "Lệ phí", "Gia": 0}], "TruongLa": "ignored",
    })
    dossier = DossierIn.model_validate(incoming.to_dossier())
    assert dossier.level == "toan_trinh" and dossier.delivery_method == "post"
    assert dossier.applicant.phone == "84987654321"
    assert dossier.submitted_at.isoformat() == "2024-07-25T10:15:00+07:00"
