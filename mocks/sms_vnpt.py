"""Fake VNPT brandname SMS (JSON API `send_sms_list`, one receiver per call)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, request

from mocks.harness import (
    Fault,
    FaultInjector,
    MockConfig,
    RequestLog,
    add_config_endpoints,
    add_mock_endpoints,
    finish,
    replaced_outcome,
)
from mocks.sms_viettel import MASK, MAX_CONTENT, SentMessages, add_messages_endpoint, is_gsm7, masked, valid_receiver

SERVICE = "send_sms_list"
OK, AUTH, MOBILE, LABEL, TEMPLATE, CONTENT, REQID, DUPLICATE, BUSY = "0", "1", "2", "3", "4", "5", "6", "7", "99"
DESCRIPTIONS = {
    OK: "Thành công",
    AUTH: "Sai thông tin xác thực",
    MOBILE: "Số điện thoại không hợp lệ",
    LABEL: "Nhãn (brandname) chưa được đăng ký",
    TEMPLATE: "Mẫu tin nhắn chưa được đăng ký hoặc tham số không hợp lệ",
    CONTENT: "Nội dung tin nhắn quá dài hoặc sai kiểu mã hóa (DATACODING)",
    REQID: "Mã yêu cầu (REQID) không hợp lệ",
    DUPLICATE: "Mã yêu cầu (REQID) đã được gửi trước đó",
    BUSY: "Hệ thống đang bận, vui lòng thử lại sau",
}
BAD_REQUEST_DESC = "Yêu cầu không hợp lệ"


@dataclass
class VnptConfig(MockConfig):
    api_user: str = "gateway"
    api_pass: str = "vnpt-secret"
    label_id: str = "UBND-TINH"
    template_id: str = "GW-TB-01"
    contract_id: str = "HD-2026-01"
    agent_id: str = "AG01"


def reply(code: str, desc: str | None = None) -> dict[str, Any]:
    # An unknown code (error_code fault with a code of the tester's choosing) still gets a description.
    text = desc or DESCRIPTIONS.get(code, f"Lỗi giả lập (mã {code})")
    return {"RPLY": {"name": SERVICE, "ERROR": code, "ERROR_DESC": text}}


def _single_content(params: Any) -> str | None:
    """The CONTENT of PARAMS if it is exactly [{"NUM": "1", "CONTENT": non-empty string}], else None."""
    if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], dict):
        return None
    content = params[0].get("CONTENT")
    if params[0].get("NUM") != "1" or not isinstance(content, str) or not content:
        return None
    return content


def _masked_raw(data: bytes) -> str:
    # An unreadable body is logged as text, still without the password.
    text = data.decode("utf-8", "replace")[:2000]
    return re.sub(r'("APIPASS"\s*:\s*)("(?:[^"\\]|\\.)*"|[^,}\s]+)', rf'\g<1>"{MASK}"', text)


class VnptSms:
    """State of one VNPT mock: config and the messages accepted."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.log = RequestLog()
        self.faults = FaultInjector()
        self.messages = SentMessages("vnpt")
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.config = VnptConfig()
            self.messages.clear()

    def send(self, rq: dict[str, Any], fault: Fault | None) -> str:
        """Check and accept one send_sms_list; returns the ERROR code."""
        with self.lock:  # check-then-record must be atomic, or two retries could both be accepted
            cfg = self.config
            account = (rq.get("APIUSER"), rq.get("APIPASS"), rq.get("CONTRACTID"), rq.get("AGENTID"))
            if account != (cfg.api_user, cfg.api_pass, cfg.contract_id, cfg.agent_id):
                return AUTH
            if rq.get("LABELID") != cfg.label_id:
                return LABEL
            content = _single_content(rq.get("PARAMS"))
            if rq.get("TEMPLATEID") != cfg.template_id or content is None:
                return TEMPLATE
            receiver = rq.get("MOBILELIST")
            if not valid_receiver(receiver):
                return MOBILE
            coding = rq.get("DATACODING")
            if len(content) > MAX_CONTENT or coding not in ("0", "8") or (coding == "0" and not is_gsm7(content)):
                return CONTENT
            reqid = rq.get("REQID")
            if not isinstance(reqid, str) or not reqid:
                return REQID
            if self.messages.seen(reqid):
                return DUPLICATE
            # error_code comes after the checks: a bad or repeated request keeps its own answer.
            if fault is not None and fault.mode == "error_code":
                return fault.code or BUSY
            self.messages.add(reqid, receiver, cfg.label_id, content, unicode=coding == "8")
            return OK


def create_blueprint(state: VnptSms | None = None) -> Blueprint:
    """A fresh VNPT SMS mock (own state, log and faults) as a blueprint; mount it at /sms/vnpt."""
    sms = state or VnptSms()
    bp = Blueprint("sms_vnpt", __name__)
    add_mock_endpoints(bp, sms.log, sms.faults, sms.reset)
    add_config_endpoints(bp, sms)
    add_messages_endpoint(bp, sms)

    def record(body: Any, status: int, payload: Any, fault: Fault | None) -> None:
        sms.log.append(
            {
                "path": request.path,
                "service": SERVICE,
                "body": body,
                # For delay/drop this is what was computed; the client may never see it.
                "status": status,
                "response": payload,
                "fault": fault.mode if fault else None,
            }
        )

    @bp.post("/api/send_sms_list")
    def send_sms_list() -> Response:
        body = request.get_json(force=True, silent=True)
        rq = body.get("RQST") if isinstance(body, dict) else None
        if not isinstance(rq, dict):
            # Faults need a readable call, so a broken body never consumes one.
            status, payload = 400, reply(BUSY, BAD_REQUEST_DESC)
            record(_masked_raw(request.get_data()), status, payload, None)
            return finish(None, status, payload)
        fault = sms.faults.take(SERVICE)
        # error_code is decided inside send(), after the checks; here only http_500/timeout replace the call.
        replaced = replaced_outcome(fault, (200, reply(BUSY))) if fault and fault.mode != "error_code" else None
        status, payload = replaced or (200, reply(sms.send(rq, fault)))
        record(masked(rq, "APIPASS"), status, payload, fault)
        return finish(fault, status, payload)

    return bp
