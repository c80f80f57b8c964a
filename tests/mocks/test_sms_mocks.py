"""Tests for the SMS mocks: Viettel brandname (SOAP 1.1, driven through zeep) and VNPT brandname (JSON)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

import pytest
import requests
import zeep
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from werkzeug.serving import make_server

from mocks import sms_viettel, sms_vnpt
from mocks.harness import ConnectionDropped
from mocks.sms_viettel import is_gsm7

V, N = "/sms/viettel", "/sms/vnpt"
TEXT = "Hồ sơ 000.00.17.H31-240725-0001 đã được tiếp nhận"
PLAIN = "Ho so 000.00.17.H31 da duoc tiep nhan. Phi: 50€ [x] {y} ~ ^ | \\ é"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "http://impl.bulkSms.ws/"
OK = "Insert MT_QUEUE: OK"


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # as in mocks.server
    app.register_blueprint(sms_viettel.create_blueprint(), url_prefix=V)
    app.register_blueprint(sms_vnpt.create_blueprint(), url_prefix=N)
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def base_url(app: Flask) -> Iterator[str]:
    """The same app on a real werkzeug server on an ephemeral port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=3)


@pytest.fixture
def soap(base_url: str) -> zeep.Client:
    return zeep.Client(f"{base_url}{V}/bulkapi?wsdl")


def mt(**over: str) -> dict[str, str]:
    """wsCpMt arguments that the mock accepts, with overrides."""
    return {
        "User": "gateway", "Password": "viettel-secret", "CPCode": "GATEWAY", "RequestID": "1001",
        "UserID": "84912345678", "ReceiverID": "84912345678", "ServiceID": "UBND-TINH", "CommandCode": "bulksms",
        "Content": TEXT, "ContentType": "1",
    } | over  # fmt: skip


def envelope(fields: dict[str, str]) -> bytes:
    inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
    call = f'<t:wsCpMt xmlns:t="{TNS}">{inner}</t:wsCpMt>'
    return f'<S:Envelope xmlns:S="{SOAP}"><S:Body>{call}</S:Body></S:Envelope>'.encode()


def viettel_post(client: FlaskClient, body: bytes) -> Any:
    return client.post(f"{V}/bulkapi", data=body, content_type="text/xml; charset=utf-8")


def viettel(client: FlaskClient, **over: str) -> tuple[int, str]:
    """Send one wsCpMt over the test client; returns (result, message)."""
    resp = viettel_post(client, envelope(mt(**over)))
    assert resp.status_code == 200 and resp.content_type == "text/xml; charset=utf-8"
    ret = etree.fromstring(resp.data).find(f"{{{SOAP}}}Body/{{{TNS}}}wsCpMtResponse/return")
    return int(ret.findtext("result")), ret.findtext("message")


def soap_fault(resp: Any) -> tuple[str, str]:
    fault = etree.fromstring(resp.data).find(f"{{{SOAP}}}Body/{{{SOAP}}}Fault")
    return fault.findtext("faultcode"), fault.findtext("faultstring")


def rqst(**over: Any) -> dict[str, Any]:
    """A send_sms_list request the VNPT mock accepts, with overrides."""
    return {
        "name": "send_sms_list", "REQID": "RQ-1", "LABELID": "UBND-TINH", "CONTRACTTYPEID": "1",
        "CONTRACTID": "HD-2026-01", "TEMPLATEID": "GW-TB-01", "PARAMS": [{"NUM": "1", "CONTENT": TEXT}],
        "SCHEDULETIME": "", "MOBILELIST": "84912345678", "ISTELCOSUB": "0", "AGENTID": "AG01", "APIUSER": "gateway",
        "APIPASS": "vnpt-secret", "USERNAME": "operator", "DATACODING": "8",
    } | over  # fmt: skip


def vnpt(client: FlaskClient, **over: Any) -> dict[str, Any]:
    """Send one send_sms_list; returns the RPLY object of a 200 answer."""
    resp = client.post(f"{N}/api/send_sms_list", json={"RQST": rqst(**over)})
    assert resp.status_code == 200 and resp.json["RPLY"]["name"] == "send_sms_list"
    return resp.json["RPLY"]


def messages(client: FlaskClient, prefix: str, **query: str) -> list[dict[str, Any]]:
    return client.get(f"{prefix}/_mock/messages", query_string=query).json["messages"]


def arm(client: FlaskClient, prefix: str, mode: str, **kw: Any) -> None:
    assert client.post(f"{prefix}/_mock/faults", json={"mode": mode, "count": 1} | kw).status_code == 200


def log(client: FlaskClient, prefix: str) -> list[dict[str, Any]]:
    return client.get(f"{prefix}/_mock/requests").json["requests"]


# --- shared --------------------------------------------------------------------


def test_gsm7_check() -> None:
    assert is_gsm7(PLAIN) and is_gsm7("@£$¥ÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\r\n\f")
    assert not any(is_gsm7(t) for t in ("đ", "ồ", "á", "`", "ç", "\t", "\x1b", "😀"))


# --- Viettel -------------------------------------------------------------------


def test_zeep_loads_the_wsdl_and_sends_a_vietnamese_message(soap: zeep.Client, base_url: str) -> None:
    port = soap.wsdl.services["CcApi"].ports["CcApiPort"]
    assert port.binding.name.localname == "CcApiPortBinding"
    assert port.binding_options["address"] == f"{base_url}{V}/bulkapi"
    answer = soap.service.wsCpMt(**mt())
    assert answer.result == 1 and answer.message == "Insert MT_QUEUE: OK"
    [msg] = requests.get(f"{base_url}{V}/_mock/messages", timeout=5).json()["messages"]
    assert msg["content"] == TEXT and msg["provider"] == "viettel" and msg["unicode"] is True and msg["at"]
    assert (msg["request_id"], msg["receiver"], msg["brandname"]) == ("1001", "84912345678", "UBND-TINH")
    [call] = requests.get(f"{base_url}{V}/_mock/requests", timeout=5).json()["requests"]
    assert call["service"] == "wsCpMt" and call["body"]["Password"] == "***" and call["body"]["Content"] == TEXT
    assert "viettel-secret" not in str(call)


def test_wsdl_is_served_at_both_urls_with_the_callers_host(client: FlaskClient) -> None:
    for url in (f"{V}/bulkapi?wsdl", f"{V}/bulkapi.wsdl", f"{V}/bulkapi?WSDL"):
        resp = client.get(url, base_url="http://sms.example:8001")
        assert resp.status_code == 200 and resp.mimetype == "text/xml"
        root = etree.fromstring(resp.data)
        assert root.get("targetNamespace") == TNS
        wsdl = {"w": "http://schemas.xmlsoap.org/wsdl/", "s": "http://schemas.xmlsoap.org/wsdl/soap/"}
        [address] = root.xpath("//w:service[@name='CcApi']/w:port[@name='CcApiPort']/s:address", namespaces=wsdl)
        assert address.get("location") == "http://sms.example:8001/sms/viettel/bulkapi"
        [op] = root.xpath("//w:binding[@name='CcApiPortBinding']/w:operation/s:operation", namespaces=wsdl)
        assert op.get("soapAction") == ""


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"Password": "wrong"}, "Authenticate: WRONG_INFORMATION_AUTHENTICATE"),
        ({"User": "other"}, "Authenticate: WRONG_INFORMATION_AUTHENTICATE"),
        ({"User": ""}, "Authenticate: UserName: NULL_OR_BLANK"),
        ({"CPCode": "OTHER"}, "Authenticate: CP_CODE_NOT_FOUND"),
        ({"CPCode": ""}, "Authenticate: Cp_code: NULL_OR_BLANK"),
        ({"ServiceID": "OTHER", "CommandCode": "x"}, "Check ServiceID: ALIAS_INVALID:TELCO=VIETTEL"),
        ({"CommandCode": "BULKSMS"}, "Check CommandCode: COMMAND_CODE_ERROR"),
        ({"CommandCode": ""}, "Check CommandCode: NULL_OR_BLANK"),
        ({"ReceiverID": "0912345678", "UserID": "0912345678"}, "Check ReceiverID: FORMAT_ERROR"),
        ({"ReceiverID": "8491234567"}, "Check ReceiverID: FORMAT_ERROR"),
        ({"ReceiverID": "84912345678,84987654321"}, "Check ReceiverID: FORMAT_ERROR"),
        ({"ReceiverID": ""}, "Check ReceiverID: NULL_OR_BLANK"),
        ({"UserID": "84987654321"}, "UserID_NOT_EQUAL_ReceiverID"),
        ({"UserID": ""}, "Check UserID: NULL_OR_BLANK"),
        ({"RequestID": "", "Content": ""}, "Check RequestID: NULL_OR_BLANK"),
        ({"RequestID": "RQ-1"}, "Check RequestID: REQUEST_ID_NOT_NUMBER"),
        ({"RequestID": "١٢٣"}, "Check RequestID: REQUEST_ID_NOT_NUMBER"),
        ({"Content": ""}, "Check Content: NULL_OR_BLANK"),
        ({"Content": "ồ" * 667}, "Check Content: MAXLENGTH_LIMIT_2000_BYTE"),
        ({"ContentType": "2"}, "Check ContentType: CONTENT_TYPE_ERROR"),
        ({"ContentType": "0"}, "Check ContentType: CONTENT_NOT_GSM7"),
    ],
)
def test_viettel_rejections(client: FlaskClient, over: dict[str, str], message: str) -> None:
    assert viettel(client, **over) == (0, message)
    assert messages(client, V) == []
    [call] = log(client, V)
    assert call["service"] == "wsCpMt" and call["response"] == {"result": 0, "message": message}


def test_viettel_plain_message_duplicates_and_receiver_filter(client: FlaskClient) -> None:
    assert viettel(client, Content=PLAIN, ContentType="0") == (1, OK)
    # The same RequestID with other content is a new message (public clients send "1" every time) ...
    assert viettel(client, Content="a" * 1000) == (1, OK)
    # ... but the same message to the same number again is refused as a repeat.
    repeat = viettel(client, RequestID="1002", Content=PLAIN, ContentType="0")
    assert repeat == (0, "Check ServiceID: DUPLICATE MESSAGE")
    assert viettel(client, RequestID="1002", ReceiverID="84987654321", UserID="84987654321") == (1, OK)
    got = [(m["request_id"], m["unicode"], m["content"]) for m in messages(client, V)]
    assert got == [("1001", False, PLAIN), ("1001", True, "a" * 1000), ("1002", True, TEXT)]
    assert [m["request_id"] for m in messages(client, V, receiver="84987654321")] == ["1002"]


def test_viettel_unreadable_call_is_a_client_fault(client: FlaskClient) -> None:
    arm(client, V, "http_500")
    broken = b"<S:Envelope><Password>viettel-secret</Password>"
    no_call = f'<S:Envelope xmlns:S="{SOAP}"><S:Body><wsCpMt/></S:Body></S:Envelope>'.encode()
    for body in (b"not xml", broken, b"", no_call):
        resp = viettel_post(client, body)
        assert resp.status_code == 500 and soap_fault(resp)[0] == "S:Client"
    assert "{http://impl.bulkSms.ws/}wsCpMt" in soap_fault(resp)[1]  # unqualified wsCpMt is not the call
    assert client.get(f"{V}/_mock/faults").json["faults"][0]["count"] == 1  # not consumed
    assert "viettel-secret" not in str(log(client, V))


def test_viettel_faults_through_zeep(client: FlaskClient, soap: zeep.Client) -> None:
    arm(client, V, "http_500", count=2)
    for _ in range(2):
        with pytest.raises(zeep.exceptions.Fault, match="Injected fault: HTTP 500"):
            soap.service.wsCpMt(**mt())
    arm(client, V, "error_code", code="Check template: CONTENT_NOT_MATCH_TEMPLATE")
    arm(client, V, "error_code")
    busy = soap.service.wsCpMt(**mt())
    assert (busy.result, busy.message) == (0, "Check template: CONTENT_NOT_MATCH_TEMPLATE")
    busy = soap.service.wsCpMt(**mt())
    assert (busy.result, busy.message) == (0, "Check information error")
    assert messages(client, V) == [] and client.get(f"{V}/_mock/faults").json["faults"] == []
    ok = soap.service.wsCpMt(**mt())
    assert (ok.result, ok.message) == (1, OK)
    # error_code only replaces an answer that would be a success: a repeat stays a duplicate.
    arm(client, V, "error_code")
    assert soap.service.wsCpMt(**mt()).message == "Check ServiceID: DUPLICATE MESSAGE"
    faults = ["http_500", "http_500", "error_code", "error_code", None, "error_code"]
    assert [r["fault"] for r in log(client, V)] == faults


def test_viettel_timeout_delay_and_drop(client: FlaskClient) -> None:
    arm(client, V, "timeout", seconds=0.05, services=["wsCpMt"])
    started = time.monotonic()
    resp = viettel_post(client, envelope(mt()))
    assert resp.status_code == 504 and soap_fault(resp)[0] == "S:Server" and time.monotonic() - started >= 0.05
    assert messages(client, V) == []
    arm(client, V, "delay", seconds=0.05)
    started = time.monotonic()
    assert viettel(client) == (1, OK) and time.monotonic() - started >= 0.05
    arm(client, V, "drop")
    with pytest.raises(ConnectionDropped):
        viettel_post(client, envelope(mt(RequestID="1002", Content=PLAIN)))
    assert [m["request_id"] for m in messages(client, V)] == ["1001", "1002"]  # applied, then dropped


def test_viettel_config_and_reset(client: FlaskClient) -> None:
    assert client.post(f"{V}/_mock/config", json={"brandname": "SO-TU-PHAP"}).status_code == 200
    assert client.post(f"{V}/_mock/config", json={"nope": "x"}).status_code == 400
    assert viettel(client)[1] == "Check ServiceID: ALIAS_INVALID:TELCO=VIETTEL"
    assert viettel(client, ServiceID="SO-TU-PHAP") == (1, OK)
    arm(client, V, "http_500", count=3)
    assert client.post(f"{V}/_mock/reset").status_code == 200
    assert messages(client, V) == [] and log(client, V) == []
    assert client.get(f"{V}/_mock/faults").json == {"faults": []}
    assert client.get(f"{V}/_mock/config").json["brandname"] == "UBND-TINH"
    assert viettel(client) == (1, OK)  # the message is no repeat any more


def test_viettel_forgets_repeats_on_reset(client: FlaskClient) -> None:
    assert viettel(client) == (1, OK)
    assert viettel(client, RequestID="1002") == (0, "Check ServiceID: DUPLICATE MESSAGE")
    assert client.post(f"{V}/_mock/reset").status_code == 200
    assert viettel(client, RequestID="1002") == (1, OK)  # the same text to the same number: new since the reset
    assert viettel(client, RequestID="1003") == (0, "Check ServiceID: DUPLICATE MESSAGE")


# --- VNPT ------------------------------------------------------------------------


def test_vnpt_accepts_a_vietnamese_message(client: FlaskClient) -> None:
    assert vnpt(client) == {"name": "send_sms_list", "ERROR": "0", "ERROR_DESC": "Thành công"}
    [msg] = messages(client, N)
    assert msg["content"] == TEXT and msg["provider"] == "vnpt" and msg["unicode"] is True
    assert (msg["request_id"], msg["receiver"], msg["brandname"]) == ("RQ-1", "84912345678", "UBND-TINH")
    [call] = log(client, N)
    assert call["service"] == "send_sms_list" and call["body"]["APIPASS"] == "***" and call["body"]["REQID"] == "RQ-1"
    assert "vnpt-secret" not in str(call)


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"APIPASS": "wrong", "LABELID": "X"}, "1"),
        ({"APIUSER": "other"}, "1"),
        ({"CONTRACTID": "HD-OTHER"}, "1"),
        ({"AGENTID": "AG99"}, "1"),
        ({"LABELID": "OTHER", "TEMPLATEID": "X"}, "3"),
        ({"TEMPLATEID": "GW-TB-99"}, "4"),
        ({"PARAMS": []}, "4"),
        ({"PARAMS": [{"NUM": "1", "CONTENT": "a"}, {"NUM": "2", "CONTENT": "b"}]}, "4"),
        ({"PARAMS": [{"NUM": "1", "CONTENT": ""}]}, "4"),
        ({"PARAMS": [{"NUM": 1, "CONTENT": "a"}]}, "4"),
        ({"PARAMS": "a", "MOBILELIST": "x"}, "4"),
        ({"MOBILELIST": "0912345678"}, "2"),
        ({"MOBILELIST": "84912345678,84987654321"}, "2"),
        ({"MOBILELIST": 84912345678}, "2"),
        ({"PARAMS": [{"NUM": "1", "CONTENT": "a" * 1001}]}, "5"),
        ({"DATACODING": "0"}, "5"),
        ({"DATACODING": "1"}, "5"),
        ({"REQID": "", "DATACODING": "0", "PARAMS": [{"NUM": "1", "CONTENT": PLAIN}]}, "6"),
        ({"REQID": 7}, "6"),
    ],
)
def test_vnpt_rejections(client: FlaskClient, over: dict[str, Any], code: str) -> None:
    reply = vnpt(client, **over)
    assert reply["ERROR"] == code and reply["ERROR_DESC"] and reply["ERROR_DESC"] != "Thành công"
    assert messages(client, N) == []
    [call] = log(client, N)
    assert call["response"]["RPLY"]["ERROR"] == code and "vnpt-secret" not in str(call)


def test_vnpt_plain_message_duplicates_and_receiver_filter(client: FlaskClient) -> None:
    assert vnpt(client, DATACODING="0", PARAMS=[{"NUM": "1", "CONTENT": PLAIN}])["ERROR"] == "0"
    assert vnpt(client)["ERROR"] == "7"
    assert vnpt(client, REQID="RQ-2", MOBILELIST="84987654321")["ERROR"] == "0"
    assert [(m["request_id"], m["unicode"]) for m in messages(client, N)] == [("RQ-1", False), ("RQ-2", True)]
    assert [m["request_id"] for m in messages(client, N, receiver="84987654321")] == ["RQ-2"]
    assert messages(client, V) == []  # each provider keeps its own messages


@pytest.mark.parametrize("body", [b"{nope", b"[1]", b'{"RQST": "x"}', b'{"rqst": {}}', b""])
def test_vnpt_unreadable_request_is_400(client: FlaskClient, body: bytes) -> None:
    arm(client, N, "http_500")
    resp = client.post(f"{N}/api/send_sms_list", data=body, content_type="application/json")
    assert resp.status_code == 400
    assert resp.json == {"RPLY": {"name": "send_sms_list", "ERROR": "99", "ERROR_DESC": "Yêu cầu không hợp lệ"}}
    assert client.get(f"{N}/_mock/faults").json["faults"][0]["count"] == 1


def test_vnpt_faults(client: FlaskClient) -> None:
    arm(client, N, "http_500", services=["send_sms_list"])
    assert client.post(f"{N}/api/send_sms_list", json={"RQST": rqst()}).status_code == 500
    arm(client, N, "error_code", count=2)
    busy = {"name": "send_sms_list", "ERROR": "99", "ERROR_DESC": "Hệ thống đang bận, vui lòng thử lại sau"}
    assert vnpt(client) == busy
    assert client.get(f"{N}/_mock/faults").json["faults"][0]["count"] == 1
    assert vnpt(client, APIPASS="wrong")["ERROR"] == "1"  # a rejection keeps its code, the count still goes
    arm(client, N, "error_code", code="8")
    assert vnpt(client)["ERROR"] == "8" and messages(client, N) == []
    arm(client, N, "timeout", seconds=0.05)
    assert client.post(f"{N}/api/send_sms_list", json={"RQST": rqst()}).status_code == 504
    arm(client, N, "delay", seconds=0.05)
    started = time.monotonic()
    assert vnpt(client)["ERROR"] == "0" and time.monotonic() - started >= 0.05
    arm(client, N, "drop")
    with pytest.raises(ConnectionDropped):
        client.post(f"{N}/api/send_sms_list", json={"RQST": rqst(REQID="RQ-2")})
    assert [m["request_id"] for m in messages(client, N)] == ["RQ-1", "RQ-2"]
    assert client.get(f"{N}/_mock/faults").json["faults"] == []


def test_vnpt_config_and_reset(client: FlaskClient) -> None:
    client.post(f"{N}/_mock/config", json={"template_id": "GW-TB-02"})
    assert vnpt(client)["ERROR"] == "4"
    assert vnpt(client, TEMPLATEID="GW-TB-02")["ERROR"] == "0"
    arm(client, N, "drop", count=2)
    assert client.post(f"{N}/_mock/reset").json == {"status": "reset"}
    assert messages(client, N) == [] and log(client, N) == []
    assert client.get(f"{N}/_mock/faults").json == {"faults": []}
    assert client.get(f"{N}/_mock/config").json == {
        "api_user": "gateway", "api_pass": "vnpt-secret", "label_id": "UBND-TINH", "template_id": "GW-TB-01",
        "contract_id": "HD-2026-01", "agent_id": "AG01",
    }  # fmt: skip
    assert vnpt(client)["ERROR"] == "0"
