"""VNPost CreateOrder against OpenCPS's client (vnpost/README.md): the body our client sends has the
published flat keys, our mock takes the published body, and tracking statuses read as published."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from gateway.adapters.postal.vnpost import Order, create_order_body
from mocks.server import create_app

HERE = Path(__file__).parent / "vnpost"
P = "/postal"


def fixture(name: str) -> Any:
    return json.loads((HERE / name).read_text(encoding="utf-8"))


def ORDER() -> Order:  # noqa: N802 - a constant built fresh
    return Order("000.00.17.H31-240725-0001", 0,
                 {"Name": "UBND xã Tân Phú", "Address": "1 Lê Lợi", "Province": "Đồng Nai", "Tel": "0912345678",
                  "Email": "motcua@tanphu.gov.vn"},
                 {"Name": "Nguyễn Thị Hòa", "Address": "12 Trần Hưng Đạo", "Province": "Đồng Nai",
                  "Commune": "Xã Tân Phú", "District": None, "Tel": "0987654321"}, "Trả kết quả hồ sơ")  # fmt: skip


def authorized(client: FlaskClient) -> dict[str, str]:
    token = client.post(f"{P}/api/token", json={"CustomerKey": "gateway", "CustomerSecret": "vnpost-secret"})
    return {"Authorization": f"Bearer {token.json['Token']}"}


def test_our_body_uses_the_published_flat_keys() -> None:
    ours = create_order_body("GATEWAY", ORDER())
    published = list(fixture("create_order_request.json"))
    assert [k for k in ours if k != "ReceiverCommune"] == [k for k in published if k in ours]
    assert set(ours) - set(published) == {"ReceiverCommune"}  # the one [assumed] field
    assert "ReceiverDistrict" not in ours  # absent, not null


def test_the_published_body_with_numeric_codes_is_accepted_by_our_mock() -> None:
    client = create_app().test_client()
    body = fixture("create_order_request.json") | {"ReceiverCommune": "Xã Tân Phú"}
    created = client.post(f"{P}/api/orders", json=body, headers=authorized(client)).json
    assert created["Status"] == "100" and created["ItemCode"].endswith("VN")
    kept = client.get(f"{P}/_mock/state/{body['OrderNumber']}").json
    assert kept["Receiver"]["Province"] == 70 and kept["Sender"]["District"] == 7100


def test_our_body_is_accepted_by_our_mock() -> None:
    client = create_app().test_client()
    created = client.post(f"{P}/api/orders", json=create_order_body("GATEWAY", ORDER()), headers=authorized(client))
    assert created.json["Status"] == "100"


def test_tracking_items_carry_the_published_field_names() -> None:
    client = create_app().test_client()
    client.post(f"{P}/api/orders", json=create_order_body("GATEWAY", ORDER()), headers=authorized(client))
    ours = client.get(f"{P}/api/orders/{ORDER().order_number}/tracking", headers=authorized(client)).json
    [published] = fixture("tracking_page.json")["_embedded"]["rh:doc"]
    for key in ("orderNumber", "statusCode", "statusMessage"):
        assert isinstance(ours[key], str) and isinstance(published[key], str)
