"""Viettel brandname SMS against published material (tests/conformance/viettel_sms/README.md): the example
answers read through our client, the example request taken by our mock, every published result
message given a verdict by our table, and the call our client makes shaped like the example. zeep is the
referee of the envelope our client fills in (byte for byte) and of how it reads answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
import zeep
import zeep.wsdl.utils
from flask.testing import FlaskClient
from lxml import etree

from gateway.adapters.base import PermanentError, RetryableError
from gateway.adapters.sms_email.base import Sms, Verdict
from gateway.adapters.sms_email.viettel import MESSAGE_VERDICTS, ViettelSms, numeric_request_id, verdict_of
from gateway.config import ViettelSmsSettings
from mocks import sms_viettel
from mocks.server import create_app

HERE = Path(__file__).parent / "viettel_sms"
WSDL_URL = "http://sms.example/bulkapi?wsdl"
ENDPOINT = "http://sms.example/bulkapi"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "http://impl.bulkSms.ws/"
SMS = Sms("TB0123456789ABCDEF", "84912345678", "Ho so cua ban da duoc tiep nhan", unicode=False)


def fixture(name: str) -> bytes:
    return (HERE / name).read_bytes()


def published_messages() -> list[str]:
    return [row["message"] for row in json.loads(fixture("result_messages.json"))]


@pytest.fixture
def provider() -> ViettelSms:
    return ViettelSms(ViettelSmsSettings(wsdl_url=WSDL_URL, password="viettel-secret"))


@pytest.fixture
def mock_client() -> FlaskClient:
    return create_app().test_client()


def serve(rsps: responses.RequestsMock, answer: bytes) -> None:
    wsdl = sms_viettel.WSDL.replace("__LOCATION__", f'"{ENDPOINT}"')
    rsps.get(WSDL_URL, body=wsdl, content_type="text/xml")
    rsps.post(ENDPOINT, body=answer, content_type="text/xml; charset=utf-8")


def test_the_published_success_answer_reads_as_sent(provider: ViettelSms) -> None:
    with responses.RequestsMock() as rsps:
        serve(rsps, fixture("response_success.xml"))
        assert provider.send(SMS) == numeric_request_id(SMS.request_id)


def test_the_published_template_error_is_this_providers_refusal(provider: ViettelSms) -> None:
    with responses.RequestsMock() as rsps:
        serve(rsps, fixture("response_template_error.xml"))
        with pytest.raises(PermanentError, match="CONTENT_NOT_MATCH_TEMPLATE"):
            provider.send(SMS)
    assert verdict_of(0, "Check template: CONTENT_NOT_MATCH_TEMPLATE") is Verdict.REFUSING


@pytest.mark.parametrize("message", published_messages())
def test_every_published_result_message_has_a_deliberate_verdict(message: str) -> None:
    # Not one falls through to the "unknown: retryable" default.
    assert any(message.startswith(prefix) for prefix, _ in MESSAGE_VERDICTS), message


def test_published_verdicts_by_meaning() -> None:
    assert verdict_of(0, "Check ReceiverID: FORMAT_ERROR") is Verdict.REJECTED
    assert verdict_of(0, "Check Content: MSG_ERROR_CONTAIN_BLACKLIST") is Verdict.REJECTED
    assert verdict_of(0, "Authenticate: IP_INVALID (YOUR IP: 1.2.3.4)") is Verdict.REFUSING
    assert verdict_of(0, "Check ServiceID: ALIAS_INVALID:TELCO=XX") is Verdict.REFUSING
    assert verdict_of(0, "Check ServiceID: DUPLICATE MESSAGE") is Verdict.DUPLICATE
    assert verdict_of(0, "Check information error") is Verdict.RETRYABLE


def test_the_published_request_is_accepted_by_our_mock(mock_client: FlaskClient) -> None:
    resp = mock_client.post("/sms/viettel/bulkapi", data=fixture("request_wscpmt.xml"), content_type="text/xml")
    ret = etree.fromstring(resp.data).find(f"{{{SOAP}}}Body/{{{TNS}}}wsCpMtResponse/return")
    assert (ret.findtext("result"), ret.findtext("message")) == ("1", "Insert MT_QUEUE: OK")


def test_our_call_has_the_published_request_shape_and_our_mock_takes_it(
    provider: ViettelSms, mock_client: FlaskClient
) -> None:
    with responses.RequestsMock() as rsps:
        serve(rsps, fixture("response_success.xml"))
        provider.send(SMS)
        sent = rsps.calls[-1].request.body
    ours = etree.fromstring(sent).find(f"{{{SOAP}}}Body/{{{TNS}}}wsCpMt")
    theirs = etree.fromstring(fixture("request_wscpmt.xml")).find(f"{{{SOAP}}}Body/{{{TNS}}}wsCpMt")
    assert [child.tag for child in ours] == [child.tag for child in theirs]  # unqualified, same order
    assert ours.findtext("RequestID").isdigit() and ours.findtext("UserID") == ours.findtext("ReceiverID")
    resp = mock_client.post("/sms/viettel/bulkapi", data=sent, content_type="text/xml")
    assert b"Insert MT_QUEUE: OK" in resp.data


# --- the hot path's envelope against zeep's (zeep is the referee) -------------------------------------------

def zeep_client() -> zeep.Client:
    with responses.RequestsMock() as rsps:
        rsps.get(WSDL_URL, body=sms_viettel.WSDL.replace("__LOCATION__", f'"{ENDPOINT}"'), content_type="text/xml")
        return zeep.Client(WSDL_URL)


TEXTS = [
    "Ho so cua ban da duoc tiep nhan",
    "Hồ sơ 000.00.01.H31-240725-0001 của Ông/Bà Nguyễn Thị Hương đã được tiếp nhận; hẹn trả ngày 08/12/2026.",
    "a < b && c > d; <![CDATA[x]]> ]]> \"quoted\" 'single' &amp; &#13; &lt;",  # markup, and escapes written out
    "line one\r\nline two\rthree\ttab\n",  # CR is a character reference in lxml's output
    "",  # a blank text: an empty element, not a missing one
    "emoji 😀 and 𝔘 beyond the BMP, ￼ and \x7f\x80\x9f",
    "".join(chr(c) for c in range(0x20, 0x3000)),  # every character up to CJK, a few thousand at once
]


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
@pytest.mark.parametrize("unicode", [False, True])
def test_the_prebuilt_envelope_is_zeeps_byte_for_byte(text: str, unicode: bool) -> None:
    client = zeep_client()
    referee = ViettelSms(ViettelSmsSettings(wsdl_url=WSDL_URL, password="p&ss<word>\"'", brandname="UBND-TỈNH"))
    with responses.RequestsMock() as rsps:
        serve(rsps, fixture("response_success.xml"))
        referee.send(Sms("TB00FF", "84912345678", text, unicode=unicode))
        sent = rsps.calls[-1].request
    s = referee.settings
    theirs = zeep.wsdl.utils.etree_to_string(client.create_message(
        client.service, "wsCpMt", User=s.user, Password=s.password, CPCode=s.cp_code,
        RequestID=numeric_request_id("TB00FF"), UserID="84912345678", ReceiverID="84912345678",
        ServiceID=s.brandname, CommandCode="bulksms", Content=text, ContentType="1" if unicode else "0"))
    assert sent.body == theirs
    assert (sent.url, sent.headers["SOAPAction"], sent.headers["Content-Type"]) == (
        ENDPOINT, '""', "text/xml; charset=utf-8")  # where and how zeep's transport posts it


@pytest.mark.parametrize("bad", ["nul \x00", "bell \x07", "\ufffe", "lone \ud800 surrogate"])
def test_a_text_xml_cannot_hold_fails_as_with_zeep(provider: ViettelSms, bad: str) -> None:
    client = zeep_client()
    with pytest.raises(ValueError):
        client.create_message(client.service, "wsCpMt", Content=bad)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        serve(rsps, fixture("response_success.xml"))
        with pytest.raises(ValueError):
            provider.send(Sms("TB1", "84912345678", bad, unicode=True))
        assert [c.request.method for c in rsps.calls] == ["GET"]  # nothing posted


def zeeps_reading(answer: bytes, status: int = 200) -> tuple[int, str] | str:
    """What zeep makes of an answer: (result, message), or the kind of error it raises."""
    client = zeep_client()
    with responses.RequestsMock() as rsps:
        rsps.post(ENDPOINT, body=answer, status=status, content_type="text/xml; charset=utf-8")
        try:
            reply = client.service.wsCpMt(User="u")
        except zeep.exceptions.Error as exc:
            return type(exc).__name__
    return int(reply.result or 0), reply.message or ""


FAULT = (b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault><faultcode>S:Server'
         b'</faultcode><faultstring>java.lang.NullPointerException</faultstring></S:Fault></S:Body></S:Envelope>')
NO_MESSAGE = (b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><ns2:wsCpMtResponse '
              b'xmlns:ns2="http://impl.bulkSms.ws/"><return><result>0</result></return></ns2:wsCpMtResponse>'
              b'</S:Body></S:Envelope>')
VIETNAMESE = fixture("response_template_error.xml").replace(b"Check template: CONTENT_NOT_MATCH_TEMPLATE",
                                                          "Lỗi &amp; &lt;mẫu&gt;".encode())


@pytest.mark.parametrize(("answer", "status"), [
    (fixture("response_success.xml"), 200), (fixture("response_template_error.xml"), 200), (NO_MESSAGE, 200),
    (VIETNAMESE, 200), (FAULT, 500), (FAULT, 200), (b"<html>Bad gateway</html>", 502), (b"", 503),
    (b"not xml at all", 200),
], ids=["success", "template", "no-message", "vietnamese", "fault-500", "fault-200", "html-502", "empty", "garbage"])
def test_answers_read_as_zeep_reads_them(provider: ViettelSms, answer: bytes, status: int) -> None:
    expected = zeeps_reading(answer, status)
    with responses.RequestsMock() as rsps:
        rsps.get(WSDL_URL, body=sms_viettel.WSDL.replace("__LOCATION__", f'"{ENDPOINT}"'), content_type="text/xml")
        form = provider.envelope_form()
    try:
        ours: tuple[int, str] | str = form.read_answer(status, answer)
    except RetryableError:
        ours = "retryable"
    if isinstance(expected, str):  # every error zeep raises is retryable in the adapter
        assert ours == "retryable", expected
    else:
        assert ours == expected
