"""Field mapping between the gateway's dossier model and the national portal's (DVCQG) names.

Pure functions and tables; the client sends what they build. Outbound: DongBoHoSoMC and
CapNhatTienDoHoSoMC bodies. Inbound: dossiers citizens filed on the national portal, and the portal's
own records of a dossier as TraCuuHoSo answers them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from gateway.domain.dossier import VN_TZ

DVCQG_TIME = "%Y%m%d%H%M%S"
DVCQG_TIME_RE = re.compile(r"^\d{14}$")

# Sources of every table: docs/partners/national-portal.md; fixtures in tests/conformance/national_portal/.
# HinhThuc: how the result is returned. "0" (default) and "1" (by post) as OpenCPS sends them; "2" [assumed].
DELIVERY_TO_HINH_THUC: dict[str, str] = {"counter": "0", "post": "1", "online": "2"}
HINH_THUC_TO_DELIVERY: dict[str, str] = {v: k for k, v in DELIVERY_TO_HINH_THUC.items()}
# HinhThucThu: how the fees were collected [assumed codes; "1" is what one provincial system sends for paid fees].
FEE_COLLECTION: dict[bool, str] = {False: "1", True: "2"}  # keyed by "paid online"
# LoaiDinhDanh: 1 = 12-digit CCCD, 2 = 9-digit CMND (as a provincial system's DongBoHoSoMC code decides it).
ID_KIND_BY_LENGTH: dict[int, str] = {12: "1", 9: "2"}
# DongBoHoSoMC carries no service level: a dossier without MucDo takes its procedure's level from
# national_portal.procedure_levels, else this one [assumed: "mot_phan" asks nothing of the applicant that
# "toan_trinh" would (online payment, result online or by post), so it is the safe reading].
DEFAULT_LEVEL = "mot_phan"


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
        # The gateway keeps no field (lĩnh vực) or handling agency: sent blank, as other systems do [assumed ok].
        "MaLinhVuc": "",
        "TenLinhVuc": "",
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
        "DonViXuLy": "",
        "DinhDanhCHS": [{"LoaiDinhDanh": ID_KIND_BY_LENGTH.get(len(id_number), "1"), "SoDinhDanh": id_number}],
        "TaiLieuNop": [
            {"TepDinhKemId": a["id"], "TenTepDinhKem": a["name"], "MaThanhPhanHoSo": a.get("component_code") or "",
             "DuongDanTaiTepTin": a.get("url") or ""}
            for a in snapshot.get("attachments", [])
        ],
        "DanhSachLePhi": [  # Gia as a string, as the portal's records carry it
            {"MaPhiLePhi": f["code"], "TenPhiLePhi": f["name"], "Gia": str(f["amount"]),
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


# --- Inbound: the portal's records of a dossier, as TraCuuHoSo answers ------------------------------

# The answer is a `result` list (OPENCPS-IMPL searchDossier / hasSyncDossier: empty = the portal does not hold
# the dossier). What one record holds is not public: we read the DongBoHoSoMC fields, its progress records
# as QuaTrinhXuLy and the unit that synced it as MaDonVi [assumed; docs/partners/national-portal.md].
PROGRESS_LIST = "QuaTrinhXuLy"
UNIT = "MaDonVi"
# Kept of a record at most: what an operator needs to see, whatever the portal sends.
MAX_TEXT = 500
MAX_ITEMS = 200


def _bounded(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, list):
        return [_bounded(v, depth + 1) for v in value[:MAX_ITEMS]] if depth < 4 else "[…]"
    if isinstance(value, dict):
        return {str(k)[:100]: _bounded(v, depth + 1) for k, v in list(value.items())[:MAX_ITEMS]} \
            if depth < 4 else "{…}"
    return value if value is None or isinstance(value, bool | int | float) else str(value)[:MAX_TEXT]


def portal_records(answer: dict[str, Any], code: str) -> list[dict[str, Any]]:
    """The records of dossier `code` in a TraCuuHoSo answer, bounded in size; [] when the portal has none.

    Raises ValueError for an answer that cannot be trusted: `result` not a list, an entry not an object,
    entries about other dossiers only, progress records that are not a list of objects."""
    result = answer.get("result")
    if result is None or result == []:
        return []
    if not isinstance(result, list):
        raise ValueError(f"result is not a list but {type(result).__name__}")
    if not all(isinstance(item, dict) for item in result):
        raise ValueError("result holds something other than records")
    ours = [item for item in result if item.get("MaHoSo") == code]
    if not ours:
        others = sorted({str(item.get("MaHoSo"))[:64] for item in result})[:3]
        raise ValueError(f"the answer is about other dossiers ({', '.join(others)}), not {code}")
    for item in ours:
        progress = item.get(PROGRESS_LIST)
        if progress is not None and not (isinstance(progress, list) and all(isinstance(p, dict) for p in progress)):
            raise ValueError(f"{PROGRESS_LIST} is not a list of records")
    return [_bounded(item) for item in ours]


# --- Inbound: a dossier the national portal hands us, in its own DongBoHoSoMC vocabulary -------------


def _dvcqg_time(value: str) -> str:
    try:
        if not DVCQG_TIME_RE.match(value):
            raise ValueError
        parse_dvcqg_time(value)
    except ValueError:
        raise ValueError("must be a date yyyyMMddHHmmss (Vietnamese local time)") from None
    return value


def _blank_is_none(value: Any) -> Any:
    # The portal sends "" for a field it has no value for (our own records do the same).
    return None if isinstance(value, str) and not value.strip() else value


def _whole_vnd(value: Any) -> Any:
    # Gia travels as a string in the portal's records ("8000"); a number is taken too. Never a fraction.
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,13}(?:\.0+)?\s*", value):
        return int(value.strip().split(".")[0])
    return value


def _code(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


DvcqgTime = Annotated[str, AfterValidator(_dvcqg_time)]
OptionalDvcqgTime = Annotated[DvcqgTime | None, BeforeValidator(_blank_is_none)]
OptionalText = Annotated[str | None, BeforeValidator(_blank_is_none)]
CodeText = Annotated[str, BeforeValidator(_code)]


class _Dvcqg(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)


class DvcqgIdentity(_Dvcqg):
    """One entry of DinhDanhCHS: the applicant's identity document."""

    LoaiDinhDanh: Annotated[CodeText | None, BeforeValidator(_blank_is_none)] = None
    SoDinhDanh: str


class DvcqgFee(_Dvcqg):
    MaPhiLePhi: str
    TenPhiLePhi: str
    Gia: Annotated[int, BeforeValidator(_whole_vnd), Field(strict=True)]


class DvcqgAttachment(_Dvcqg):
    TepDinhKemId: OptionalText = None  # a provincial system sends "" when it has none: numbered by position then
    TenTepDinhKem: str
    MaThanhPhanHoSo: OptionalText = None
    DuongDanTaiTepTin: str
    IsDeleted: Annotated[bool | None, BeforeValidator(_blank_is_none)] = None  # the same system lists removed ones


def _attachment_id(attachment: DvcqgAttachment, position: int) -> str:
    return attachment.TepDinhKemId or f"TaiLieuNop-{position + 1}"


# Older or hand-made senders use these names; each is read only when the portal's own name is absent.
ALTERNATIVE_NAMES: dict[str, str] = {"NgayNopHoSo": "NgayTiepNhan", "HinhThucNhanKetQua": "HinhThuc"}


class DvcqgDossierIn(_Dvcqg):
    """A dossier as the national portal sends it: the DongBoHoSoMC record, plus optional extras.

    Refused only for what the gateway cannot file without: MaHoSo, MaTTHC, TenTTHC, ChuHoSo, an identity
    in DinhDanhCHS (or SoDinhDanh) and NgayTiepNhan (or NgayNopHoSo). Everything else has a default.
    """

    MaHoSo: str
    MaTTHC: str
    TenTTHC: str
    MucDo: Annotated[int | str | None, BeforeValidator(_blank_is_none)] = Field(
        None, description="3/4 or mot_phan/toan_trinh; absent: the procedure's level (procedure_levels)")
    ChuHoSo: str
    LoaiDoiTuong: int = 1
    DinhDanhCHS: list[DvcqgIdentity] = Field(min_length=1, description="[{LoaiDinhDanh, SoDinhDanh}]")
    SoDienThoai: OptionalText = None
    Email: OptionalText = None
    TinhThanh: OptionalText = None
    PhuongXa: OptionalText = None
    QuanHuyen: OptionalText = None
    DiaChiChiTiet: OptionalText = None
    TrichYeuHoSo: str = ""
    NgayTiepNhan: DvcqgTime = Field(description="yyyyMMddHHmmss, Vietnamese local time")
    NgayNopHoSo: OptionalDvcqgTime = None
    NgayHenTra: OptionalDvcqgTime = None
    KenhThucHien: int = 2
    HinhThuc: CodeText = "0"
    DanhSachLePhi: list[DvcqgFee] = []
    TaiLieuNop: list[DvcqgAttachment] = []
    DuLieuBieuMau: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _portal_names_first(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for old, new in ALTERNATIVE_NAMES.items():
            if _blank_is_none(data.get(new)) is None and _blank_is_none(data.get(old)) is not None:
                data[new] = data[old]
        if not data.get("DinhDanhCHS") and _blank_is_none(data.get("SoDinhDanh")) is not None:
            data["DinhDanhCHS"] = [{"SoDinhDanh": data["SoDinhDanh"]}]
        for key in ("LoaiDoiTuong", "KenhThucHien", "HinhThuc"):  # blank: take the default
            if key in data and _blank_is_none(data[key]) is None:
                del data[key]
        return data

    @model_validator(mode="after")
    def _known_delivery(self) -> DvcqgDossierIn:
        if self.HinhThuc not in HINH_THUC_TO_DELIVERY:
            raise ValueError(f"HinhThuc must be one of {sorted(HINH_THUC_TO_DELIVERY)}")
        return self

    def to_dossier(self, procedure_levels: Mapping[str, str] | None = None,
                   default_level: str = DEFAULT_LEVEL) -> dict[str, Any]:
        """The same dossier in the gateway's own field names, ready for DossierIn validation."""
        address = None
        if self.TinhThanh and self.PhuongXa:
            address = {"province": self.TinhThanh, "commune": self.PhuongXa, "street": self.DiaChiChiTiet,
                       "district": self.QuanHuyen}
        level = self.MucDo if self.MucDo is not None else (procedure_levels or {}).get(self.MaTTHC, default_level)
        return {
            "code": self.MaHoSo,
            "procedure_code": self.MaTTHC,
            "procedure_name": self.TenTTHC,
            "level": level,
            "applicant": {"type": self.LoaiDoiTuong, "full_name": self.ChuHoSo,
                          "id_number": self.DinhDanhCHS[0].SoDinhDanh,
                          "phone": self.SoDienThoai, "email": self.Email, "address": address},
            "summary": self.TrichYeuHoSo,
            "submitted_at": parse_dvcqg_time(self.NgayTiepNhan).isoformat(),
            "channel": self.KenhThucHien,
            "delivery_method": HINH_THUC_TO_DELIVERY[self.HinhThuc],
            "fees": [{"code": f.MaPhiLePhi, "name": f.TenPhiLePhi, "amount": f.Gia} for f in self.DanhSachLePhi],
            "attachments": [{"id": _attachment_id(a, i), "name": a.TenTepDinhKem, "component_code": a.MaThanhPhanHoSo,
                             "url": a.DuongDanTaiTepTin} for i, a in enumerate(self.TaiLieuNop) if not a.IsDeleted],
            "form": self.DuLieuBieuMau,
        }


# Where each field of the gateway's dossier comes from in the portal's record, so that a refusal of the
# mapped dossier names the field the portal sent ("*" is a list index, kept as it was).
DOSSIER_FIELD_SOURCE: dict[str, str] = {
    "code": "MaHoSo", "procedure_code": "MaTTHC", "procedure_name": "TenTTHC", "level": "MucDo",
    "applicant.type": "LoaiDoiTuong", "applicant.full_name": "ChuHoSo",
    "applicant.id_number": "DinhDanhCHS.0.SoDinhDanh", "applicant.phone": "SoDienThoai",
    "applicant.email": "Email", "applicant.address.province": "TinhThanh", "applicant.address.commune": "PhuongXa",
    "applicant.address.street": "DiaChiChiTiet", "applicant.address.district": "QuanHuyen",
    "summary": "TrichYeuHoSo", "submitted_at": "NgayTiepNhan", "channel": "KenhThucHien",
    "delivery_method": "HinhThuc", "fees": "DanhSachLePhi", "fees.*": "DanhSachLePhi.*",
    "fees.*.code": "DanhSachLePhi.*.MaPhiLePhi", "fees.*.name": "DanhSachLePhi.*.TenPhiLePhi",
    "fees.*.amount": "DanhSachLePhi.*.Gia", "attachments": "TaiLieuNop", "attachments.*": "TaiLieuNop.*",
    "attachments.*.id": "TaiLieuNop.*.TepDinhKemId", "attachments.*.name": "TaiLieuNop.*.TenTepDinhKem",
    "attachments.*.component_code": "TaiLieuNop.*.MaThanhPhanHoSo",
    "attachments.*.url": "TaiLieuNop.*.DuongDanTaiTepTin", "form": "DuLieuBieuMau",
}


def dvcqg_field(field: str) -> str:
    """A dotted field of the gateway's dossier ("fees.1.amount") as the portal named it ("DanhSachLePhi.1.Gia")."""
    parts = field.split(".") if field else []
    for n in range(len(parts), 0, -1):
        indexes = [p for p in parts[:n] if p.isdigit()]
        source = DOSSIER_FIELD_SOURCE.get(".".join("*" if p.isdigit() else p for p in parts[:n]))
        if source is not None:
            named = [indexes.pop(0) if p == "*" else p for p in source.split(".")]
            return ".".join(named + parts[n:])
    return field
