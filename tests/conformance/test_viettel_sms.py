"""Viettel brandname SMS against published material (tests/conformance/viettel_sms/README.md): the example
answers read through our zeep client, the example request taken by our mock, every published result
message given a verdict by our table, and the call our client makes shaped like the example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from flask.testing import FlaskClient
from lxml import etree

from gateway.adapters.base import PermanentError
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
