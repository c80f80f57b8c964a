"""Vietnamese public-service codes and their meanings, as tables (see shared/domain-vn.md)."""

from __future__ import annotations

import re
from enum import IntEnum

# Unit code per QCVN 102:2016 (e.g. 000.00.17.H31) or a short form (H56.14); then -YYMMDD-NNNN.
UNIT_CODE = r"(?:\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}|[A-Z]\d{2}(?:\.\d{1,3}){1,3})"
DOSSIER_CODE_RE = re.compile(rf"^{UNIT_CODE}-\d{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])-\d{{4}}$")
PROCEDURE_CODE_RE = re.compile(r"^\d\.\d{6}(?:\.\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2})?$")
ID_NUMBER_RE = re.compile(r"^(?:\d{12}|\d{9})$")
# Vietnamese mobile numbers: 0 or 84 then 9 digits starting 3, 5, 7, 8 or 9.
PHONE_RE = re.compile(r"^(?:0|\+?84)([35789]\d{8})$")


class Status(IntEnum):
    NEW = 1
    ACCEPTED = 2
    REFUSED = 3
    PROCESSING = 4
    SUPPLEMENT_REQUESTED = 5
    PAYMENT_REQUIRED = 6
    WITHDRAWN = 7
    STOPPED = 8
    RESULT_READY = 9
    RESULT_RETURNED = 10


STATUS_LABELS_VI: dict[Status, str] = {
    Status.NEW: "Mới đăng ký",
    Status.ACCEPTED: "Được tiếp nhận",
    Status.REFUSED: "Không được tiếp nhận",
    Status.PROCESSING: "Đang xử lý",
    Status.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung giấy tờ",
    Status.PAYMENT_REQUIRED: "Yêu cầu thực hiện nghĩa vụ tài chính",
    Status.WITHDRAWN: "Công dân yêu cầu rút hồ sơ",
    Status.STOPPED: "Dừng xử lý",
    Status.RESULT_READY: "Đã xử lý xong",
    Status.RESULT_RETURNED: "Đã trả kết quả",
}

# Decree 42/2022 vocabulary and the older Decree 43/2011 levels both map to one stored value.
LEVELS: dict[str | int, str] = {
    3: "mot_phan",
    4: "toan_trinh",
    "3": "mot_phan",
    "4": "toan_trinh",
    "mot_phan": "mot_phan",
    "toan_trinh": "toan_trinh",
}
LEVEL_NUMBER: dict[str, int] = {"mot_phan": 3, "toan_trinh": 4}

APPLICANT_TYPES: dict[int, str] = {1: "citizen", 2: "enterprise", 3: "state_agency", 4: "other_organisation"}
CHANNELS: dict[int, str] = {1: "counter", 2: "online", 3: "public_post"}
DELIVERY_METHODS = ("counter", "post", "online")


def normalise_phone(raw: str) -> str:
    """0xxxxxxxxx / +84xxxxxxxxx / 84xxxxxxxxx -> 84xxxxxxxxx, as SMS gateways want it."""
    match = PHONE_RE.match(raw.replace(" ", "").replace(".", ""))
    if not match:
        raise ValueError(f"not a Vietnamese mobile number: {raw!r}")
    return "84" + match.group(1)
