"""What the national portal accepts in a record: a dossier of DongBoHoSoMC, a step of CapNhatTienDoHoSoMC."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

# Required in a new DongBoHoSoMC record. ChuHoSo is not: OpenCPS marks it "ko bb" (không bắt buộc).
DOSSIER_REQUIRED = ("MaHoSo", "MaTTHC", "NgayTiepNhan")
DOSSIER_DATES = ("NgayTiepNhan", "NgayHenTra", "NgayTra")
PROGRESS_DATES = ("ThoiDiemXuLy", "NgayBatDau", "NgayKetThucTheoQuyDinh")
COUNTERS = ("creates", "updates", "progress")  # mock bookkeeping, never taken from input
# Kept by the portal itself: its counters, and the unit (madonvi) whose call created the record.
MOCK_KEPT = (*COUNTERS, "MaDonVi")


class Invalid(Exception):
    """A validation failure, answered with error_code 2."""


def _check_date(record: dict[str, Any], key: str, required: bool) -> None:
    value = record.get(key)
    if value in (None, "") and not required:
        return
    if not isinstance(value, str) or len(value) != 14 or not value.isdigit():
        raise Invalid(f"{key} phải có định dạng yyyyMMddHHmmss")
    try:
        datetime.strptime(value, "%Y%m%d%H%M%S")
    except ValueError:
        raise Invalid(f"{key} không phải ngày hợp lệ") from None


def _check_text(record: dict[str, Any], key: str, required: bool, max_len: int | None = None) -> None:
    value = record.get(key)
    if value is None and not required:
        return
    if not isinstance(value, str) or (required and not value.strip()):
        raise Invalid(f"{key} là bắt buộc" if required else f"{key} phải là chuỗi")
    if max_len is not None and len(value) > max_len:
        raise Invalid(f"{key} vượt quá {max_len} ký tự")


def _status(record: dict[str, Any], key: str, required: bool) -> int | None:
    """Validate a 1–10 status (int or digit string) and return it as int."""
    value = record.get(key)
    if value is None and not required:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
        raise Invalid(f"{key} phải là số từ 1 đến 10")
    return value


def records(body: dict[str, Any]) -> list[dict[str, Any]]:
    data = body.get("data")
    if not isinstance(data, list) or not data or not all(isinstance(item, dict) for item in data):
        raise Invalid("data phải là danh sách đối tượng không rỗng")
    return data


def is_updating(body: dict[str, Any]) -> bool:
    value = body.get("isUpdating", False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise Invalid("isUpdating phải là true hoặc false")


def validate_dossier(item: dict[str, Any], creating: bool) -> dict[str, Any]:
    """Validate one dossier; returns a clean copy (status normalised, bookkeeping keys dropped).

    On update only MaHoSo is required: the update merges whatever fields it carries.
    """
    _check_text(item, "MaHoSo", required=True)
    # A required field present in an update must still be valid (no blanking it).
    _check_text(item, "MaTTHC", required=creating or "MaTTHC" in item)
    _check_text(item, "ChuHoSo", required=False)
    for key in DOSSIER_DATES:
        _check_date(item, key, required=key in DOSSIER_REQUIRED and (creating or key in item))
    _check_text(item, "TrichYeuHoSo", required=False, max_len=1000)
    clean = {k: copy.deepcopy(v) for k, v in item.items() if k not in MOCK_KEPT}
    status = _status(item, "TrangThaiHoSo", required=False)
    if status is not None:
        clean["TrangThaiHoSo"] = status
    return clean


def validate_progress(item: dict[str, Any]) -> dict[str, Any]:
    _check_text(item, "MaHoSo", required=True)
    _check_text(item, "NguoiXuLy", required=False, max_len=50)
    for key in PROGRESS_DATES:
        _check_date(item, key, required=key == "ThoiDiemXuLy")
    clean = copy.deepcopy(item)
    clean["TrangThai"] = _status(item, "TrangThai", required=True)
    return clean
