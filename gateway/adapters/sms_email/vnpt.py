"""VNPT brandname SMS: JSON `send_sms_list`, with one registered free-text template."""

from __future__ import annotations

from gateway.adapters.base import PerThreadHttp, RetryableError, send
from gateway.config import VnptSmsSettings

from .base import Sms, SmsProvider, Verdict, raise_for

# RPLY.ERROR codes. Unknown: retryable (then a dead letter an operator sees, if it persists).
ERROR_VERDICTS: dict[str, Verdict] = {
    "0": Verdict.SENT,
    "1": Verdict.REFUSING,  # authentication failed
    "2": Verdict.REJECTED,  # invalid mobile number
    "3": Verdict.REFUSING,  # label (brandname) not registered
    "4": Verdict.REFUSING,  # template not registered, or its parameters do not fit
    "5": Verdict.REJECTED,  # content too long, or not in the coding given
    "6": Verdict.REFUSING,  # request id missing: our bug
    "7": Verdict.DUPLICATE,  # request id already sent
    "99": Verdict.RETRYABLE,  # system busy
}


class VnptSms(SmsProvider):
    name = "vnpt"

    def __init__(self, settings: VnptSmsSettings) -> None:
        self.settings = settings
        self.http = PerThreadHttp(abandon_after=settings.timeout_seconds)

    def send(self, sms: Sms) -> str:
        s = self.settings
        body = {"RQST": {
            "name": "send_sms_list", "REQID": sms.request_id, "LABELID": s.label_id, "CONTRACTTYPEID": "1",
            "CONTRACTID": s.contract_id, "TEMPLATEID": s.template_id, "PARAMS": [{"NUM": "1", "CONTENT": sms.text}],
            "SCHEDULETIME": "", "MOBILELIST": sms.to, "ISTELCOSUB": "0", "AGENTID": s.agent_id,
            "APIUSER": s.api_user, "APIPASS": s.api_pass, "USERNAME": s.api_user,
            "DATACODING": "8" if sms.unicode else "0",
        }}
        response = send(self.http.session(), "POST", s.url, "vnpt send_sms_list", timeout=s.timeout_seconds,
                        json=body)
        try:
            reply = response.json()["RPLY"]
            code, text = str(reply["ERROR"]), str(reply.get("ERROR_DESC", ""))
        except (ValueError, KeyError, TypeError) as exc:
            raise RetryableError(f"vnpt: unreadable answer: {response.text[:200]}") from exc
        raise_for(ERROR_VERDICTS.get(code, Verdict.RETRYABLE), self.name, code, text)
        return sms.request_id
