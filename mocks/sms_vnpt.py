"""Fake VNPT brandname SMS (JSON API `send_sms_list`, one receiver per call)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, request

from mocks.harness import MASK, Fault, MockConfig, Outcome, masked, raw_body_masked
from mocks.sms_brandname import MAX_CONTENT, BrandnameSms, add_sms_mock_endpoints, is_gsm7, valid_receiver

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


_APIPASS = re.compile(r'("APIPASS"\s*:\s*)("(?:[^"\\]|\\.)*"|[^,}\s]+)')


class VnptSms(BrandnameSms[VnptConfig]):
    """State of one VNPT mock: config and the messages accepted."""

    config_class = VnptConfig
    provider = "vnpt"

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
    add_sms_mock_endpoints(bp, sms)

    @bp.post("/api/send_sms_list")
    def send_sms_list() -> Response:
        body = request.get_json(force=True, silent=True)
        rq = body.get("RQST") if isinstance(body, dict) else None
        if not isinstance(rq, dict):
            logged = raw_body_masked(_APIPASS, f'"{MASK}"')
            return sms.unreadable(SERVICE, 400, reply(BUSY, BAD_REQUEST_DESC), logged=logged)

        def run(fault: Fault | None) -> Outcome:
            return 200, reply(sms.send(rq, fault))

        return sms.serve_after_checks(SERVICE, masked(rq, "APIPASS"), run)

    return bp
