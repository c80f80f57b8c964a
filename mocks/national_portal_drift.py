"""How the fake national portal drifts from what it was sent, as the drift faults ask (`_mock/faults` modes
`silent_drop`, `alter`, `operator_status`, `lose`; docs/testing-with-mocks.md).

The real portal's drift comes from causes its callers cannot see: an answer of "thành công" for a record it
did not keep, a record stored with a field changed, an operator editing the dossier on the portal, a dossier
restored from an older backup. Here each is a pure change of a record, so the mock's handlers stay readable.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from mocks.harness import vn_now

DVCQG_TIME = "%Y%m%d%H%M%S"


def _later(value: Any, fallback: Any) -> str:
    """A date one day later (or a month after the fallback date when there is none)."""
    try:
        return (datetime.strptime(str(value), DVCQG_TIME) + timedelta(days=1)).strftime(DVCQG_TIME)
    except ValueError:
        try:
            return (datetime.strptime(str(fallback), DVCQG_TIME) + timedelta(days=30)).strftime(DVCQG_TIME)
        except ValueError:
            return "20300101000000"


def _due(record: dict[str, Any]) -> dict[str, Any]:
    return {"NgayHenTra": _later(record.get("NgayHenTra"), record.get("NgayTiepNhan"))}


def _received(record: dict[str, Any]) -> dict[str, Any]:
    return {"NgayTiepNhan": _later(record.get("NgayTiepNhan"), "20240101000000")}


def _name(record: dict[str, Any]) -> dict[str, Any]:
    name = str(record.get("ChuHoSo") or "")
    return {"ChuHoSo": name.upper() if name.upper() != name else name + " A"}


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    ids = copy.deepcopy(record.get("DinhDanhCHS"))
    if isinstance(ids, list) and ids and isinstance(ids[0], dict) and str(ids[0].get("SoDinhDanh", "")).isdigit():
        number = str(ids[0]["SoDinhDanh"])
        ids[0]["SoDinhDanh"] = number[:-1] + str((int(number[-1]) + 1) % 10)
        return {"DinhDanhCHS": ids}
    return {"DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "000000000000"}]}


def _fees_paid(record: dict[str, Any]) -> dict[str, Any]:
    fees = copy.deepcopy(record.get("DanhSachLePhi"))
    if isinstance(fees, list) and fees and isinstance(fees[0], dict):
        fees[0]["HinhThucThu"] = "1" if str(fees[0].get("HinhThucThu")) == "2" else "2"
        return {"DanhSachLePhi": fees}
    return _due(record)  # no fee to change: the appointment date instead


# The fields `alter` changes, taken in turn when the fault names none (its `code` may name one).
ALTERATIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "NgayHenTra": _due, "ChuHoSo": _name, "DinhDanhCHS": _identity, "NgayTiepNhan": _received,
    "DanhSachLePhi": _fees_paid,
}


def alter(record: dict[str, Any], field: str | None, turn: int) -> tuple[dict[str, Any], str]:
    """The record with one field changed, and that field's name. Updates carry only some fields: the change
    is made to one the record carries."""
    names = [field] if field in ALTERATIONS else [n for n in ALTERATIONS if n in record] or ["NgayHenTra"]
    name = names[turn % len(names)]
    changed = ALTERATIONS[name](record)
    return {**record, **changed}, next(iter(changed))


# What an operator of the portal sets, unless the fault's `code` names a status: 8 (Dừng xử lý), or 4 when the
# dossier is at 8 already.
OPERATOR_STATUS = 8
OPERATOR = {"NguoiXuLy": "Quản trị Cổng DVCQG", "ChucDanh": "Quản trị viên",
            "PhongBanXuLy": "Cổng Dịch vụ công quốc gia", "NoiDungXuLy": "Cập nhật trạng thái hồ sơ trên Cổng"}


def operator_step(mahoso: str, current: Any, code: str | None) -> dict[str, Any]:
    """The progress record a portal operator's status change leaves in the dossier's history."""
    status = int(code) if code and code.isdigit() else OPERATOR_STATUS
    if not code and str(current) == str(status):
        status = 4
    now = vn_now().strftime(DVCQG_TIME)
    return {"MaHoSo": mahoso, **OPERATOR, "ThoiDiemXuLy": now, "TrangThai": status, "NgayBatDau": now,
            "NgayKetThucTheoQuyDinh": ""}
