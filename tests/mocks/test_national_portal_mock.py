"""Tests for the national-portal mock, the shared mock harness and the `python -m mocks` runner."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from waitress import wasyncore
from waitress.server import create_server
from werkzeug.serving import make_server

from mocks.harness import ConnectionDropped, FaultInjector, RequestLog
from mocks.server import create_app

NP = "/national-portal"
DST = {"dstcode": "000.00.00.H01"}
ROOT = Path(__file__).resolve().parents[2]


def dossier(mahoso: str = "HS-001", **extra: Any) -> dict[str, Any]:
    return {
        "MaHoSo": mahoso,
        "MaTTHC": "1.000001",
        "TenTTHC": "Cấp giấy phép",
        "ChuHoSo": "Nguyễn Văn A",
        "NgayTiepNhan": "20240115083000",
        "TrangThaiHoSo": 1,
    } | extra


def step(mahoso: str = "HS-001", trang_thai: int | str = 2, at: str = "20240115090000", **extra: Any):
    return {"MaHoSo": mahoso, "TrangThai": trang_thai, "ThoiDiemXuLy": at, "NguoiXuLy": "Trần B"} | extra


class Portal:
    """Small client over the Flask test client, speaking the session flavour."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self._session: str | None = None

    def login(self, username: str = "gateway", password: str = "gateway-secret", headers=DST) -> dict:
        return self.client.post(f"{NP}/login", json={"username": username, "password": password}, headers=headers).json

    @property
    def session(self) -> str:
        if self._session is None:
            self._session = self.login()["session"]
        return self._session

    def call(self, service: str, **fields: Any) -> Any:
        body = {"session": self.session, "madonvi": "000.00.00.H01", "service": service} | fields
        return self.client.post(f"{NP}/service", json=body)

    def sync(self, *items: dict, updating: Any = False) -> dict:
        return self.call("DongBoHoSoMC", isUpdating=updating, data=list(items)).json

    def progress(self, *items: dict) -> dict:
        return self.call("CapNhatTienDoHoSoMC", data=list(items)).json

    def state(self, mahoso: str | None = None) -> Any:
        resp = self.client.get(f"{NP}/_mock/state" + (f"/{mahoso}" if mahoso else ""))
        return resp.json if mahoso else resp.json["dossiers"]

    def arm(self, **fault: Any) -> Any:
        return self.client.post(f"{NP}/_mock/faults", json=fault)

    def log(self, since: int | None = None) -> dict:
        return self.client.get(f"{NP}/_mock/requests" + (f"?since={since}" if since is not None else "")).json

    def token(self, auth=("gateway-lgsp", "lgsp-secret"), grant: str | None = "client_credentials"):
        data = {"grant_type": grant} if grant else {}
        return self.client.post(f"{NP}/lgsp/token", data=data, auth=auth)

    def lgsp(self, token: str, service: str, **fields: Any):
        body = {"madonvi": "000.00.00.H01", "service": service} | fields
        return self.client.post(f"{NP}/lgsp/service", json=body, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def app() -> Flask:
    return create_app()


@pytest.fixture
def portal(app: Flask) -> Portal:
    return Portal(app.test_client())


# --- harness ---------------------------------------------------------------


def test_request_log_indexes_since_and_clear() -> None:
    log = RequestLog()
    assert [log.append({"n": n}) for n in range(3)] == [0, 1, 2]
    assert [r["n"] for r in log.records()] == [0, 1, 2]
    assert [r["index"] for r in log.records(since=1)] == [1, 2]
    assert log.total() == 3 and "at" in log.records()[0]
    log.clear()
    assert log.total() == 0 and log.append({}) == 0


def test_request_log_is_thread_safe() -> None:
    log = RequestLog()
    threads = [threading.Thread(target=lambda: [log.append({}) for _ in range(200)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r["index"] for r in log.records()] == list(range(1600))


def test_fault_injector_counts_and_matches_services() -> None:
    faults = FaultInjector()
    faults.arm("http_500", 2, services=["CapNhatTienDoHoSoMC"])
    faults.arm("delay", 1)
    assert faults.take("DongBoHoSoMC").mode == "delay"  # the targeted fault does not apply
    assert faults.take("DongBoHoSoMC") is None
    assert faults.take("CapNhatTienDoHoSoMC").mode == "http_500"
    assert faults.armed() == [{"mode": "http_500", "count": 1, "seconds": 0.0, "services": ["CapNhatTienDoHoSoMC"]}]
    assert faults.take("CapNhatTienDoHoSoMC") is not None
    assert faults.take("CapNhatTienDoHoSoMC") is None and faults.armed() == []


def test_fault_injector_explicit_only_and_default_seconds() -> None:
    faults = FaultInjector()
    assert faults.arm("timeout", 1).seconds == 30.0
    assert faults.take("login", explicit_only=True) is None  # blanket faults spare login
    faults.clear()
    assert faults.arm("delay", 1, services=["login"]).seconds == 5.0
    assert faults.take("login", explicit_only=True).mode == "delay"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "explode", "count": 1},
        {"mode": "drop", "count": 0},
        {"mode": "drop", "count": True},
        {"mode": "drop", "count": 1.5},
        {"mode": "delay", "count": 1, "seconds": -1},
        {"mode": "delay", "count": 1, "seconds": "1"},
        {"mode": "drop", "count": 1, "services": "DongBoHoSoMC"},
        {"mode": "drop", "count": 1, "services": []},
        {"mode": "drop", "count": 1, "services": [3]},
    ],
)
def test_fault_injector_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        FaultInjector().arm(**kwargs)


@pytest.mark.parametrize(
    "body",
    [b"{nope", b"[1]", b'{"mode": "drop"}', b'{"mode": "drop", "count": 1, "service": ["x"]}', b'{"count": 1}'],
)
def test_bad_fault_body_is_400_json(portal: Portal, body: bytes) -> None:
    resp = portal.client.post(f"{NP}/_mock/faults", data=body, content_type="application/json")
    assert resp.status_code == 400 and "error" in resp.json
    assert portal.client.get(f"{NP}/_mock/faults").json == {"faults": []}


def test_fault_endpoints_list_and_clear(portal: Portal) -> None:
    resp = portal.arm(mode="delay", count=2, seconds=0.5, services=["TraCuuHoSo"])
    assert resp.status_code == 200
    assert resp.json["armed"] == {"mode": "delay", "seconds": 0.5, "services": ["TraCuuHoSo"]}
    listed = portal.client.get(f"{NP}/_mock/faults").json["faults"]
    assert listed == [{"mode": "delay", "count": 2, "seconds": 0.5, "services": ["TraCuuHoSo"]}]
    assert portal.client.delete(f"{NP}/_mock/faults").json == {"faults": []}


def test_requests_since_must_be_integer(portal: Portal) -> None:
    assert portal.client.get(f"{NP}/_mock/requests?since=x").status_code == 400


# --- server ----------------------------------------------------------------


def test_healthz_and_json_404(portal: Portal) -> None:
    assert portal.client.get("/healthz").json == {"status": "ok"}
    resp = portal.client.get(f"{NP}/nope")
    assert resp.status_code == 404 and resp.json["error"] == "Not Found"


def test_fresh_apps_do_not_share_state() -> None:
    first, second = Portal(create_app().test_client()), Portal(create_app().test_client())
    first.sync(dossier())
    assert "HS-001" in first.state() and second.state() == {}


def test_vietnamese_is_sent_as_utf8_not_escaped(portal: Portal) -> None:
    resp = portal.client.post(f"{NP}/login", json={"username": "x", "password": "y"}, headers=DST)
    assert "Sai thông tin đăng nhập".encode() in resp.data
    assert resp.json == {"error_code": 1, "message": "Sai thông tin đăng nhập"}


# --- session flavour -------------------------------------------------------


def test_login_ok_returns_random_session(portal: Portal) -> None:
    first, second = portal.login(), portal.login()
    assert first["error_code"] == 0 and first["message"] == "OK"
    assert first["session"] and first["session"] != second["session"]


@pytest.mark.parametrize(
    "username,password,headers",
    [("gateway", "wrong", DST), ("other", "gateway-secret", DST), ("gateway", "gateway-secret", {})],
)
def test_login_rejects_bad_credentials_or_missing_dstcode(portal: Portal, username, password, headers) -> None:
    resp = portal.client.post(f"{NP}/login", json={"username": username, "password": password}, headers=headers)
    assert resp.status_code == 200
    assert resp.json == {"error_code": 1, "message": "Sai thông tin đăng nhập"}


@pytest.mark.parametrize("path", ["/login", "/service", "/lgsp/service"])
@pytest.mark.parametrize("body", [b"{broken", b"[]", b'"text"', b"null"])
def test_malformed_or_non_object_body_is_400(portal: Portal, path: str, body: bytes) -> None:
    resp = portal.client.post(NP + path, data=body, content_type="application/json", headers=DST)
    assert resp.status_code == 400 and resp.json["error_code"] == 2 and resp.json["message"]


def test_config_changes_credentials_and_validates(portal: Portal) -> None:
    resp = portal.client.post(f"{NP}/_mock/config", json={"username": "u2", "password": "p2"})
    assert resp.status_code == 200 and resp.json["username"] == "u2"
    assert portal.login()["error_code"] == 1
    assert portal.login("u2", "p2")["error_code"] == 0
    for bad in ({"nope": 1}, {"session_ttl_seconds": -1}, {"password": 5}, [1]):
        assert portal.client.post(f"{NP}/_mock/config", json=bad).status_code == 400
    assert portal.client.get(f"{NP}/_mock/config").json["password"] == "p2"


def test_unknown_session_is_error_401_in_http_200(portal: Portal) -> None:
    resp = portal.client.post(f"{NP}/service", json={"session": "bogus", "service": "TraCuuHoSo", "mahoso": "x"})
    assert resp.status_code == 200
    assert resp.json == {"error_code": 401, "message": "Phiên làm việc không hợp lệ hoặc đã hết hạn"}


def test_expire_sessions_forces_relogin(portal: Portal) -> None:
    assert portal.sync(dossier())["error_code"] == 0
    portal.client.post(f"{NP}/_mock/expire-sessions")
    assert portal.sync(dossier("HS-002"))["error_code"] == 401
    portal._session = None
    assert portal.sync(dossier("HS-002"))["error_code"] == 0


def test_session_ttl_expiry(portal: Portal) -> None:
    session = portal.session
    portal.client.post(f"{NP}/_mock/config", json={"session_ttl_seconds": 0.05})
    time.sleep(0.06)
    assert portal.sync(dossier())["error_code"] == 401
    assert portal.state() == {}
    assert portal.login()["session"] != session


# --- LGSP flavour ----------------------------------------------------------


def test_lgsp_token_and_service(portal: Portal) -> None:
    resp = portal.token()
    assert resp.status_code == 200
    assert resp.json["token_type"] == "Bearer" and resp.json["expires_in"] == 3600
    token = resp.json["access_token"]
    assert portal.lgsp(token, "DongBoHoSoMC", isUpdating=False, data=[dossier()]).json["error_code"] == 0
    # Both flavours share the dossier state.
    assert portal.call("TraCuuHoSo", MaHoSo="HS-001").json["result"][0]["ChuHoSo"] == "Nguyễn Văn A"


@pytest.mark.parametrize("auth", [("gateway-lgsp", "wrong"), ("someone", "lgsp-secret"), None])
def test_lgsp_token_bad_client(portal: Portal, auth) -> None:
    resp = portal.token(auth=auth)
    assert resp.status_code == 401 and resp.json == {"error": "invalid_client"}
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


def test_lgsp_token_grant_type(portal: Portal) -> None:
    assert portal.token(grant="password").json == {"error": "unsupported_grant_type"}
    assert portal.token(grant=None).status_code == 400


def test_lgsp_config_changes_client_credentials(portal: Portal) -> None:
    portal.client.post(f"{NP}/_mock/config", json={"client_id": "c2", "client_secret": "s2"})
    assert portal.token().status_code == 401
    assert portal.token(auth=("c2", "s2")).status_code == 200


def test_lgsp_bad_missing_or_expired_token(portal: Portal) -> None:
    resp = portal.lgsp("bogus", "TraCuuHoSo", mahoso="x")
    assert resp.status_code == 401 and resp.json == {"error": "invalid_token"}
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    no_auth = portal.client.post(f"{NP}/lgsp/service", json={"service": "TraCuuHoSo", "mahoso": "x"})
    assert no_auth.status_code == 401
    token = portal.token().json["access_token"]
    assert portal.lgsp(token, "TraCuuHoSo", mahoso="x").json["error_code"] == 4
    portal.client.post(f"{NP}/_mock/expire-sessions")
    assert portal.lgsp(token, "TraCuuHoSo", mahoso="x").status_code == 401


def test_lgsp_token_ttl(portal: Portal) -> None:
    portal.client.post(f"{NP}/_mock/config", json={"token_ttl_seconds": 0})
    token = portal.token().json["access_token"]
    assert portal.lgsp(token, "TraCuuHoSo", mahoso="x").status_code == 401


# --- DongBoHoSoMC ----------------------------------------------------------


def test_create_dossier(portal: Portal) -> None:
    assert portal.sync(dossier(), dossier("HS-002")) == {"error_code": 0, "message": "OK"}
    state = portal.state("HS-001")
    assert state["ChuHoSo"] == "Nguyễn Văn A" and state["TenTTHC"] == "Cấp giấy phép"
    assert (state["creates"], state["updates"], state["progress"]) == (1, 0, [])
    assert set(portal.state()) == {"HS-001", "HS-002"}


def test_create_existing_dossier_is_error_3_without_change(portal: Portal) -> None:
    portal.sync(dossier())
    assert portal.sync(dossier(ChuHoSo="Khác")) == {"error_code": 3, "message": "Hồ sơ đã tồn tại"}
    state = portal.state("HS-001")
    assert state["ChuHoSo"] == "Nguyễn Văn A" and (state["creates"], state["updates"]) == (1, 0)


def test_create_batch_is_all_or_nothing(portal: Portal) -> None:
    portal.sync(dossier("HS-002"))
    assert portal.sync(dossier("HS-001"), dossier("HS-002"))["error_code"] == 3
    assert portal.sync(dossier("HS-003"), dossier("HS-003"))["error_code"] == 3
    assert portal.sync(dossier("HS-004"), dossier("HS-005", NgayTiepNhan="bad"))["error_code"] == 2
    assert set(portal.state()) == {"HS-002"}


@pytest.mark.parametrize("field", ["MaHoSo", "MaTTHC", "NgayTiepNhan"])
def test_create_requires_fields(portal: Portal, field: str) -> None:
    item = dossier()
    del item[field]
    assert portal.sync(item)["error_code"] == 2
    assert portal.sync(dossier(**{field: ""}))["error_code"] == 2
    assert portal.state() == {}


def test_create_without_applicant_name(portal: Portal) -> None:
    # OpenCPS marks ChuHoSo "ko bb" (not required) in its DongBoHoSoMC record.
    item = dossier()
    del item["ChuHoSo"]
    assert portal.sync(item)["error_code"] == 0
    assert portal.sync(dossier("HS-002", ChuHoSo=42))["error_code"] == 2  # present, it must be text


@pytest.mark.parametrize(
    "extra",
    [
        {"NgayTiepNhan": "2024011508300"},  # 13 digits
        {"NgayTiepNhan": "2024-01-15 08:3"},
        {"NgayTiepNhan": "20240230083000"},  # 30 February
        {"NgayTiepNhan": "20240115256000"},
        {"NgayTiepNhan": 20240115083000},
        {"NgayHenTra": "20241301000000"},
        {"NgayTra": "tomorrow"},
        {"TrichYeuHoSo": "x" * 1001},
        {"TrangThaiHoSo": 0},
        {"TrangThaiHoSo": 11},
        {"TrangThaiHoSo": "abc"},
        {"TrangThaiHoSo": True},
    ],
)
def test_create_validates_formats(portal: Portal, extra: dict) -> None:
    resp = portal.sync(dossier(**extra))
    assert resp["error_code"] == 2 and resp["message"]
    assert portal.state() == {}


def test_create_accepts_optional_fields(portal: Portal) -> None:
    extra = {"TrichYeuHoSo": "x" * 1000, "NgayHenTra": "20240120170000", "NgayTra": "", "TrangThaiHoSo": "10"}
    assert portal.sync(dossier(**extra, DanhSachLePhi=[{"TenPhiLePhi": "Lệ phí", "SoTien": 50000}]))["error_code"] == 0
    assert portal.state("HS-001")["TrangThaiHoSo"] == 10  # normalised to int


@pytest.mark.parametrize("data", [None, [], {}, "x", [1], [dossier(), "x"]])
def test_sync_requires_list_of_objects(portal: Portal, data: Any) -> None:
    assert portal.call("DongBoHoSoMC", isUpdating=False, data=data).json["error_code"] == 2


def test_is_updating_accepts_strings_and_rejects_junk(portal: Portal) -> None:
    assert portal.sync(dossier(), updating="false")["error_code"] == 0
    assert portal.sync(dossier(ChuHoSo="B"), updating="true")["error_code"] == 0
    assert portal.sync(dossier(), updating="yes")["error_code"] == 2
    assert portal.state("HS-001")["ChuHoSo"] == "B"


def test_update_unknown_dossier_is_error_4(portal: Portal) -> None:
    portal.sync(dossier())
    resp = portal.sync(dossier(ChuHoSo="B"), dossier("HS-404"), updating=True)
    assert resp == {"error_code": 4, "message": "Không tìm thấy hồ sơ"}
    assert portal.state("HS-001")["ChuHoSo"] == "Nguyễn Văn A"


def test_update_merges_and_counts_only_real_changes(portal: Portal) -> None:
    portal.sync(dossier(Email="a@example.vn"))
    assert portal.sync({"MaHoSo": "HS-001", "TrangThaiHoSo": 4, "NgayTra": "20240120100000"}, updating=True) == {
        "error_code": 0,
        "message": "OK",
    }
    state = portal.state("HS-001")
    assert (state["TrangThaiHoSo"], state["NgayTra"], state["Email"]) == (4, "20240120100000", "a@example.vn")
    assert state["updates"] == 1
    assert portal.sync({"MaHoSo": "HS-001", "TrangThaiHoSo": "4"}, updating=True)["error_code"] == 0
    assert portal.state("HS-001")["updates"] == 1  # same values: not an update
    # Bookkeeping fields cannot be overwritten from the wire.
    portal.sync({"MaHoSo": "HS-001", "creates": 9, "progress": "x"}, updating=True)
    assert (portal.state("HS-001")["creates"], portal.state("HS-001")["progress"]) == (1, [])


def test_update_validates_fields_it_carries(portal: Portal) -> None:
    portal.sync(dossier())
    for bad in ({"MaTTHC": ""}, {"ChuHoSo": 7}, {"NgayTiepNhan": "2024"}, {"TrangThaiHoSo": 12}):
        assert portal.sync({"MaHoSo": "HS-001"} | bad, updating=True)["error_code"] == 2
    assert portal.sync({"ChuHoSo": "x"}, updating=True)["error_code"] == 2  # MaHoSo is always required
    assert portal.state("HS-001")["updates"] == 0


# --- CapNhatTienDoHoSoMC ---------------------------------------------------


def test_progress_appends_and_sets_status(portal: Portal) -> None:
    portal.sync(dossier())
    assert portal.progress(step(trang_thai=2)) == {"error_code": 0, "message": "OK"}
    assert portal.progress(step(trang_thai="3", at="20240116090000")) == {"error_code": 0, "message": "OK"}
    state = portal.state("HS-001")
    assert [p["TrangThai"] for p in state["progress"]] == [2, 3]
    assert state["TrangThaiHoSo"] == 3 and state["progress"][0]["NguoiXuLy"] == "Trần B"


def test_progress_repeat_is_acknowledged_duplicate(portal: Portal) -> None:
    portal.sync(dossier())
    portal.progress(step())
    resp = portal.progress(step())
    assert resp == {"error_code": 0, "message": "Tiến độ đã được ghi nhận trước đó", "duplicate": True}
    assert len(portal.state("HS-001")["progress"]) == 1
    # Same status and time but other content (another officer's note) is another step.
    assert portal.progress(step(NoiDungXuLy="Chuyển phòng khác"))["message"] == "OK"
    assert len(portal.state("HS-001")["progress"]) == 2
    # A different time for the same status is a new step.
    assert portal.progress(step(at="20240115100000"))["message"] == "OK"
    assert len(portal.state("HS-001")["progress"]) == 3


def test_progress_batch_with_some_duplicates(portal: Portal) -> None:
    portal.sync(dossier())
    portal.progress(step())
    resp = portal.progress(step(), step(trang_thai=3, at="20240116090000"))
    assert resp == {"error_code": 0, "message": "OK", "duplicates": 1}
    assert len(portal.state("HS-001")["progress"]) == 2


def test_progress_unknown_dossier_changes_nothing(portal: Portal) -> None:
    portal.sync(dossier())
    assert portal.progress(step(), step("HS-404"))["error_code"] == 4
    assert portal.state("HS-001")["progress"] == []


@pytest.mark.parametrize(
    "bad",
    [
        {"ThoiDiemXuLy": None},
        {"ThoiDiemXuLy": "20240115"},
        {"ThoiDiemXuLy": "20241315090000"},
        {"TrangThai": None},
        {"TrangThai": 0},
        {"TrangThai": 11},
        {"NguoiXuLy": "x" * 51},
        {"MaHoSo": ""},
        {"NgayBatDau": "soon"},
        {"NgayKetThucTheoQuyDinh": "20240199000000"},
    ],
)
def test_progress_validation(portal: Portal, bad: dict) -> None:
    portal.sync(dossier())
    assert portal.progress(step() | bad)["error_code"] == 2
    state = portal.state("HS-001")
    assert state["progress"] == [] and state["TrangThaiHoSo"] == 1


def test_progress_accepts_max_length_handler_name(portal: Portal) -> None:
    portal.sync(dossier())
    assert portal.progress(step(NguoiXuLy="x" * 50, NgayBatDau="20240115090000"))["error_code"] == 0


# --- TraCuuHoSo and unknown services --------------------------------------


def test_lookup(portal: Portal) -> None:
    portal.sync(dossier())
    portal.progress(step())
    resp = portal.call("TraCuuHoSo", MaHoSo="HS-001").json
    assert resp["error_code"] == 0 and [d["MaHoSo"] for d in resp["result"]] == ["HS-001"]
    record = resp["result"][0]
    assert record["QuaTrinhXuLy"][0]["TrangThai"] == 2 and record["MaDonVi"] == "000.00.00.H01"
    assert not {"creates", "updates", "progress"} & set(record)  # the mock's own bookkeeping stays its own
    assert portal.call("TraCuuHoSo", mahoso="HS-001").json["result"][0]["MaHoSo"] == "HS-001"  # the old name
    assert portal.call("TraCuuHoSo", MaHoSo="HS-404").json["error_code"] == 4
    assert portal.call("TraCuuHoSo").json["error_code"] == 2


@pytest.mark.parametrize("service", ["XoaHoSo", None, ["DongBoHoSoMC"]])
def test_unknown_service_is_error_2(portal: Portal, service: Any) -> None:
    resp = portal.call(service)
    assert resp.status_code == 200 and resp.json["error_code"] == 2


def test_state_of_unknown_dossier_is_404_json(portal: Portal) -> None:
    resp = portal.client.get(f"{NP}/_mock/state/HS-404")
    assert resp.status_code == 404 and resp.json["error"] == "not_found"


# --- faults -----------------------------------------------------------------


def test_fault_http_500_replaces_the_call(portal: Portal) -> None:
    portal.session  # noqa: B018 - log in before arming
    portal.arm(mode="http_500", count=1)
    resp = portal.call("DongBoHoSoMC", isUpdating=False, data=[dossier()])
    assert resp.status_code == 500 and resp.json["error"]
    assert portal.state() == {}
    assert portal.sync(dossier())["error_code"] == 0  # count used up


def test_fault_error_code_is_transient_busy(portal: Portal) -> None:
    portal.session  # noqa: B018
    portal.arm(mode="error_code", count=2)
    assert portal.sync(dossier()) == {"error_code": 99, "message": "Hệ thống đang bận"}
    assert portal.sync(dossier())["error_code"] == 99
    assert portal.state() == {}
    assert portal.sync(dossier())["error_code"] == 0


def test_fault_timeout_sleeps_then_504_without_effect(portal: Portal) -> None:
    portal.session  # noqa: B018
    portal.arm(mode="timeout", count=1, seconds=0.05)
    started = time.monotonic()
    resp = portal.call("DongBoHoSoMC", isUpdating=False, data=[dossier()])
    assert time.monotonic() - started >= 0.05
    assert resp.status_code == 504 and portal.state() == {}


def test_fault_delay_applies_then_waits(portal: Portal) -> None:
    portal.session  # noqa: B018
    portal.arm(mode="delay", count=1, seconds=0.05)
    started = time.monotonic()
    assert portal.sync(dossier())["error_code"] == 0
    assert time.monotonic() - started >= 0.05
    assert "HS-001" in portal.state()


def test_fault_drop_applies_then_drops(portal: Portal) -> None:
    portal.session  # noqa: B018
    portal.arm(mode="drop", count=1)
    # No socket under the test client: the body aborts instead.
    with pytest.raises(ConnectionDropped):
        portal.call("DongBoHoSoMC", isUpdating=False, data=[dossier()])
    assert "HS-001" in portal.state()
    last = portal.log()["requests"][-1]
    assert last["fault"] == "drop" and last["response"] == {"error_code": 0, "message": "OK"}


def test_fault_applies_only_to_named_services(portal: Portal) -> None:
    portal.session  # noqa: B018
    portal.arm(mode="http_500", count=1, services=["CapNhatTienDoHoSoMC"])
    assert portal.sync(dossier())["error_code"] == 0
    assert portal.call("TraCuuHoSo", mahoso="HS-001").status_code == 200
    assert portal.call("CapNhatTienDoHoSoMC", data=[step()]).status_code == 500
    assert portal.progress(step())["error_code"] == 0


def test_fault_spares_login_unless_named(portal: Portal) -> None:
    portal.arm(mode="http_500", count=1)
    assert portal.login()["error_code"] == 0
    assert portal.token().status_code == 200
    assert portal.client.get(f"{NP}/_mock/faults").json["faults"][0]["count"] == 1
    portal.client.delete(f"{NP}/_mock/faults")
    portal.arm(mode="error_code", count=2, services=["login"])
    assert portal.login()["error_code"] == 99
    assert portal.token().json["error_code"] == 99
    assert portal.login()["error_code"] == 0


def test_fault_applies_to_lgsp_service(portal: Portal) -> None:
    token = portal.token().json["access_token"]
    portal.arm(mode="http_500", count=1, services=["TraCuuHoSo"])
    assert portal.lgsp(token, "TraCuuHoSo", mahoso="x").status_code == 500
    assert portal.lgsp(token, "TraCuuHoSo", mahoso="x").json["error_code"] == 4


# --- inspection and reset -------------------------------------------------


def test_request_log_records_calls(portal: Portal) -> None:
    portal.session  # noqa: B018 - logs in
    portal.sync(dossier())
    portal.client.post(f"{NP}/service", data=b"{oops", content_type="application/json")
    token = portal.token().json["access_token"]
    portal.lgsp(token, "TraCuuHoSo", mahoso="HS-001")
    log = portal.log()
    assert log["total"] == 5 and [r["index"] for r in log["requests"]] == [0, 1, 2, 3, 4]
    login, sync, broken, tok, lgsp = log["requests"]
    assert login["path"] == f"{NP}/login" and login["service"] == "login"
    assert login["headers"] == {"dstcode": "000.00.00.H01", "authorization": False}
    assert login["status"] == 200 and login["response"]["error_code"] == 0 and login["at"]
    assert sync["service"] == "DongBoHoSoMC" and sync["body"]["data"][0]["MaHoSo"] == "HS-001"
    assert sync["response"] == {"error_code": 0, "message": "OK"} and sync["fault"] is None
    assert broken["status"] == 400 and broken["body"] == "{oops" and broken["service"] is None
    assert tok["body"] == {"grant_type": "client_credentials"} and tok["headers"]["authorization"] is True
    assert lgsp["path"] == f"{NP}/lgsp/service" and lgsp["headers"]["authorization"] is True
    assert token not in str(lgsp)  # the Authorization header itself is not logged
    since = portal.log(since=3)
    assert since["total"] == 5 and [r["index"] for r in since["requests"]] == [3, 4]


def test_reset_restores_everything(portal: Portal) -> None:
    portal.client.post(f"{NP}/_mock/config", json={"session_ttl_seconds": 100})
    session = portal.session
    token = portal.token().json["access_token"]
    portal.sync(dossier())
    portal.arm(mode="http_500", count=5)
    assert portal.client.post(f"{NP}/_mock/reset").status_code == 200
    assert portal.state() == {} and portal.log() == {"total": 0, "requests": []}
    assert portal.client.get(f"{NP}/_mock/faults").json == {"faults": []}
    assert portal.client.get(f"{NP}/_mock/config").json["session_ttl_seconds"] == 3600
    assert portal.call("TraCuuHoSo", mahoso="HS-001").json["error_code"] == 401
    assert portal.lgsp(token, "TraCuuHoSo", mahoso="HS-001").status_code == 401
    assert session


# --- real servers ---------------------------------------------------------


@pytest.fixture
def waitress_url() -> Iterator[str]:
    server = create_server(create_app(), host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.task_dispatcher.shutdown(timeout=1)
    # Close every socket from the loop's own thread; an empty map ends the loop.
    server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
    thread.join(timeout=3)
    assert not thread.is_alive()


@pytest.fixture
def werkzeug_url() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=3)


def _raw_post(base: str, path: str, body: dict) -> bytes:
    """POST over a bare socket and return every byte the server sent until it closed."""
    host, port = base.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def _drop_over_http(base: str) -> None:
    http = requests.Session()
    login = {"username": "gateway", "password": "gateway-secret"}
    session = http.post(f"{base}{NP}/login", json=login, headers=DST, timeout=5).json()["session"]
    fault = {"mode": "drop", "count": 2, "services": ["DongBoHoSoMC"]}
    http.post(f"{base}{NP}/_mock/faults", json=fault, timeout=5)
    body = {"session": session, "service": "DongBoHoSoMC", "isUpdating": False, "data": [dossier()]}
    with pytest.raises(requests.ConnectionError):
        http.post(f"{base}{NP}/service", json=body, timeout=5)
    # The effect happened although the client got no answer; a retry is then a conflict.
    assert http.get(f"{base}{NP}/_mock/state/HS-001", timeout=5).json()["creates"] == 1
    # Not even a status line: the connection closes with zero bytes sent.
    assert _raw_post(base, f"{NP}/service", body | {"data": [dossier("HS-002")]}) == b""
    assert http.get(f"{base}{NP}/_mock/state/HS-002", timeout=5).status_code == 200
    assert http.post(f"{base}{NP}/service", json=body, timeout=5).json()["error_code"] == 3
    http.close()


def test_drop_cuts_the_connection_under_waitress(waitress_url: str) -> None:
    _drop_over_http(waitress_url)


def test_drop_cuts_the_connection_under_werkzeug(werkzeug_url: str) -> None:
    _drop_over_http(werkzeug_url)


def test_delay_lets_the_client_time_out_after_the_effect(waitress_url: str) -> None:
    base = waitress_url
    session = requests.post(
        f"{base}{NP}/login", json={"username": "gateway", "password": "gateway-secret"}, headers=DST, timeout=5
    ).json()["session"]
    requests.post(f"{base}{NP}/_mock/faults", json={"mode": "delay", "count": 1, "seconds": 0.3}, timeout=5)
    body = {"session": session, "service": "DongBoHoSoMC", "isUpdating": False, "data": [dossier()]}
    with pytest.raises(requests.Timeout):
        requests.post(f"{base}{NP}/service", json=body, timeout=0.1)
    assert requests.get(f"{base}{NP}/_mock/state/HS-001", timeout=5).status_code == 200


def test_python_m_mocks_serves_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mocks", "--host", "127.0.0.1", "--port", "0", "--smtp-port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        base = line.split("listening on ")[1].split()[0]
        assert requests.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
        login = requests.post(
            f"{base}{NP}/login", json={"username": "gateway", "password": "gateway-secret"}, headers=DST, timeout=5
        )
        assert login.json()["error_code"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- Drift: answered "done", stored otherwise -----------------------------------------------


def drift(portal: Portal) -> list[dict]:
    return portal.client.get(f"{NP}/_mock/drift").json["drift"]


def test_silent_drop_answers_done_and_keeps_nothing(portal: Portal) -> None:
    assert portal.arm(mode="silent_drop", count=1, services=["DongBoHoSoMC"]).status_code == 200
    assert portal.sync(dossier()) == {"error_code": 0, "message": "OK"}
    assert portal.state() == {}
    assert drift(portal) == [{"mode": "silent_drop", "service": "DongBoHoSoMC", "MaHoSo": "HS-001",
                              "updating": False}]
    portal.sync(dossier())
    portal.arm(mode="silent_drop", count=1, services=["CapNhatTienDoHoSoMC"])
    assert portal.progress(step()) == {"error_code": 0, "message": "OK"}
    assert portal.state("HS-001")["progress"] == [] and portal.state("HS-001")["TrangThaiHoSo"] == 1
    portal.progress(step())  # the fault is spent: the same record is kept now
    assert len(portal.state("HS-001")["progress"]) == 1


def test_silent_drop_takes_records_one_by_one_in_a_batch(portal: Portal) -> None:
    portal.arm(mode="silent_drop", count=1)
    portal.sync(dossier(), dossier("HS-002"))
    assert set(portal.state()) == {"HS-002"}


def test_alter_stores_one_field_changed(portal: Portal) -> None:
    portal.arm(mode="alter", count=1, code="ChuHoSo")
    portal.sync(dossier())
    assert portal.state("HS-001")["ChuHoSo"] == "NGUYỄN VĂN A"
    assert drift(portal)[0] | {} == {"mode": "alter", "service": "DongBoHoSoMC", "MaHoSo": "HS-001",
                                     "field": "ChuHoSo", "updating": False}
    portal.arm(mode="alter", count=1, services=["DongBoHoSoMC"])  # no field named: one in turn
    portal.sync(dossier("HS-002"))
    changed = drift(portal)[1]["field"]
    assert portal.state("HS-002")[changed] != dossier("HS-002").get(changed)
    portal.arm(mode="alter", count=1)
    portal.progress(step())  # a progress record is never altered: the fault waits for a dossier record
    assert portal.client.get(f"{NP}/_mock/faults").json["faults"][0]["mode"] == "alter"


def test_an_operator_changes_the_status_and_leaves_a_record(portal: Portal) -> None:
    portal.sync(dossier())
    portal.arm(mode="operator_status", count=1)
    portal.progress(step())
    state = portal.state("HS-001")
    assert state["TrangThaiHoSo"] == 8 and [p["TrangThai"] for p in state["progress"]] == [2, 8]
    assert state["progress"][1]["NguoiXuLy"] == "Quản trị Cổng DVCQG"
    portal.arm(mode="operator_status", count=1, code="5")
    portal.sync({"MaHoSo": "HS-001", "TrangThaiHoSo": 4}, updating=True)
    assert portal.state("HS-001")["TrangThaiHoSo"] == 5
    assert [d["status"] for d in drift(portal)] == [8, 5]


def test_lose_forgets_the_dossier_after_answering_done(portal: Portal) -> None:
    portal.sync(dossier())
    portal.arm(mode="lose", count=1, services=["CapNhatTienDoHoSoMC"])
    assert portal.progress(step()) == {"error_code": 0, "message": "OK"}
    assert portal.state() == {}
    assert portal.call("TraCuuHoSo", MaHoSo="HS-001").json["error_code"] == 4
    assert portal.progress(step(at="20240116090000"))["error_code"] == 4  # what the next write then gets


def test_a_share_of_records_drifts_the_same_way_each_run(portal: Portal) -> None:
    def run() -> list[str]:
        portal.client.post(f"{NP}/_mock/reset")
        portal._session = None
        portal.arm(mode="silent_drop", count=1000, share=0.25)
        for n in range(200):
            portal.sync(dossier(f"HS-{n:03d}"))
        return sorted(d["MaHoSo"] for d in drift(portal))

    first = run()
    assert 25 <= len(first) <= 75 and run() == first  # about a quarter, and the same quarter again


@pytest.mark.parametrize("fault", [{"mode": "silent_drop", "count": 1, "share": 0},
                                   {"mode": "silent_drop", "count": 1, "share": 1.5},
                                   {"mode": "silent_drop", "count": 1, "share": True},
                                   {"mode": "silent_drop", "count": 1, "code": "x"}])
def test_bad_drift_faults_are_refused(portal: Portal, fault: dict) -> None:
    assert portal.arm(**fault).status_code == 400
