"""Drift with the national portal: what the gateway sent of a dossier, against what the portal holds of it.

Pure rules, no I/O. `compare` names the kind of drift and every difference, side by side:

- `missing`: the portal holds no record of the dossier;
- `foreign`: it holds one synced by another unit, under the same code;
- `ahead`: it holds a status or a progress record the province never sent (an operator's change on the portal);
- `behind`: it lacks progress records the gateway sent, or shows an older status the gateway sent before;
- `fields`: the record's status, dates, fees, result or applicant identity differ from what was sent.

The gateway repairs only what it owns (missing, behind, fields: it sends its records again); ahead and foreign
are never overwritten, they go to an operator. An operator may accept the portal's version of a difference:
its signature is then left out of later comparisons.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    MISSING = "missing"
    BEHIND = "behind"
    FIELDS = "fields"
    AHEAD = "ahead"
    FOREIGN = "foreign"


OWNED = frozenset({Kind.MISSING, Kind.BEHIND, Kind.FIELDS})  # the gateway sends its records again
KIND_LABELS_VI: dict[Kind, str] = {
    Kind.MISSING: "Cổng không có hồ sơ", Kind.BEHIND: "Cổng thiếu tiến độ", Kind.FIELDS: "Cổng ghi khác",
    Kind.AHEAD: "Cổng có thay đổi tỉnh không gửi", Kind.FOREIGN: "Hồ sơ cùng mã của đơn vị khác",
}


class State(StrEnum):
    """A finding's life: repairing (its repair is queued) -> repaired; operator (waiting for one) -> accepted
    (the portal's version taken) or cleared (the portal came back to what was sent by itself)."""

    REPAIRING = "repairing"
    REPAIRED = "repaired"
    OPERATOR = "operator"
    ACCEPTED = "accepted"
    CLEARED = "cleared"


OPEN = frozenset({State.REPAIRING, State.OPERATOR})
STATE_LABELS_VI: dict[State, str] = {
    State.REPAIRING: "Đang sửa", State.REPAIRED: "Đã sửa", State.OPERATOR: "Chờ người vận hành",
    State.ACCEPTED: "Đã chấp nhận bản của Cổng", State.CLEARED: "Đã tự khớp lại",
}

SHOWN = 200  # characters of a value shown in a difference


def _plain(value: Any) -> str:
    """A value as text to compare: numbers and digit strings alike, anything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _identity(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return "; ".join(sorted(f"{_plain(v.get('LoaiDinhDanh'))}:{_plain(v.get('SoDinhDanh'))}" for v in value))
    return _plain(value)


def _fees(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return "; ".join(sorted(f"{_plain(v.get('MaPhiLePhi'))} {_plain(v.get('Gia'))} "
                                f"thu {_plain(v.get('HinhThucThu'))}" for v in value))
    return _plain(value)


def _results(value: Any) -> str:
    return "" if value in (None, []) else _plain(value)


# The record's fields compared, each as its normaliser reads it: dates, applicant identity, fees (and whether they
# were paid online, HinhThucThu), the result's documents. The status is judged apart (older, or never sent).
COMPARED: dict[str, Callable[[Any], str]] = {
    "MaTTHC": _plain, "NgayTiepNhan": _plain, "NgayHenTra": _plain, "NgayTra": _plain,
    "ChuHoSo": _plain, "LoaiDoiTuong": _plain, "DinhDanhCHS": _identity,
    "DanhSachLePhi": _fees, "DanhSachGiayToKetQua": _results,
}
# A progress record is the same record when these are (the portal keeps a repeated identical record once).
PROGRESS_FIELDS = ("NguoiXuLy", "ChucDanh", "ThoiDiemXuLy", "PhongBanXuLy", "NoiDungXuLy", "TrangThai",
                   "NgayBatDau", "NgayKetThucTheoQuyDinh")
STATUS, PROGRESS, UNIT, RECORD = "TrangThaiHoSo", "QuaTrinhXuLy", "MaDonVi", "record"


def progress_key(record: dict[str, Any]) -> tuple[str, ...]:
    return tuple(_plain(record.get(name)) for name in PROGRESS_FIELDS)


def _describe_progress(record: dict[str, Any]) -> str:
    return (f"{_plain(record.get('ThoiDiemXuLy'))} trạng thái {_plain(record.get('TrangThai'))}: "
            f"{_plain(record.get('NguoiXuLy'))} {_plain(record.get('NoiDungXuLy'))}").strip()[:SHOWN]


@dataclass(frozen=True)
class Sent:
    """What the gateway delivered of a dossier: its newest record (with the newest status sent) and every
    progress record, each once, in the order sent."""

    record: dict[str, Any]
    progress: list[dict[str, Any]]
    statuses: frozenset[int]  # every status it ever sent of the dossier


@dataclass(frozen=True)
class Difference:
    field: str
    gateway: str
    portal: str
    kind: Kind

    @property
    def signature(self) -> str:
        """What an operator accepts: this field showing this value at the portal."""
        return f"{self.field}={hashlib.sha256(self.portal.encode()).hexdigest()[:16]}"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "gateway": self.gateway[:SHOWN], "portal": self.portal[:SHOWN],
                "kind": self.kind.value, "signature": self.signature}


@dataclass(frozen=True)
class Drift:
    kind: Kind | None  # None: the portal holds what was sent
    differences: list[Difference] = field(default_factory=list)
    missing_progress: list[int] = field(default_factory=list)  # positions in Sent.progress the portal lacks

    @property
    def owned(self) -> bool:
        return self.kind in OWNED


# When a dossier differs in several ways, the kind is the first that applies: what is not ours is never
# overwritten, so it decides before anything the gateway could repair (a code held only by another unit's record
# is foreign, not missing: sending ours would write over theirs).
PRECEDENCE = (Kind.FOREIGN, Kind.AHEAD, Kind.MISSING, Kind.BEHIND, Kind.FIELDS)


def _status(value: Any) -> int | None:
    text = _plain(value)
    return int(text) if text.isdigit() else None


def compare(sent: Sent, records: list[dict[str, Any]], *, unit: str,
            accepted: Iterable[str] = ()) -> Drift:
    """The drift of one dossier: `records` are the portal's records of its code (TraCuuHoSo), `unit` the
    gateway's unit code, `accepted` the signatures of differences an operator took as the portal's version."""
    taken = frozenset(accepted)
    code = _plain(sent.record.get("MaHoSo"))
    found: list[Difference] = []
    missing_progress: list[int] = []
    foreign = [r for r in records if _plain(r.get(UNIT)) not in ("", unit)]
    ours = [r for r in records if r not in foreign]
    if not ours:
        found.append(Difference(RECORD, code, "", Kind.MISSING))
    for record in foreign:
        found.append(Difference(UNIT, unit, _plain(record.get(UNIT)), Kind.FOREIGN))
    if ours:
        portal = ours[0]
        expected = _status(sent.record.get(STATUS))
        held = _status(portal.get(STATUS))
        if held != expected:
            # A status the gateway never sent is someone else's; an older one it sent, the portal is behind;
            # anything unreadable is a field to send again.
            kind = Kind.FIELDS if held is None else Kind.BEHIND if held in sent.statuses else Kind.AHEAD
            found.append(Difference(STATUS, _plain(expected), _plain(portal.get(STATUS)), kind))
        for name, normal in COMPARED.items():
            mine, theirs = normal(sent.record.get(name)), normal(portal.get(name))
            if mine != theirs:
                found.append(Difference(name, mine, theirs, Kind.FIELDS))
        progress = portal.get(PROGRESS)
        if isinstance(progress, list):  # a portal that does not list them: the status alone is judged
            keys = {progress_key(p) for p in progress}
            missing_progress = [i for i, p in enumerate(sent.progress) if progress_key(p) not in keys]
            for i in missing_progress:
                found.append(Difference(PROGRESS, _describe_progress(sent.progress[i]), "", Kind.BEHIND))
            known = {progress_key(p) for p in sent.progress}
            for p in progress:
                if progress_key(p) not in known:
                    found.append(Difference(PROGRESS, "", _describe_progress(p), Kind.AHEAD))
    left = [d for d in found if d.signature not in taken]
    kinds = {d.kind for d in left}
    kind = next((k for k in PRECEDENCE if k in kinds), None)
    return Drift(kind, left, missing_progress if kind is not None else [])
