"""The rules of drift with the national portal (domain/portal_drift.py): each kind, which wins, what an operator
accepted, and portal values of any type or shape."""

from __future__ import annotations

import copy

import pytest

from gateway.domain.portal_drift import Kind, Sent, compare

UNIT = "000.00.00.H56"
CODE = "000.00.17.H31-240725-0001"


def progress(status: int, at: str, note: str = "") -> dict:
    return {"MaHoSo": CODE, "NguoiXuLy": "Trần Thị Bích", "ChucDanh": "", "ThoiDiemXuLy": at, "PhongBanXuLy": "",
            "NoiDungXuLy": note, "TrangThai": str(status), "NgayBatDau": at, "NgayKetThucTheoQuyDinh": ""}


RECORD = {"MaHoSo": CODE, "MaTTHC": "1.003560.000.00.00.H56", "ChuHoSo": "Nguyễn Thị Hồng Nhung", "LoaiDoiTuong": "1",
          "NgayTiepNhan": "20240725091500", "NgayHenTra": "20240730170000", "NgayTra": "", "TrangThaiHoSo": "4",
          "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "001190012345"}],
          "DanhSachLePhi": [{"MaPhiLePhi": "LPKS", "TenPhiLePhi": "Lệ phí", "Gia": "8000", "HinhThucThu": "1"}],
          "DanhSachGiayToKetQua": []}
STEPS = [progress(2, "20240726080000", "Tiếp nhận"), progress(4, "20240726090000", "Chuyển phòng")]
SENT = Sent(RECORD, STEPS, frozenset({1, 2, 4}))


def portal(**changes) -> dict:
    """The portal's record as the mock keeps it: the status and TrangThai as numbers, the unit, the progress."""
    held = {**copy.deepcopy(RECORD), "TrangThaiHoSo": 4, "MaDonVi": UNIT,
            "QuaTrinhXuLy": [{**p, "TrangThai": int(p["TrangThai"])} for p in STEPS]}
    held.update(changes)
    return held


def test_what_was_sent_is_clean():
    drift = compare(SENT, [portal()], unit=UNIT)
    assert drift.kind is None and drift.differences == []


def test_missing():
    drift = compare(SENT, [], unit=UNIT)
    assert drift.kind is Kind.MISSING and drift.owned


def test_behind_a_progress_record_and_an_older_status():
    drift = compare(SENT, [portal(QuaTrinhXuLy=portal()["QuaTrinhXuLy"][:1], TrangThaiHoSo=2)], unit=UNIT)
    assert drift.kind is Kind.BEHIND and drift.missing_progress == [1]
    assert {d.field for d in drift.differences} == {"TrangThaiHoSo", "QuaTrinhXuLy"}


@pytest.mark.parametrize("field, value", [
    ("NgayHenTra", "20240731170000"), ("ChuHoSo", "NGUYỄN THỊ HỒNG NHUNG"), ("NgayTra", "20240801100000"),
    ("DinhDanhCHS", [{"LoaiDinhDanh": "1", "SoDinhDanh": "001190012346"}]),
    ("DanhSachLePhi", [{"MaPhiLePhi": "LPKS", "TenPhiLePhi": "Lệ phí", "Gia": 8000, "HinhThucThu": "2"}]),
    ("DanhSachGiayToKetQua", [{"TenGiayTo": "Giấy khai sinh"}]),
    ("TrangThaiHoSo", {"x": 1}),  # a status that is no status: ours is sent again
])
def test_fields(field, value):
    drift = compare(SENT, [portal(**{field: value})], unit=UNIT)
    assert drift.kind is Kind.FIELDS and [d.field for d in drift.differences] == [field]
    assert drift.differences[0].gateway != drift.differences[0].portal


def test_numbers_and_digit_strings_are_the_same_value():
    held = portal(LoaiDoiTuong=1, DanhSachLePhi=[{"MaPhiLePhi": "LPKS", "Gia": 8000.0, "HinhThucThu": 1}])
    assert compare(SENT, [held], unit=UNIT).kind is None


def test_ahead_an_operators_status_and_record():
    operator = {**progress(8, "20240727100000", "Cập nhật trạng thái"), "NguoiXuLy": "Quản trị Cổng DVCQG"}
    drift = compare(SENT, [portal(TrangThaiHoSo=8, QuaTrinhXuLy=[*portal()["QuaTrinhXuLy"], operator])], unit=UNIT)
    assert drift.kind is Kind.AHEAD and not drift.owned
    assert compare(SENT, [portal(TrangThaiHoSo=8)], unit=UNIT).kind is Kind.AHEAD  # a status never sent


def test_ahead_wins_over_behind_and_fields():
    extra = progress(5, "20240727100000", "Bổ sung")
    held = portal(QuaTrinhXuLy=[portal()["QuaTrinhXuLy"][0], extra], NgayHenTra="20240731170000")
    assert compare(SENT, [held], unit=UNIT).kind is Kind.AHEAD


def test_foreign_is_never_called_missing():
    theirs = portal(MaDonVi="000.00.00.H01")
    drift = compare(SENT, [theirs], unit=UNIT)
    assert drift.kind is Kind.FOREIGN and not drift.owned
    assert compare(SENT, [portal(), theirs], unit=UNIT).kind is Kind.FOREIGN


def test_a_portal_without_progress_lists_is_judged_on_its_record():
    held = portal()
    del held["QuaTrinhXuLy"]
    assert compare(SENT, [held], unit=UNIT).kind is None
    assert compare(SENT, [{**held, "TrangThaiHoSo": 2}], unit=UNIT).kind is Kind.BEHIND


def test_what_an_operator_accepted_is_left_out():
    drift = compare(SENT, [portal(TrangThaiHoSo=8)], unit=UNIT)
    accepted = [d.signature for d in drift.differences]
    assert compare(SENT, [portal(TrangThaiHoSo=8)], unit=UNIT, accepted=accepted).kind is None
    # The same field showing another value is a new difference.
    assert compare(SENT, [portal(TrangThaiHoSo=7)], unit=UNIT, accepted=accepted).kind is Kind.AHEAD
    foreign = compare(SENT, [portal(MaDonVi="000.00.00.H01")], unit=UNIT)
    taken = [d.signature for d in foreign.differences]
    assert compare(SENT, [portal(MaDonVi="000.00.00.H01")], unit=UNIT, accepted=taken).kind is None


@pytest.mark.parametrize("hostile", [
    {"TrangThaiHoSo": None, "ChuHoSo": ["a"], "DinhDanhCHS": "x", "DanhSachLePhi": {"a": 1}, "NgayTra": 3.5},
    {"QuaTrinhXuLy": [{"TrangThai": [1, 2]}, {}], "MaDonVi": 17},
    {"DanhSachLePhi": [{"Gia": {"nested": [[[]]]}}], "DinhDanhCHS": [{}], "NgayHenTra": True},
])
def test_any_value_is_compared_never_a_crash(hostile):
    drift = compare(SENT, [portal(**hostile)], unit=UNIT)
    assert drift.kind is not None and all(isinstance(d.portal, str) for d in drift.differences)
