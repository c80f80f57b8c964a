"""Field mapping between the gateway's dossier model and the national portal's (DVCQG) names.

Pure functions and tables; the client sends what they build. Outbound: DongBoHoSoMC and
CapNhatTienDoHoSoMC bodies. Inbound: dossiers citizens filed on the national portal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.domain.dossier import VN_TZ

DVCQG_TIME = "%Y%m%d%H%M%S"

# HinhThuc: how the result is returned [assumed codes; correct here if the portal says otherwise].
DELIVERY_TO_HINH_THUC: dict[str, str] = {"counter": "0", "post": "1", "online": "2"}
HINH_THUC_TO_DELIVERY: dict[str, str] = {v: k for k, v in DELIVERY_TO_HINH_THUC.items()}
# HinhThucThu: how the fees were collected [assumed codes].
FEE_COLLECTION: dict[bool, str] = {False: "1", True: "2"}  # keyed by "paid online"
# LoaiDinhDanh: 1 = 12-digit CCCD, 2 = 9-digit CMND [assumed].
ID_KIND_BY_LENGTH: dict[int, str] = {12: "1", 9: "2"}


def dvcqg_time(value: str | datetime | None) -> str:
    """ISO 8601 (or datetime) to yyyyMMddHHmmss in Vietnamese local time; '' when absent."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=VN_TZ)
    return moment.astimezone(VN_TZ).strftime(DVCQG_TIME)


def parse_dvcqg_time(value: str) -> datetime:
    return datetime.strptime(value, DVCQG_TIME).replace(tzinfo=VN_TZ)


def _local_phone(phone: str | None) -> str:
    # We store 84xxxxxxxxx (what SMS gateways want); the portal shows numbers as 0xxxxxxxxx.
    return "0" + phone[2:] if phone and phone.startswith("84") else (phone or "")


def dossier_to_dvcqg(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A dossier snapshot (the filed body plus status, due_at, returned_at) as a DongBoHoSoMC record."""
    applicant = snapshot["applicant"]
    id_number = applicant["id_number"]
    return {
        "MaHoSo": snapshot["code"],
        "MaTTHC": snapshot["procedure_code"],
        "TenTTHC": snapshot["procedure_name"],
        "ChuHoSo": applicant["full_name"],
        "LoaiDoiTuong": str(applicant.get("type", 1)),
        "MaDoiTuong": "",
        "Email": applicant.get("email") or "",
        "SoDienThoai": _local_phone(applicant.get("phone")),
        "TrichYeuHoSo": (snapshot.get("summary") or "")[:1000],
        "NgayTiepNhan": dvcqg_time(snapshot["submitted_at"]),
        "NgayHenTra": dvcqg_time(snapshot.get("due_at")),
        "TrangThaiHoSo": str(snapshot.get("status", 1)),
        "NgayTra": dvcqg_time(snapshot.get("returned_at")),
        "HinhThuc": DELIVERY_TO_HINH_THUC[snapshot.get("delivery_method", "counter")],
        "KenhThucHien": str(snapshot.get("channel", 2)),
        "DinhDanhCHS": [{"LoaiDinhDanh": ID_KIND_BY_LENGTH.get(len(id_number), "1"), "SoDinhDanh": id_number}],
        "TaiLieuNop": [
            {"TepDinhKemId": a["id"], "TenTepDinhKem": a["name"], "MaThanhPhanHoSo": a.get("component_code") or "",
             "DuongDanTaiTepTin": a.get("url") or ""}
            for a in snapshot.get("attachments", [])
        ],
        "DanhSachLePhi": [
            {"MaPhiLePhi": f["code"], "TenPhiLePhi": f["name"], "Gia": f["amount"],
             "HinhThucThu": FEE_COLLECTION[bool(snapshot.get("fees_paid_online"))]}
            for f in snapshot.get("fees", [])
        ],
        "DanhSachGiayToKetQua": [],
    }


def event_to_progress(code: str, event: dict[str, Any]) -> dict[str, Any]:
    """A processing step as a CapNhatTienDoHoSoMC record."""
    return {
        "MaHoSo": code,
        "NguoiXuLy": (event.get("officer") or "")[:50],
        "ChucDanh": event.get("position") or "",
        "ThoiDiemXuLy": dvcqg_time(event["at"]),
        "PhongBanXuLy": event.get("department") or "",
        "NoiDungXuLy": event.get("note") or "",
        "TrangThai": str(event["status"]),
        "NgayBatDau": dvcqg_time(event["at"]),
        "NgayKetThucTheoQuyDinh": dvcqg_time(event.get("due_at")),
    }


class _Dvcqg(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)


class DvcqgFee(_Dvcqg):
    MaPhiLePhi: str
    TenPhiLePhi: str
    Gia: int = Field(strict=True)


class DvcqgAttachment(_Dvcqg):
    TepDinhKemId: str
    TenTepDinhKem: str
    MaThanhPhanHoSo: str | None = None
    DuongDanTaiTepTin: str


class DvcqgDossierIn(_Dvcqg):
    """A dossier as the national portal sends it when a citizen filed there."""

    MaHoSo: str
    MaTTHC: str
    TenTTHC: str
    MucDo: int | str = Field(description="3/4 or mot_phan/toan_trinh")
    ChuHoSo: str
    LoaiDoiTuong: int = 1
    SoDinhDanh: str
    SoDienThoai: str | None = None
    Email: str | None = None
    TinhThanh: str | None = None
    PhuongXa: str | None = None
    QuanHuyen: str | None = None
    DiaChiChiTiet: str | None = None
    TrichYeuHoSo: str = ""
    NgayNopHoSo: str = Field(description="yyyyMMddHHmmss, Vietnamese local time")
    KenhThucHien: int = 2
    HinhThucNhanKetQua: str = "0"
    DanhSachLePhi: list[DvcqgFee] = []
    TaiLieuNop: list[DvcqgAttachment] = []
    DuLieuBieuMau: dict[str, Any] = {}

    @field_validator("NgayNopHoSo")
    @classmethod
    def _time(cls, value: str) -> str:
        try:
            parse_dvcqg_time(value)
        except ValueError:
            raise ValueError("NgayNopHoSo must be yyyyMMddHHmmss") from None
        return value

    @field_validator("HinhThucNhanKetQua")
    @classmethod
    def _delivery(cls, value: str) -> str:
        if value not in HINH_THUC_TO_DELIVERY:
            raise ValueError(f"HinhThucNhanKetQua must be one of {sorted(HINH_THUC_TO_DELIVERY)}")
        return value

    def to_dossier(self) -> dict[str, Any]:
        """The same dossier in the gateway's own field names, ready for DossierIn validation."""
        address = None
        if self.TinhThanh and self.PhuongXa:
            address = {"province": self.TinhThanh, "commune": self.PhuongXa, "street": self.DiaChiChiTiet,
                       "district": self.QuanHuyen}
        return {
            "code": self.MaHoSo,
            "procedure_code": self.MaTTHC,
            "procedure_name": self.TenTTHC,
            "level": self.MucDo,
            "applicant": {"type": self.LoaiDoiTuong, "full_name": self.ChuHoSo, "id_number": self.SoDinhDanh,
                          "phone": self.SoDienThoai, "email": self.Email, "address": address},
            "summary": self.TrichYeuHoSo,
            "submitted_at": parse_dvcqg_time(self.NgayNopHoSo).isoformat(),
            "channel": self.KenhThucHien,
            "delivery_method": HINH_THUC_TO_DELIVERY[self.HinhThucNhanKetQua],
            "fees": [{"code": f.MaPhiLePhi, "name": f.TenPhiLePhi, "amount": f.Gia} for f in self.DanhSachLePhi],
            "attachments": [{"id": a.TepDinhKemId, "name": a.TenTepDinhKem, "component_code": a.MaThanhPhanHoSo,
                             "url": a.DuongDanTaiTepTin} for a in self.TaiLieuNop],
            "form": self.DuLieuBieuMau,
        }
