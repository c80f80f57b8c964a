"""The national portal (DVCQG) as public material shows it: tests/conformance/national_portal/ (see its README).

Each example answer is one our client reads correctly; what our client sends has the fields and types the
example requests show; each example request is accepted by our mock; the portal's own dossier records are
ones our intake files (or refuses for a reason it names); our code tables agree with the published ones.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import responses
from flask.testing import FlaskClient

from gateway.adapters.base import PermanentError
from gateway.adapters.national_portal import NationalPortalClient
from gateway.adapters.national_portal.mapping import (
    DELIVERY_TO_HINH_THUC,
    ID_KIND_BY_LENGTH,
    DvcqgDossierIn,
    dossier_to_dvcqg,
    event_to_progress,
)
from gateway.config import NationalPortalSettings
from gateway.domain.codes import APPLICANT_TYPES, CHANNELS, STATUS_LABELS_VI
from gateway.domain.dossier import DossierIn
from mocks.provincial_portal import sample_dossier
from mocks.server import create_app

HERE = Path(__file__).parent / "conformance" / "national_portal"
BASE = "http://portal.test/dvcqg"
DATE = re.compile(r"^(\d{14})?$")
DATE_FIELDS = {"NgayTiepNhan", "NgayHenTra", "NgayTra", "NgayKetThucXuLy", "NgayNopHoSo", "NgayTuChoi",
               "ThoiDiemXuLy", "NgayBatDau", "NgayKetThucTheoQuyDinh"}


def example(name: str) -> Any:
    return json.loads((HERE / name).read_text(encoding="utf-8"))


def examples(pattern: str) -> list[str]:
    names = sorted(p.name for p in HERE.glob(pattern))
    assert names, f"no example matches {pattern}"
    return names


def settings(**kw: Any) -> NationalPortalSettings:
    return NationalPortalSettings(**{"base_url": BASE, "unit_code": "000.00.17.H31", "password": "x",
                                     "timeout_seconds": 1.0, **kw})


def snapshot() -> dict[str, Any]:
    body = DossierIn.model_validate(sample_dossier("000.00.17.H31-240725-0001")).model_dump(mode="json")
    return {**body, "status": 2, "due_at": "2024-07-30T17:00:00+07:00"}


def sent_bodies(rsps: responses.RequestsMock, path: str) -> list[dict[str, Any]]:
    return [json.loads(c.request.body) for c in rsps.calls if c.request.url == f"{BASE}{path}"]


def json_type(value: Any) -> str:
    return {str: "string", list: "array", dict: "object", bool: "boolean", int: "number", float: "number",
            type(None): "null"}[type(value)]


# --- Our client reads every example answer ----------------------------------------------------------


@pytest.mark.parametrize("login", examples("login.answer.*.json"))
@pytest.mark.parametrize("answer", examples("dongbohosomc.answer.ok*.json"))
def test_client_reads_login_and_sync_answers(login: str, answer: str) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/login", json=example(login))
        rsps.post(f"{BASE}/service", json=example(answer))
        NationalPortalClient(settings()).sync_dossier({"dossier": snapshot(), "updating": False})
        [sync] = sent_bodies(rsps, "/service")
    assert sync["session"] == example(login)["session"]  # the session the answer gave is the one used
    assert sync["isUpdating"] == "False"


@pytest.mark.parametrize("answer", examples("dongbohosomc.answer.exists*.json"))
def test_client_turns_an_already_exists_answer_into_an_update(answer: str) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/login", json=example("login.answer.ok.json"))
        rsps.post(f"{BASE}/service", json=example(answer))
        rsps.post(f"{BASE}/service", json=example("dongbohosomc.answer.ok.json"))
        NationalPortalClient(settings()).sync_dossier({"dossier": snapshot(), "updating": False})
        assert [b["isUpdating"] for b in sent_bodies(rsps, "/service")] == ["False", "True"]


def test_client_reads_the_progress_answer() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/login", json=example("login.answer.ok-string-code.json"))
        rsps.post(f"{BASE}/service", json=example("capnhattiendohosomc.answer.ok.json"))
        NationalPortalClient(settings()).report_progress(
            {"code": "000.00.17.H31-240725-0001", "event": {"status": 2, "at": "2024-07-26T08:00:00+07:00"}})
        [body] = sent_bodies(rsps, "/service")
    assert body["service"] == "CapNhatTienDoHoSoMC"


def test_a_refused_answer_in_the_examples_shape_is_permanent() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/login", json=example("login.answer.ok.json"))
        rsps.post(f"{BASE}/service", json={**example("dongbohosomc.answer.ok-string-code.json"), "error_code": "2"})
        with pytest.raises(PermanentError):
            NationalPortalClient(settings()).sync_dossier({"dossier": snapshot(), "updating": True})


# --- What our client sends has the examples' fields and types ----------------------------------------


def our_requests() -> dict[str, Any]:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/login", json=example("login.answer.ok.json"))
        rsps.post(f"{BASE}/service", json=example("dongbohosomc.answer.ok.json"))
        client = NationalPortalClient(settings())
        client.sync_dossier({"dossier": snapshot(), "updating": False})
        client.sync_dossier({"dossier": snapshot(), "updating": True})
        client.report_progress({"code": "000.00.17.H31-240725-0001",
                                "event": {"status": 4, "at": "2024-07-26T08:00:00+07:00", "officer": "Lê Văn C"}})
        [login] = rsps.calls[:1]
        create, update, progress = sent_bodies(rsps, "/service")
    return {"login": login, "create": create, "update": update, "progress": progress}


def test_login_sends_the_examples_fields_and_the_dstcode_header() -> None:
    login = our_requests()["login"].request
    assert set(json.loads(login.body)) == set(example("login.request.opencps.json"))
    assert login.headers["dstcode"] == "000.00.17.H31"


@pytest.mark.parametrize("ours,name", [("create", "dongbohosomc.request.opencps.json"),
                                       ("update", "dongbohosomc.request.opencps-update.json"),
                                       ("progress", "capnhattiendohosomc.request.opencps.json")])
def test_envelope_has_the_examples_fields_and_types(ours: str, name: str) -> None:
    sent, shown = our_requests()[ours], example(name)
    assert {k: json_type(v) for k, v in sent.items()} == {k: json_type(v) for k, v in shown.items()}
    assert sent["service"] == shown["service"] and sent.get("isUpdating") == shown.get("isUpdating")


def assert_same_shape(sent: dict[str, Any], shown: dict[str, Any], where: str) -> None:
    """Every field we send that the example has is of the example's type, list items included; dates as shown."""
    for key in sent.keys() & shown.keys():
        assert json_type(sent[key]) == json_type(shown[key]), f"{where}.{key}"
        if key in DATE_FIELDS:
            assert DATE.match(sent[key]), f"{where}.{key}: {sent[key]!r}"
        if isinstance(sent[key], list) and sent[key] and shown[key]:
            for i, item in enumerate(sent[key]):
                assert_same_shape(item, shown[key][0], f"{where}.{key}.{i}")


def test_dossier_record_has_every_field_opencps_sends_with_its_type() -> None:
    [record] = our_requests()["create"]["data"]
    [shown] = example("dongbohosomc.request.opencps.json")["data"]
    # OpenCPS marks some fields "ko bb" (không bắt buộc: not required); the gateway has no data for them.
    not_required = {"ThongTinKhac", "Fax", "ThongTinTra", "NgayKetThucXuLy", "GhiChu", "DanhSachTepDinhKemKhac",
                    "DanhSachHoSoBoSung"}
    assert set(shown) - set(record) == not_required
    assert_same_shape(record, shown, "record")


def test_dossier_record_has_the_newer_records_types() -> None:
    [record] = our_requests()["create"]["data"]
    [shown] = example("dongbohosomc.request.dvc-td.json")["data"]
    assert {"DinhDanhCHS", "DanhSachLePhi", "TaiLieuNop"} <= set(record)
    assert_same_shape(record, shown, "record")
    assert record["DinhDanhCHS"] == [{"LoaiDinhDanh": "1", "SoDinhDanh": "001190012345"}]


def test_progress_record_has_exactly_the_examples_fields_all_text() -> None:
    [step] = our_requests()["progress"]["data"]
    [shown] = example("capnhattiendohosomc.request.opencps.json")["data"]
    assert set(step) == set(shown)
    assert_same_shape(step, shown, "progress")
    assert event_to_progress("X", {"status": 2, "at": "2024-07-26T08:00:00+07:00"})["TrangThai"] == "2"


# --- Our mock accepts every example request ---------------------------------------------------------


@pytest.fixture
def mock_portal() -> FlaskClient:
    return create_app().test_client()


def mock_session(client: FlaskClient) -> str:
    body = {"username": "gateway", "password": "gateway-secret"}
    reply = client.post("/national-portal/login", json=body, headers={"dstcode": "000.00.17.H31"}).json
    assert reply["error_code"] == 0
    return reply["session"]


def test_mock_takes_the_examples_login_and_answers_in_its_shape(mock_portal: FlaskClient) -> None:
    body = example("login.request.opencps.json")
    mock_portal.post("/national-portal/_mock/config", json=body)  # the example's credentials are the mock's
    reply = mock_portal.post("/national-portal/login", json=body, headers={"dstcode": "000.00.17.H31"}).json
    assert reply["error_code"] == 0
    assert {k: json_type(v) for k, v in reply.items()} == {
        k: json_type(v) for k, v in example("login.answer.ok.json").items()}


# Creates before the update and the lookup that need them.
MOCK_ORDER = ["dongbohosomc.request.opencps.json", "dongbohosomc.request.dvc-td.json",
              "dongbohosomc.request.opencps-update.json", "capnhattiendohosomc.request.opencps.json",
              "tracuuhoso.request.opencps.json"]


def test_every_example_request_is_listed_for_the_mock() -> None:
    assert set(MOCK_ORDER) == set(examples("*.request.*.json")) - {"login.request.opencps.json"}


def test_mock_accepts_every_example_request(mock_portal: FlaskClient) -> None:
    session = mock_session(mock_portal)
    for name in MOCK_ORDER:
        body = {**copy.deepcopy(example(name)), "session": session}
        reply = mock_portal.post("/national-portal/service", json=body).json
        assert reply["error_code"] == 0, (name, reply)
    # The lookup answers as OpenCPS reads it: the dossier in a "result" list, with the update applied.
    lookup = mock_portal.post("/national-portal/service",
                              json={**example("tracuuhoso.request.opencps.json"), "session": session}).json
    assert [d["MaHoSo"] for d in lookup["result"]] == ["000.00.17.H31-240725-0001"]
    assert lookup["result"][0]["TrangThaiHoSo"] == 2  # the progress step (TrangThai "2") was the last word


def test_mock_answers_a_second_create_the_way_the_examples_do(mock_portal: FlaskClient) -> None:
    session = mock_session(mock_portal)
    body = {**example("dongbohosomc.request.opencps.json"), "session": session}
    assert mock_portal.post("/national-portal/service", json=body).json["error_code"] == 0
    again = mock_portal.post("/national-portal/service", json=body).json
    assert again["error_code"] == 3 and "đã tồn tại" in again["message"]


# --- The portal's own dossier records, handed to our intake ----------------------------------------


def test_newer_record_is_filed_as_a_dossier() -> None:
    [record] = example("dongbohosomc.request.dvc-td.json")["data"]
    dossier = DossierIn.model_validate(DvcqgDossierIn.model_validate(record).to_dossier())
    assert dossier.applicant.id_number == "001190099999" and dossier.applicant.phone == "84987654321"
    assert dossier.submitted_at.isoformat() == "2024-07-25T10:15:00+07:00" and dossier.delivery_method == "post"
    assert [(f.code, f.amount) for f in dossier.fees] == [("1", 20000)]
    assert [(a.id, a.component_code, a.url) for a in dossier.attachments] == [
        ("TaiLieuNop-1", "TK01", "https://motcua.example.gov.vn/files/tkkh.pdf")]  # no TepDinhKemId: numbered
    assert dossier.level == "mot_phan"  # no MucDo: the default level


def test_removed_attachments_are_left_out() -> None:
    [record] = example("dongbohosomc.request.dvc-td.json")["data"]
    shown = record["TaiLieuNop"][0]
    record["TaiLieuNop"] = [{**shown, "IsDeleted": "1"}, {**shown, "IsDeleted": "0"}]
    assert [a["id"] for a in DvcqgDossierIn.model_validate(record).to_dossier()["attachments"]] == ["TaiLieuNop-2"]


def test_opencps_record_lacks_only_the_identity() -> None:
    # OpenCPS's record (an older reading of the guide) names no applicant identity: that alone is refused.
    [record] = example("dongbohosomc.request.opencps.json")["data"]
    with pytest.raises(ValueError) as exc:
        DvcqgDossierIn.model_validate(record)
    assert [e["loc"] for e in exc.value.errors()] == [("DinhDanhCHS",)]
    filed = DvcqgDossierIn.model_validate({**record, "DinhDanhCHS": [{"LoaiDinhDanh": "1",
                                                                      "SoDinhDanh": "001190012345"}]})
    assert DossierIn.model_validate(filed.to_dossier()).delivery_method == "counter"


# --- Code tables --------------------------------------------------------------------------------------


def test_our_code_tables_agree_with_the_published_ones() -> None:
    codes = example("codes.json")
    assert {str(int(s)): label for s, label in STATUS_LABELS_VI.items()} == codes["TrangThaiHoSo"]
    assert {str(c) for c in CHANNELS} == set(codes["KenhThucHien"])
    assert {str(t) for t in APPLICANT_TYPES} == set(codes["LoaiDoiTuong"])
    assert {str(kind) for kind in ID_KIND_BY_LENGTH.values()} == set(codes["LoaiDinhDanh"])
    assert ID_KIND_BY_LENGTH == {12: "1", 9: "2"}
    published = set(codes["HinhThuc"])
    assert {DELIVERY_TO_HINH_THUC["counter"], DELIVERY_TO_HINH_THUC["post"]} == published  # "2" (online) is ours


def test_the_record_we_send_is_one_our_intake_files() -> None:
    record = dossier_to_dvcqg(snapshot())
    assert DossierIn.model_validate(DvcqgDossierIn.model_validate(record).to_dossier()).code == record["MaHoSo"]


# --- LGSP: the lgspaccesstoken header ----------------------------------------------------------------


def test_lgsp_access_token_is_base64_json_of_the_credentials_in_opencps_order() -> None:
    from gateway.adapters.national_portal.client import lgsp_access_token

    token = lgsp_access_token("ak", "sk", "motcua", "000.00.17.H31")
    decoded = base64.b64decode(token).decode()
    assert list(json.loads(decoded)) == ["AccessKey", "SecretKey", "AppName", "PartnerCode", "PartnerCodeCus"]
    assert json.loads(decoded) == {"AccessKey": "ak", "SecretKey": "sk", "AppName": "motcua",
                                   "PartnerCode": "000.00.17.H31", "PartnerCodeCus": ""}


def test_client_sends_lgspaccesstoken_on_the_token_request_and_each_call() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/lgsp/token", json={"access_token": "t-1", "token_type": "Bearer", "expires_in": 3600})
        rsps.post(f"{BASE}/lgsp/service", json=example("dongbohosomc.answer.ok-string-code.json"))
        client = NationalPortalClient(settings(flavour="lgsp", lgsp_access_token="QUJD"))
        client.sync_dossier({"dossier": snapshot(), "updating": False})
        token_call, service_call = rsps.calls
    assert token_call.request.headers["lgspaccesstoken"] == "QUJD"
    assert "Authorization" not in token_call.request.headers  # no client id configured: the header alone
    assert token_call.request.body == "grant_type=client_credentials"
    assert service_call.request.headers["lgspaccesstoken"] == "QUJD"
    assert service_call.request.headers["Authorization"] == "Bearer t-1"


def test_mock_issues_a_token_for_its_lgspaccesstoken(mock_portal: FlaskClient) -> None:
    mock_portal.post("/national-portal/_mock/config", json={"lgsp_access_token": "QUJD"})
    form = {"grant_type": "client_credentials"}
    ok = mock_portal.post("/national-portal/lgsp/token", data=form, headers={"lgspaccesstoken": "QUJD"})
    assert ok.status_code == 200 and ok.json["access_token"]
    wrong = mock_portal.post("/national-portal/lgsp/token", data=form, headers={"lgspaccesstoken": "WFla"})
    assert wrong.status_code == 401
