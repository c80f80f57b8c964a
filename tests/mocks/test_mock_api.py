"""Every mounted mock answers the same test API at its top: requests, faults (arm, list, clear) and reset."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from mocks.server import MOCKS, create_app

SYSTEMS = [prefix for prefix, _ in MOCKS]


@pytest.fixture
def client() -> FlaskClient:
    return create_app().test_client()


def test_every_system_the_brief_names_is_mounted() -> None:
    names = {"/national-portal", "/payment", "/sms", "/postal", "/email", "/ca", "/one-stop"}
    assert names <= set(SYSTEMS)


@pytest.mark.parametrize("prefix", SYSTEMS)
def test_uniform_mock_api_at_the_top_of_each_system(client: FlaskClient, prefix: str) -> None:
    listed = client.get(f"{prefix}/_mock/requests")
    assert listed.status_code == 200 and listed.json["requests"] == [] and listed.json["total"] == 0

    armed = client.post(f"{prefix}/_mock/faults", json={"mode": "http_500", "count": 2})
    assert armed.status_code == 200, armed.json
    faults = client.get(f"{prefix}/_mock/faults").json["faults"]
    assert faults and all(f["mode"] == "http_500" and f["count"] == 2 for f in faults)

    assert client.post(f"{prefix}/_mock/faults", json={"mode": "explode", "count": 1}).status_code == 400
    assert client.delete(f"{prefix}/_mock/faults").json == {"faults": []}

    client.post(f"{prefix}/_mock/faults", json={"mode": "timeout", "count": 1})
    assert client.post(f"{prefix}/_mock/reset").status_code == 200
    assert client.get(f"{prefix}/_mock/faults").json["faults"] == []


VNPT_BAD_LOGIN = {"RQST": {"name": "send_sms_list", "APIUSER": "nobody"}}


def test_sms_top_lists_both_providers_marked_and_resets_both(client: FlaskClient) -> None:
    client.post("/sms/viettel/bulkapi", data=b"not xml", content_type="text/xml")
    client.post("/sms/vnpt/api/send_sms_list", json=VNPT_BAD_LOGIN)
    requests = client.get("/sms/_mock/requests").json["requests"]
    assert sorted(r["provider"] for r in requests) == ["viettel", "vnpt"]
    assert [r["provider"] for r in client.get("/sms/_mock/requests?provider=vnpt").json["requests"]] == ["vnpt"]
    # The per-provider paths keep working and see only their own calls.
    assert [r["path"] for r in client.get("/sms/viettel/_mock/requests").json["requests"]] == ["/sms/viettel/bulkapi"]

    client.post("/sms/_mock/reset")
    assert client.get("/sms/_mock/requests").json["total"] == 0
    assert client.get("/sms/vnpt/_mock/requests").json["total"] == 0


def test_sms_fault_can_name_one_provider(client: FlaskClient) -> None:
    one = {"mode": "http_500", "count": 1, "provider": "vnpt"}
    assert client.post("/sms/_mock/faults", json=one).status_code == 200
    assert client.get("/sms/viettel/_mock/faults").json["faults"] == []
    assert client.post("/sms/vnpt/api/send_sms_list", json=VNPT_BAD_LOGIN).status_code == 500
    assert client.post("/sms/_mock/faults", json={"mode": "http_500", "count": 1, "provider": "fpt"}).status_code == 400
    # A bad body arms nothing anywhere.
    assert client.post("/sms/_mock/faults", json={"mode": "http_500", "count": 0}).status_code == 400
    assert client.get("/sms/_mock/faults").json["faults"] == []


def test_a_process_may_serve_only_some_mocks_each_with_its_own_mock_api() -> None:
    """`python -m mocks --only /payment`: a partner in a process of its own (the benchmarks run one per
    partner), its `/_mock` API where it always is, and nothing of the others."""
    alone = create_app(["/payment"]).test_client()
    assert alone.get("/payment/_mock/requests").status_code == 200
    assert alone.get("/national-portal/_mock/requests").status_code == 404
    assert alone.get("/healthz").status_code == 200
    with pytest.raises(ValueError, match="/nowhere"):
        create_app(["/nowhere"])
