"""The electronic archive's rules, without I/O: package states, names, metadata, the timestamp chain, renewal.

A package is a BagIt bag (RFC 8493). Its tag manifest covers bag-info.txt and the payload manifest, which
covers every file; its archive timestamps are in a tag file outside the tag manifest, an RFC 4998 evidence record
(domain/evidence.py, signature/evidence_record.py): the first timestamp stamps the root of a hash tree over a batch
of tag manifests, renewals continue its chain. Packages sealed before batches carry chained tokens instead:
token k stamps H(tag manifest || token 1 || ... || token k-1) (chain_imprint below); they still verify and renew.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .codes import STATUS_LABELS_VI, Status
from .dossier import VN_TZ

PENDING, SEALED, FAILING = "pending", "sealed", "failed"  # failed: waiting for its retry, flagged for operators
STATES = (PENDING, SEALED, FAILING)
STATE_LABELS_VI = {PENDING: "Chờ lập gói lưu trữ", SEALED: "Đã niêm phong", FAILING: "Lỗi, đang thử lại"}

TIMESTAMP_DIR = "archive-timestamps"  # tag folder of the archive timestamps
# The package's RFC 4998 evidence record (DER): its archive timestamps, each with its reduced hash tree, in chains.
EVIDENCE_RECORD = f"{TIMESTAMP_DIR}/evidence-record.ers"
TOKEN_SUFFIX = ".tsr"  # packages sealed before evidence records: one RFC 3161 token a file, chained (below)
DIGEST = "sha256"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(text: str, limit: int = 120) -> str:
    """A file name that means the same on every file system (no separators, no dot files)."""
    name = _UNSAFE.sub("_", text).strip("._") or "file"
    return name[:limit]


def package_name(code: str, version: int) -> str:
    """Each write is a new file: <code>.v0001.zip, .v0002.zip after a renewal, ... never overwritten."""
    return f"{safe_name(code)}.v{version:04d}.zip"


# What a package says it is, written as the zip's comment when it is stored: "<code>.v0001". Not evidence (the
# comment is outside the bag, as the file name is); the dossier code it names is checked against bag-info.txt,
# which the manifests and the archive timestamp cover.
_LABEL = re.compile(r"^(?P<code>.+?)(?:\.v(?P<version>\d{1,6}))?$")


def package_label(code: str, version: int) -> str:
    return f"{code}.v{version:04d}"


def parse_label(text: str) -> tuple[str, int | None]:
    """`CODE` or `CODE.vNNNN` (as `gateway archive verify --expect` takes it) -> (code, version or None)."""
    m = _LABEL.match(text.strip())
    if m is None:
        raise ValueError(f"not a dossier code or CODE.vNNNN: {text!r}")
    return m["code"], int(m["version"]) if m["version"] else None


def token_name(n: int) -> str:
    return f"{TIMESTAMP_DIR}/{n:04d}{TOKEN_SUFFIX}"


def chain_tokens(files: Mapping[str, bytes]) -> list[tuple[str, bytes]]:
    """A package's chained tokens (each file's path in the bag -> bytes), in chain order (token_name)."""
    prefix = f"{TIMESTAMP_DIR}/"
    return [(name, files[name]) for name in sorted(files)
            if name.startswith(prefix) and "/" not in name[len(prefix):] and name.endswith(TOKEN_SUFFIX)]


def chain_imprint(tagmanifest: bytes, earlier_tokens: list[bytes], algorithm: str = DIGEST) -> bytes:
    """What the next archive timestamp stamps: the tag manifest and every earlier token, in order, hashed with
    the algorithm the token names (ValueError for one hashlib does not know)."""
    digest = hashlib.new(algorithm, tagmanifest)
    for token in earlier_tokens:
        digest.update(token)
    return digest.digest()


def anchor_imprint(seq: int, head_hash: str, algorithm: str = DIGEST) -> bytes:
    """What an audit anchor stamps: the chain's head (position and hash)."""
    return hashlib.new(algorithm, f"audit-chain-head:{seq}:{head_hash}".encode()).digest()


def retain_until(final_at: datetime, years: int) -> datetime | None:
    """The end of the retention period, counted from the end of the dossier; None: permanent."""
    if years == 0:
        return None
    try:
        return final_at.replace(year=final_at.year + years)
    except ValueError:  # 29 February
        return final_at.replace(year=final_at.year + years, day=28)


def renewal_due(*, tsa_not_after: datetime | None, digest: str | None, now: datetime, renew_before: timedelta,
                weak_digests: list[str]) -> str | None:
    """Why the newest archive timestamp must be renewed now, or None."""
    if digest and digest.lower() in {d.lower() for d in weak_digests}:
        return f"the timestamp uses {digest}, configured as weak"
    if tsa_not_after is not None and now >= tsa_not_after - renew_before:
        return f"the TSA certificate ends on {tsa_not_after.date().isoformat()}"
    return None


def renewal_helps(*, old_not_after: datetime | None, old_digest: str | None, new_not_after: datetime | None,
                  new_digest: str, weak_digests: list[str]) -> bool:
    """Whether a new token would outlast the newest one: a later end of its certificates, or a digest no longer
    weak. A TSA whose own certificate ends as soon cannot help; writing its token would only add versions."""
    weak = {d.lower() for d in weak_digests}
    if old_digest and old_digest.lower() in weak and new_digest.lower() not in weak:
        return True
    if new_digest.lower() in weak:
        return False
    return new_not_after is not None and (old_not_after is None or new_not_after > old_not_after)


# Verdicts of `gateway archive verify`. A NOTE is information (what a renamed file holds), not a doubt.
PASSED, FAILED, WARNING, NOTE = "PASSED", "FAILED", "WARNING", "NOTE"


@dataclass(frozen=True)
class Item:
    """One verdict of a package's verification: a file, a timestamp, a PDF signature."""

    item: str
    verdict: str  # PASSED, FAILED, WARNING (not a failure: something an auditor should know), or NOTE
    detail: str


# The package's description (mô tả hồ sơ). Field names follow the input data of an archival file
# ("thông tin đầu vào của hồ sơ") of the Ministry of Home Affairs' circular 02/2019/TT-BNV; see
# docs/archive.md for each field's source and what is assumed.
@dataclass(frozen=True)
class Field:
    key: str
    label_vi: str
    source: str


METADATA_FIELDS: tuple[Field, ...] = (
    Field("ma_ho_so", "Mã hồ sơ", "TT 02/2019/TT-BNV, hồ sơ: mã hồ sơ (the dossier code of Decree 61/2018)"),
    Field("tieu_de_ho_so", "Tiêu đề hồ sơ", "TT 02/2019/TT-BNV: tiêu đề hồ sơ"),
    Field("ma_co_quan", "Mã cơ quan lưu trữ", "TT 02/2019/TT-BNV: mã phông/cơ quan"),
    Field("ten_co_quan", "Tên cơ quan lưu trữ (phông)", "TT 02/2019/TT-BNV: tên phông"),
    Field("ma_thu_tuc", "Mã thủ tục hành chính", "Decree 63/2010, 92/2017: the procedure's code in the national list"),
    Field("ten_thu_tuc", "Tên thủ tục hành chính", "Decree 63/2010: the procedure's name"),
    Field("muc_do", "Mức độ dịch vụ công", "Decree 42/2022: toàn trình / một phần"),
    Field("nguoi_nop", "Người nộp hồ sơ", "Decree 45/2020 art. 9: the applicant"),
    Field("thoi_gian_bat_dau", "Thời gian bắt đầu", "TT 02/2019/TT-BNV: thời gian bắt đầu (received)"),
    Field("thoi_gian_ket_thuc", "Thời gian kết thúc", "TT 02/2019/TT-BNV: thời gian kết thúc (final status)"),
    Field("trang_thai_cuoi", "Trạng thái kết thúc", "DVCQG status codes (codes.py): 3, 7, 8, 10"),
    Field("thoi_han_bao_quan", "Thời hạn bảo quản", "TT 02/2019/TT-BNV: thời hạn bảo quản; periods in config"),
    Field("bao_quan_den", "Bảo quản đến", "derived: end of the period, counted from the end of the dossier"),
    Field("che_do_su_dung", "Chế độ sử dụng", "TT 02/2019/TT-BNV: chế độ sử dụng (hạn chế: personal data)"),
    Field("ngon_ngu", "Ngôn ngữ", "TT 02/2019/TT-BNV: ngôn ngữ"),
    Field("tong_so_van_ban", "Tổng số văn bản trong hồ sơ", "TT 02/2019/TT-BNV: tổng số văn bản"),
    Field("ky_hieu_thong_tin", "Ký hiệu thông tin", "TT 02/2019/TT-BNV [assumed: the procedure code]"),
    Field("tu_khoa", "Từ khóa", "TT 02/2019/TT-BNV: từ khóa"),
    Field("tinh_trang_vat_ly", "Tình trạng vật lý", "TT 02/2019/TT-BNV: tình trạng vật lý (bản điện tử)"),
    Field("dinh_dang", "Định dạng", "TT 02/2019/TT-BNV: định dạng of each document (PDF/A not checked)"),
    Field("chu_giai", "Chú giải", "TT 02/2019/TT-BNV: chú giải"),
)


def _vn(value: datetime | None) -> str | None:
    return value.astimezone(VN_TZ).isoformat() if value else None


def metadata(dossier: dict[str, Any], *, final_at: datetime, retention_years: int, agency: str, agency_code: str,
             documents: list[dict[str, Any]], notes: list[str]) -> dict[str, Any]:
    """The package's metadata: one value per field of METADATA_FIELDS, plus each document's own record."""
    data = dossier["data"]
    until = retain_until(final_at, retention_years)
    values = {
        "ma_ho_so": dossier["code"],
        "tieu_de_ho_so": f"Hồ sơ {dossier['procedure_name']} của {dossier['applicant_name']}",
        "ma_co_quan": agency_code,
        "ten_co_quan": agency,
        "ma_thu_tuc": dossier["procedure_code"],
        "ten_thu_tuc": dossier["procedure_name"],
        "muc_do": dossier["level"],
        "nguoi_nop": dossier["applicant_name"],
        "thoi_gian_bat_dau": _vn(dossier["received_at"]),
        "thoi_gian_ket_thuc": _vn(final_at),
        "trang_thai_cuoi": f"{dossier['status']} - {STATUS_LABELS_VI[Status(dossier['status'])]}",
        "thoi_han_bao_quan": "Vĩnh viễn" if retention_years == 0 else f"{retention_years} năm",
        "bao_quan_den": _vn(until),
        "che_do_su_dung": "Hạn chế (dữ liệu cá nhân, Nghị định 13/2023/NĐ-CP)",
        "ngon_ngu": "Tiếng Việt",
        "tong_so_van_ban": len(documents),
        "ky_hieu_thong_tin": dossier["procedure_code"],
        "tu_khoa": [w for w in (dossier["procedure_name"], data.get("summary")) if w],
        "tinh_trang_vat_ly": "Bản điện tử",
        "dinh_dang": sorted({d["format"] for d in documents}),
        "chu_giai": "; ".join(notes) or None,
    }
    return {"schema": "vn-public-services-gateway/archive-metadata/1",
            "fields": [{"key": f.key, "label_vi": f.label_vi, "value": values[f.key], "source": f.source}
                       for f in METADATA_FIELDS],
            "documents": documents}


def bag_info(meta: dict[str, Any], *, sealed_at: datetime) -> dict[str, str]:
    """bag-info.txt: RFC 8493 2.2.2's reserved elements, then the main metadata fields by their Vietnamese keys."""
    fields = {f["key"]: f["value"] for f in meta["fields"]}
    return {
        "Source-Organization": str(fields["ten_co_quan"]),
        "Organization-Address": str(fields["ma_co_quan"]),
        "External-Identifier": str(fields["ma_ho_so"]),
        "External-Description": str(fields["tieu_de_ho_so"]),
        "Bagging-Date": sealed_at.astimezone(VN_TZ).date().isoformat(),
        "Ma-Ho-So": str(fields["ma_ho_so"]),
        "Ma-Thu-Tuc": str(fields["ma_thu_tuc"]),
        "Thoi-Han-Bao-Quan": str(fields["thoi_han_bao_quan"]),
        "Bao-Quan-Den": str(fields["bao_quan_den"] or "vinh vien"),
        "Thoi-Gian-Ket-Thuc": str(fields["thoi_gian_ket_thuc"]),
    }


def signature_text(name: str, report: dict[str, Any] | None, error: str | None = None) -> str:
    """A signature report an officer or an auditor can read, in Vietnamese then English."""
    lines = [f"Tệp / File: {name}"]
    if report is None:
        return "\n".join([*lines, f"Không kiểm tra được / Could not be verified: {error or 'unknown'}", ""])
    summary = report.get("summary") or {}
    lines += [f"Kết luận: {summary.get('vi', '')}", f"Verdict: {summary.get('en', '')}",
              f"Chỉ dấu / Indication: {report.get('indication')} {report.get('sub_indication') or ''}".rstrip()]
    for n, sig in enumerate(report.get("signatures") or [], start=1):
        signer = sig.get("signer") or {}
        lines += ["", f"Chữ ký {n} / Signature {n}: {sig.get('field_name')}",
                  f"  Người ký / Signer: {signer.get('name')} ({signer.get('organisation')})",
                  f"  Thời điểm ký / Signing time: {sig.get('signing_time')}",
                  f"  Dấu thời gian / Timestamp: {sig.get('timestamp_time')}",
                  f"  {(sig.get('summary') or {}).get('vi', '')}", f"  {(sig.get('summary') or {}).get('en', '')}"]
    return "\n".join(lines) + "\n"
