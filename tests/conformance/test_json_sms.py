"""The JSON SMS provider (VNPT-style send_sms_list) against public client code (json_sms/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import responses

from gateway.adapters.base import RetryableError
from gateway.adapters.sms_email.base import Sms
from gateway.adapters.sms_email.vnpt import VnptSms
from gateway.config import VnptSmsSettings
from mocks.server import create_app

HERE = Path(__file__).parent / "json_sms"
URL = "http://sms.example/api/send_sms_list"
SMS = Sms("TB0123456789ABCDEF", "84912345678", "Ho so cua ban da duoc tiep nhan", unicode=False)


def fixture(name: str) -> Any:
    return json.loads((HERE / name).read_text(encoding="utf-8"))


@pytest.fixture
def provider() -> VnptSms:
    return VnptSms(VnptSmsSettings(url=URL, api_pass="vnpt-secret"))


def test_the_published_request_is_accepted_by_our_mock() -> None:
    resp = create_app().test_client().post("/sms/vnpt/api/send_sms_list", json=fixture("request_send_sms_list.json"))
    assert resp.json["RPLY"]["ERROR"] == "0" and resp.json["RPLY"]["name"] == "send_sms_list"


def test_our_request_has_the_published_keys_in_order_and_our_mock_takes_it(provider: VnptSms) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(URL, json=fixture("response_ok.json"))
        assert provider.send(SMS) == SMS.request_id
        ours = json.loads(rsps.calls[-1].request.body)
    theirs = fixture("request_send_sms_list.json")
    assert list(ours) == ["RQST"] and list(ours["RQST"]) == list(theirs["RQST"])
    assert ours["RQST"]["PARAMS"] == [{"NUM": "1", "CONTENT": SMS.text}]
    resp = create_app().test_client().post("/sms/vnpt/api/send_sms_list", json=ours)
    assert resp.json["RPLY"]["ERROR"] == "0"


def test_the_published_sample_answer_is_read_and_its_unknown_code_retried(provider: VnptSms) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(URL, json=fixture("response_sample_31.json"))
        with pytest.raises(RetryableError, match="vnpt: 31 success"):
            provider.send(SMS)
