"""Fake Viettel brandname SMS (SOAP 1.1 "CcApi", operation wsCpMt)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from flask import Blueprint, Response, make_response, request, url_for
from lxml import etree

from mocks.harness import Fault, MockConfig, Outcome, masked, raw_body_masked
from mocks.sms_brandname import BrandnameSms, add_sms_mock_endpoints, is_gsm7, valid_receiver

__all__ = ["WSDL", "ViettelSms", "create_blueprint", "is_gsm7", "parse_call"]  # is_gsm7: tests import it from here

# Viettel limits Content in bytes ("MAXLENGTH_LIMIT_XXXX_BYTE"); the limit itself is not published: [assumed].
MAX_CONTENT_BYTES = 2000

# --- Viettel -----------------------------------------------------------------------

TNS = "http://impl.bulkSms.ws/"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SERVICE = "wsCpMt"
FIELDS = (
    "User", "Password", "CPCode", "RequestID", "UserID", "ReceiverID", "ServiceID", "CommandCode", "Content",
    "ContentType",
)  # fmt: skip
# Answers (wsCpMtResponse/return/message) as Viettel words them: tests/conformance/viettel_sms/ (README there says
# where each comes from). The few marked [assumed] have no public source; docs/partners/sms.md lists them.
SUCCESS = "Insert MT_QUEUE: OK"
USER_BLANK = "Authenticate: UserName: NULL_OR_BLANK"
CP_CODE_BLANK = "Authenticate: Cp_code: NULL_OR_BLANK"
CP_CODE_NOT_FOUND = "Authenticate: CP_CODE_NOT_FOUND"
UNAUTHORIZED = "Authenticate: WRONG_INFORMATION_AUTHENTICATE"
REQUEST_ID_BLANK = "Check RequestID: NULL_OR_BLANK"
REQUEST_ID_NOT_NUMBER = "Check RequestID: REQUEST_ID_NOT_NUMBER"
USER_ID_BLANK = "Check UserID: NULL_OR_BLANK"
RECEIVER_BLANK = "Check ReceiverID: NULL_OR_BLANK"
BAD_RECEIVER = "Check ReceiverID: FORMAT_ERROR"
USER_ID_NOT_RECEIVER = "UserID_NOT_EQUAL_ReceiverID"
BAD_BRANDNAME = "Check ServiceID: ALIAS_INVALID:TELCO=VIETTEL"  # the telco name is [assumed]; the table says XX
DUPLICATE = "Check ServiceID: DUPLICATE MESSAGE"
COMMAND_BLANK = "Check CommandCode: NULL_OR_BLANK"
BAD_COMMAND = "Check CommandCode: COMMAND_CODE_ERROR"
CONTENT_BLANK = "Check Content: NULL_OR_BLANK"
CONTENT_TOO_LONG = "Check Content: MAXLENGTH_LIMIT_{limit}_BYTE"
BAD_CONTENT_TYPE = "Check ContentType: CONTENT_TYPE_ERROR"  # [assumed]: not in the published table
NOT_GSM7 = "Check ContentType: CONTENT_NOT_GSM7"  # [assumed]: not in the published table
BUSY = "Check information error"  # "Lỗi chung hệ thống": the general system error
TIMEOUT_TEXT = "Injected fault: timeout"

# No DTDs, no entities, no network: the body comes from whoever calls the mock.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

_REQUEST_ELEMENTS = "".join(f'{" " * 10}<xs:element name="{n}" type="xs:string" minOccurs="0"/>\n' for n in FIELDS)
WSDL = f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:tns="{TNS}" xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{TNS}" name="CcApi">
  <types>
    <xs:schema targetNamespace="{TNS}" elementFormDefault="unqualified" version="1.0">
      <xs:element name="wsCpMt" type="tns:wsCpMt"/>
      <xs:element name="wsCpMtResponse" type="tns:wsCpMtResponse"/>
      <xs:complexType name="wsCpMt">
        <xs:sequence>
{_REQUEST_ELEMENTS}\
        </xs:sequence>
      </xs:complexType>
      <xs:complexType name="wsCpMtResponse">
        <xs:sequence>
          <xs:element name="return" type="tns:result"/>
        </xs:sequence>
      </xs:complexType>
      <xs:complexType name="result">
        <xs:sequence>
          <xs:element name="message" type="xs:string" minOccurs="0"/>
          <xs:element name="result" type="xs:int"/>
        </xs:sequence>
      </xs:complexType>
    </xs:schema>
  </types>
  <message name="wsCpMt"><part name="parameters" element="tns:wsCpMt"/></message>
  <message name="wsCpMtResponse"><part name="parameters" element="tns:wsCpMtResponse"/></message>
  <portType name="CcApi">
    <operation name="wsCpMt">
      <input message="tns:wsCpMt"/>
      <output message="tns:wsCpMtResponse"/>
    </operation>
  </portType>
  <binding name="CcApiPortBinding" type="tns:CcApi">
    <soap:binding transport="http://schemas.xmlsoap.org/soap/http" style="document"/>
    <operation name="wsCpMt">
      <soap:operation soapAction=""/>
      <input><soap:body use="literal"/></input>
      <output><soap:body use="literal"/></output>
    </operation>
  </binding>
  <service name="CcApi">
    <port name="CcApiPort" binding="tns:CcApiPortBinding">
      <soap:address location=__LOCATION__/>
    </port>
  </service>
</definitions>
"""


@dataclass
class ViettelConfig(MockConfig):
    user: str = "gateway"
    password: str = "viettel-secret"
    cp_code: str = "GATEWAY"
    brandname: str = "UBND-TINH"


class SoapClientError(Exception):
    """A request that is not a wsCpMt call, answered with a SOAP Fault "Client"."""


def parse_call(data: bytes) -> dict[str, str | None]:
    """The wsCpMt fields of a SOAP 1.1 request (None = element absent); raises SoapClientError."""
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise SoapClientError(f"Nội dung yêu cầu không phải XML hợp lệ: {exc}") from None
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SoapClientError(f"Yêu cầu không phải SOAP 1.1 Envelope ({{{SOAP_ENV}}}Envelope)")
    call = root.find(f"{{{SOAP_ENV}}}Body/{{{TNS}}}wsCpMt")
    if call is None:
        raise SoapClientError(f"Không tìm thấy phần tử {{{TNS}}}wsCpMt trong SOAP Body")
    fields: dict[str, str | None] = {}
    for name in FIELDS:
        element = call.find(name)  # unqualified children, as elementFormDefault="unqualified" says
        fields[name] = None if element is None else (element.text or "")
    return fields


def envelope(body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><S:Envelope xmlns:S="{SOAP_ENV}"><S:Body>{body}</S:Body></S:Envelope>'
    )


def result_envelope(result: int, message: str) -> str:
    return envelope(
        f'<ns2:wsCpMtResponse xmlns:ns2="{TNS}"><return><message>{escape(message)}</message>'
        f"<result>{result}</result></return></ns2:wsCpMtResponse>"
    )


def fault_envelope(code: str, text: str) -> str:
    return envelope(f"<S:Fault><faultcode>S:{code}</faultcode><faultstring>{escape(text)}</faultstring></S:Fault>")


def _xml(status: int, text: str) -> Response:
    return make_response(text.encode(), status, {"Content-Type": "text/xml; charset=utf-8"})


def _soap(status: int, payload: dict[str, Any]) -> Response:
    """The envelope for what the mock logs as the response: a SOAP Fault or a wsCpMt result."""
    if "faultcode" in payload:
        return _xml(status, fault_envelope(payload["faultcode"], payload["faultstring"]))
    return _xml(status, result_envelope(payload["result"], payload["message"]))


def _server_fault(fault: Fault) -> Outcome:
    text = "Injected fault: HTTP 500" if fault.mode == "http_500" else TIMEOUT_TEXT
    return (500 if fault.mode == "http_500" else 504), {"faultcode": "Server", "faultstring": text}


_PASSWORD = re.compile(r"(<(?:[\w.-]+:)?Password\b[^>]*>)[^<]*")


class ViettelSms(BrandnameSms[ViettelConfig]):
    """State of one Viettel mock: config and the messages accepted."""

    config_class = ViettelConfig
    provider = "viettel"

    def send(self, call: dict[str, str | None], fault: Fault | None) -> tuple[int, str]:
        """Check and accept one wsCpMt; returns (result, message)."""
        f = {k: v or "" for k, v in call.items()}
        with self.lock:  # check-then-record must be atomic, or two retries could both be accepted
            answer = self._refusal(f)
            if answer is not None:
                return 0, answer
            # Viettel does not dedupe by RequestID (public clients send "1" every time); the same message
            # to the same number is refused as a repeat. Which messages count as repeats is [assumed].
            if self.messages.seen_message(f["ReceiverID"], f["ServiceID"], f["Content"]):
                return 0, DUPLICATE
            # error_code comes after the checks: a bad or repeated request keeps its own answer.
            if fault is not None and fault.mode == "error_code":
                return 0, fault.code or BUSY
            unicode = f["ContentType"] == "1"
            self.messages.add(f["RequestID"], f["ReceiverID"], f["ServiceID"], f["Content"], unicode)
            return 1, SUCCESS

    def _refusal(self, f: dict[str, str]) -> str | None:
        """The message refusing this call, in the order Viettel's table lists its checks; None if it passes."""
        cfg = self.config
        checks = (
            (not f["CPCode"], CP_CODE_BLANK),
            (not f["User"], USER_BLANK),
            (f["CPCode"] != cfg.cp_code, CP_CODE_NOT_FOUND),
            ((f["User"], f["Password"]) != (cfg.user, cfg.password), UNAUTHORIZED),
            (not f["RequestID"], REQUEST_ID_BLANK),
            (not f["RequestID"].isascii() or not f["RequestID"].isdigit(), REQUEST_ID_NOT_NUMBER),
            (not f["UserID"], USER_ID_BLANK),
            (not f["ReceiverID"], RECEIVER_BLANK),
            (not valid_receiver(f["ReceiverID"]), BAD_RECEIVER),
            (f["UserID"] != f["ReceiverID"], USER_ID_NOT_RECEIVER),
            (f["ServiceID"] != cfg.brandname, BAD_BRANDNAME),
            (not f["CommandCode"], COMMAND_BLANK),
            (f["CommandCode"] != "bulksms", BAD_COMMAND),
            (not f["Content"], CONTENT_BLANK),
            (len(f["Content"].encode()) > MAX_CONTENT_BYTES, CONTENT_TOO_LONG.format(limit=MAX_CONTENT_BYTES)),
            (f["ContentType"] not in ("0", "1"), BAD_CONTENT_TYPE),
            (f["ContentType"] == "0" and not is_gsm7(f["Content"]), NOT_GSM7),
        )
        return next((message for failed, message in checks if failed), None)


def create_blueprint(state: ViettelSms | None = None) -> Blueprint:
    """A fresh Viettel SMS mock (own state, log and faults) as a blueprint; mount it at /sms/viettel."""
    sms = state or ViettelSms()
    bp = Blueprint("sms_viettel", __name__)
    add_sms_mock_endpoints(bp, sms)

    def wsdl() -> Response:
        # The address follows the host the client used, so the WSDL works behind any host:port.
        location = url_for(".bulkapi", _external=True)
        return _xml(200, WSDL.replace("__LOCATION__", quoteattr(location)))

    @bp.get("/bulkapi")
    def bulkapi_get() -> Response:
        if any(key.lower() == "wsdl" for key in request.args):
            return wsdl()
        text = f"Dịch vụ CcApi (SOAP 1.1). WSDL: {url_for('.bulkapi', _external=True)}?wsdl"
        return make_response(text, 200, {"Content-Type": "text/plain; charset=utf-8"})

    @bp.get("/bulkapi.wsdl")
    def bulkapi_wsdl() -> Response:
        return wsdl()

    @bp.post("/bulkapi")
    def bulkapi() -> Response:
        try:
            call = parse_call(request.get_data())
        except SoapClientError as exc:
            refusal = {"faultcode": "Client", "faultstring": str(exc)}
            return sms.unreadable(SERVICE, 500, refusal, logged=raw_body_masked(_PASSWORD), render=_soap)

        def run(fault: Fault | None) -> Outcome:
            result, message = sms.send(call, fault)
            return 200, {"result": result, "message": message}

        return sms.serve_after_checks(SERVICE, masked(call, "Password"), run, replace=_server_fault, render=_soap)

    return bp
