"""Tests for the VNPost mock: token auth, orders, tracking, and signed callbacks to a real local receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from mocks import postal
from mocks.harness import ConnectionDropped

P = "/postal"
CALLBACK_SECRET = "vnpost-callback-secret"
WAYBILL = re.compile(r"EB[0-9]{9}VN")


class Receiver:
    """A real HTTP server on an ephemeral port recording the raw callbacks it gets."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.answer: Any = {"Status": "100", "Message": "Đã nhận"}
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def app(self, environ: dict, start_response: Any) -> Any:
        req = Request(environ)
        with self.lock:
            self.received.append({"path": req.path, "headers": dict(req.headers), "raw": req.get_data()})
        body = json.dumps(self.answer, ensure_ascii=False)
        return Response(body, content_type="application/json; charset=utf-8")(environ, start_response)

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=3)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


class Post:
    """Small client over the Flask test client, holding a token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token = self.get_token().json["Token"]

    def get_token(self, key: str = "gateway", secret: str = "vnpost-secret") -> Any:
        return self.client.post(f"{P}/api/token", json={"CustomerKey": key, "CustomerSecret": secret})

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def create(self, order: dict[str, Any], **kw: Any) -> Any:
        return self.client.post(f"{P}/api/orders", json=order, headers=kw.pop("headers", self.auth()), **kw)

    def get(self, number: str, suffix: str = "", token: str | None = None) -> Any:
        return self.client.get(f"{P}/api/orders/{number}{suffix}", headers=self.auth(token))

    def control(self, action: str, number: str, **body: Any) -> Any:
        return self.client.post(f"{P}/_mock/{action}/{number}", json=body)

    def arm(self, **fault: Any) -> None:
        assert self.client.post(f"{P}/_mock/faults", json={"count": 1} | fault).status_code == 200


@pytest.fixture
def post(receiver: Receiver) -> Post:
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.register_blueprint(postal.create_blueprint(), url_prefix=P)
    client = app.test_client()
    assert client.post(f"{P}/_mock/config", json={"callback_url": f"{receiver.url}/cb"}).status_code == 200
    return Post(client)


def flat(body: dict[str, Any]) -> dict[str, Any]:
    """The nested test order as VNPost takes it: SenderName, ReceiverTel, ..."""
    out = {k: v for k, v in body.items() if k not in ("Sender", "Receiver")}
    for party in ("Sender", "Receiver"):
        out |= {party + k: v for k, v in (body.get(party) or {}).items()}
    return out


def order(number: str = "HS-001", **extra: Any) -> dict[str, Any]:
    return flat(nested(number, **extra))


def nested(number: str = "HS-001", **extra: Any) -> dict[str, Any]:
    return {
        "CustomerCode": "GATEWAY", "OrderNumber": number, "CODAmount": 50000,
        "Sender": {"Name": "UBND xã Tân Phú", "Address": "1 Lê Lợi", "Province": "Đồng Nai", "Tel": "0912345678",
                   "Email": "motcua@tanphu.gov.vn"},
        "Receiver": {"Name": "Nguyễn Thị Hòa", "Address": "12 Trần Hưng Đạo", "Province": "Đồng Nai",
                     "Commune": "Xã Tân Phú", "District": None, "Tel": "84987654321"},
        "Description": "Trả kết quả hồ sơ HS-001",
    } | extra  # fmt: skip


def with_receiver(**changes: Any) -> dict[str, Any]:
    base = nested()
    return flat(base | {"Receiver": base["Receiver"] | changes})


def s10_ok(code: str) -> bool:
    total = sum(int(d) * w for d, w in zip(code[2:10], (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    check = 11 - total % 11
    return int(code[10]) == {10: 0, 11: 5}.get(check, check)


# --- token and orders --------------------------------------------------------


def test_token_then_create_order_gets_a_waybill(post: Post) -> None:
    token = post.get_token().json
    assert token["Status"] == "100" and token["ExpiresIn"] == 3600 and token["Token"] != post.token
    created = post.create(order()).json
    assert created["Status"] == "100" and created["Message"] == "Tạo đơn hàng thành công"
    assert created["OrderNumber"] == "HS-001" and WAYBILL.fullmatch(created["ItemCode"]) and s10_ok(created["ItemCode"])
    other = post.create(order("HS-002")).json["ItemCode"]
    assert other != created["ItemCode"]
    got = post.get("HS-001").json
    assert got["Status"] == "100" and got["ItemCode"] == created["ItemCode"] and got["CODAmount"] == 50000
    assert got["StatusCode"] == "100" and got["StatusMessage"] == "Đã tạo đơn hàng"
    assert got["Receiver"]["Commune"] == "Xã Tân Phú"


@pytest.mark.parametrize(
    ("key", "secret"), [("gateway", "wrong"), ("other", "vnpost-secret"), ("", ""), ("gateway", "bí mật")]
)
def test_token_bad_credentials_is_401(post: Post, key: str, secret: str) -> None:
    resp = post.get_token(key, secret)
    assert resp.status_code == 401 and resp.json == {"Status": "401", "Message": "Sai thông tin xác thực"}
    assert "WWW-Authenticate" not in resp.headers  # the token call itself takes no Bearer token


def test_duplicate_order_number_is_102_without_item_code(post: Post) -> None:
    first = post.create(order()).json["ItemCode"]
    again = post.create(order(CODAmount=99000))
    assert again.status_code == 200 and again.json == {"Status": "102", "Message": "Mã đơn hàng đã tồn tại"}
    got = post.get("HS-001").json
    assert got["ItemCode"] == first and got["CODAmount"] == 50000  # the original order, unchanged


INVALID = [
    (with_receiver(Commune=None), "ReceiverCommune"), (with_receiver(Commune=" "), "ReceiverCommune"),
    (with_receiver(Tel="091234567"), "ReceiverTel"), (with_receiver(Tel="+84987654321"), "ReceiverTel"),
    (with_receiver(Tel="0912 345 678"), "ReceiverTel"), (with_receiver(Province=None), "ReceiverProvince"),
    (order(Sender=nested()["Sender"] | {"Tel": "12345678901"}), "SenderTel"),
    (order(Sender=nested()["Sender"] | {"Name": ""}), "SenderName"), (with_receiver(District=[5]), "ReceiverDistrict"),
    (order(CODAmount=50000.0), "CODAmount"), (order(CODAmount=-1), "CODAmount"), (order(CODAmount=True), "CODAmount"),
    (order(CODAmount="50000"), "CODAmount"), (order(CustomerCode="OTHER"), "CustomerCode"),
    (order(""), "OrderNumber"), (order("X" * 65), "OrderNumber"), (order(Receiver=None), "Receiver"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "field"), INVALID)
def test_validation_is_101_naming_the_field(post: Post, body: dict, field: str) -> None:
    reply = post.create(body)
    assert reply.status_code == 200 and reply.json["Status"] == "101" and field in reply.json["Message"]
    assert post.client.get(f"{P}/_mock/state").json == {"orders": {}}


def test_district_is_optional_and_edges_are_accepted(post: Post) -> None:
    receiver = nested()["Receiver"]
    absent = {k: v for k, v in receiver.items() if k != "District"}
    assert post.create(order("A", Receiver=absent, CODAmount=0)).json["Status"] == "100"
    assert post.create(order("B", Receiver=receiver | {"District": ""})).json["Status"] == "100"
    assert post.create(order("C", Receiver=receiver | {"District": "Huyện cũ"})).json["Status"] == "100"
    assert post.create(order("D" * 64, Description=None)).json["Status"] == "100"
    assert "District" not in post.client.get(f"{P}/_mock/state/A").json["Receiver"]


def test_missing_unknown_or_expired_token_is_401(post: Post) -> None:
    invalid = {"Status": "401", "Message": "Token không hợp lệ hoặc đã hết hạn"}
    no_header = post.client.post(f"{P}/api/orders", json=order())
    assert no_header.status_code == 401 and no_header.json == invalid
    assert no_header.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert post.create(order(), headers=post.auth("bogus")).status_code == 401
    assert post.get("HS-001", token="bogus").status_code == 401
    assert post.client.post(f"{P}/_mock/expire-tokens").json == {"status": "expired"}
    assert post.get("HS-001", "/tracking").json == invalid
    post.token = post.get_token().json["Token"]  # re-authenticating is enough
    assert post.create(order()).json["Status"] == "100"
    post.client.post(f"{P}/_mock/config", json={"token_ttl_seconds": 0.2})
    short = post.get_token().json
    assert short["ExpiresIn"] == 0.2
    time.sleep(0.3)
    assert post.get("HS-001", token=short["Token"]).status_code == 401


def test_unknown_order_is_404_104(post: Post) -> None:
    for suffix in ("", "/tracking"):
        resp = post.get("NOPE", suffix)
        assert resp.status_code == 404 and resp.json == {"Status": "104", "Message": "Không tìm thấy đơn hàng"}


# --- tracking and callbacks ------------------------------------------------------


def test_tracking_history_after_advance(post: Post, receiver: Receiver) -> None:
    item = post.create(order()).json["ItemCode"]
    for code in ("200", "300"):
        assert post.control("advance", "HS-001", statusCode=code, push=False).json["callback"] is None
    track = post.get("HS-001", "/tracking").json
    assert track["Status"] == "100" and track["orderNumber"] == "HS-001" and track["itemCode"] == item
    assert track["statusCode"] == "300" and track["statusMessage"] == "Đang vận chuyển"
    assert [h["statusCode"] for h in track["history"]] == ["100", "200", "300"]
    assert track["history"][1]["statusMessage"] == "Bưu tá đã nhận hàng"
    assert all(h["at"].endswith("+07:00") for h in track["history"]) and track["at"] == track["history"][-1]["at"]
    assert post.get("HS-001").json["StatusCode"] == "300" and receiver.received == []


def test_advance_pushes_a_signed_callback(post: Post, receiver: Receiver) -> None:
    item = post.create(order()).json["ItemCode"]
    result = post.control("advance", "HS-001", statusCode="500").json
    [got] = receiver.received
    assert got["path"] == "/cb" and got["headers"]["Content-Type"] == "application/json; charset=utf-8"
    expected = hmac.new(CALLBACK_SECRET.encode(), got["raw"], hashlib.sha256).hexdigest()
    assert got["headers"]["X-Vnpost-Signature"] == expected
    assert "Phát thành công".encode() in got["raw"]  # UTF-8 as is, not \u escapes
    message = json.loads(got["raw"].decode("utf-8"))
    assert message == {"orderNumber": "HS-001", "itemCode": item, "statusCode": "500",
                       "statusMessage": "Phát thành công", "at": result["order"]["at"]}  # fmt: skip
    assert result["callback"] == {"status": 200, "body": {"Status": "100", "Message": "Đã nhận"}}
    assert result["order"]["statusCode"] == "500" and len(result["order"]["history"]) == 2
    [cb] = post.client.get(f"{P}/_mock/state/HS-001").json["callbacks"]
    assert cb["message"] == message and cb["status"] == 200 and cb["replayed"] is False
    # A callback signed with another secret would not verify: the secret really is in the signature.
    post.client.post(f"{P}/_mock/config", json={"callback_secret": "other"})
    post.control("advance", "HS-001", statusCode="500")
    assert receiver.received[1]["headers"]["X-Vnpost-Signature"] != expected


def test_push_sends_an_old_status_without_changing_state(post: Post, receiver: Receiver) -> None:
    post.create(order())
    post.control("advance", "HS-001", statusCode="500", push=False)
    before = post.client.get(f"{P}/_mock/state/HS-001").json
    old = "2025-07-01T08:00:00+07:00"
    result = post.control("push", "HS-001", statusCode="300", at=old).json
    message = json.loads(receiver.received[0]["raw"])
    assert message["statusCode"] == "300" and message["statusMessage"] == "Đang vận chuyển" and message["at"] == old
    assert result["order"]["statusCode"] == "500" and result["callback"]["status"] == 200
    after = post.client.get(f"{P}/_mock/state/HS-001").json
    assert after["StatusCode"] == "500" and after["history"] == before["history"]
    assert after["callbacks"][0]["replayed"] is True
    assert post.control("push", "HS-001", statusCode="400").json["callback"]["status"] == 200  # "at" defaults


def test_control_errors_and_undeliverable_callback(post: Post) -> None:
    assert post.control("advance", "NOPE", statusCode="200").status_code == 404
    assert post.control("push", "NOPE", statusCode="200").status_code == 404
    assert post.client.get(f"{P}/_mock/state/NOPE").status_code == 404
    post.create(order())
    assert post.control("advance", "HS-001", statusCode="999").status_code == 400
    assert post.control("advance", "HS-001", statusCode=200).status_code == 400
    assert post.control("advance", "HS-001", statusCode="200", push="yes").status_code == 400
    for at in ("hôm qua", 20250701, ["2025-07-01"]):
        bad_at = post.control("push", "HS-001", statusCode="200", at=at)
        assert bad_at.status_code == 400 and bad_at.json == {"error": "at phải là chuỗi ISO 8601"}
    assert post.control("advance", "NOPE", statusCode="999").json["error"].startswith("statusCode")  # body first
    post.client.post(f"{P}/_mock/config", json={"callback_url": "http://127.0.0.1:9/cb"})
    result = post.control("advance", "HS-001", statusCode="200").json
    assert "ConnectionError" in result["callback"]["error"] and result["order"]["statusCode"] == "200"


# --- faults, log, config and reset -------------------------------------------------


def test_faults_on_create_order(post: Post) -> None:
    post.arm(mode="http_500", services=["CreateOrder"])
    assert post.create(order()).status_code == 500
    post.arm(mode="error_code", code="503")
    assert post.create(order()).json == {"Status": "503", "Message": "Hệ thống đang bận"}
    post.arm(mode="error_code")
    assert post.create(order()).json["Status"] == "999"
    assert post.client.get(f"{P}/_mock/state").json == {"orders": {}}  # replaced calls change nothing
    post.arm(mode="drop", services=["CreateOrder"])
    with pytest.raises(ConnectionDropped):  # no socket under the test client: the body aborts instead
        post.create(order())
    assert post.create(order()).json["Status"] == "102"  # the dropped call was applied


def test_token_faults_only_when_named(post: Post) -> None:
    post.arm(mode="http_500")
    assert post.get_token().status_code == 200
    assert post.get("NOPE").status_code == 500  # the blanket fault went to the next regular call
    post.arm(mode="error_code", services=["token"])
    assert post.get_token().json["Status"] == "999"


def test_request_log_masks_secrets(post: Post) -> None:
    post.create(order())
    post.client.post(f"{P}/api/orders", data=b"{oops", content_type="application/json")
    requests = post.client.get(f"{P}/_mock/requests").json["requests"]
    token, create, broken = requests
    assert token["service"] == "token" and token["path"] == f"{P}/api/token"
    assert token["body"] == {"CustomerKey": "gateway", "CustomerSecret": "***"} and token["response"]["Token"] == "***"
    assert create["service"] == "CreateOrder" and create["body"]["OrderNumber"] == "HS-001"
    assert create["headers"] == {"authorization": True} and post.token not in json.dumps(requests)
    assert broken["status"] == 400 and broken["body"] == "{oops"


def test_config_and_reset(post: Post) -> None:
    assert post.client.post(f"{P}/_mock/config", json={"token_ttl_seconds": 0}).status_code == 400
    assert post.client.post(f"{P}/_mock/config", json={"nope": 1}).status_code == 400
    post.client.post(f"{P}/_mock/config", json={"customer_code": "KHAC"})
    assert post.create(order()).json["Status"] == "101"
    post.arm(mode="http_500", count=3)
    assert post.client.post(f"{P}/_mock/reset").json == {"status": "reset"}
    config = post.client.get(f"{P}/_mock/config").json
    assert config["customer_code"] == "GATEWAY" and config["callback_url"].startswith("http://127.0.0.1:8000/")
    assert post.client.get(f"{P}/_mock/requests").json == {"total": 0, "requests": []}
    assert post.client.get(f"{P}/_mock/faults").json == {"faults": []}
    assert post.create(order()).status_code == 401  # tokens are gone too
    post.token = post.get_token().json["Token"]
    assert post.create(order()).json["Status"] == "100"
