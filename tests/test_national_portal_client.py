"""The DVCQG client against the real mock server (session and LGSP), and HTTP error kinds via responses."""

from __future__ import annotations

import pytest
import requests
import responses

from gateway.adapters.base import PermanentError, RetryableError, ThrottledError
from gateway.adapters.national_portal import NationalPortalClient
from gateway.config import NationalPortalSettings
from gateway.domain.dossier import DossierIn

from .conftest import NationalPortalMock, dossier_body, mock_server


@pytest.fixture(scope="module")
def portal(tmp_path_factory) -> NationalPortalMock:
    server = mock_server(tmp_path_factory.mktemp("np-client"))
    yield NationalPortalMock(server)
    server.stop()


@pytest.fixture(autouse=True)
def _clean(portal):
    portal.reset()


def settings(portal: NationalPortalMock, **kw) -> NationalPortalSettings:
    defaults = {"base_url": portal.base, "password": "gateway-secret", "lgsp_client_id": "gateway-lgsp",
                "lgsp_client_secret": "lgsp-secret", "timeout_seconds": 1.0}
    return NationalPortalSettings(**{**defaults, **kw})


def snapshot(**kw) -> dict:
    return {**DossierIn.model_validate(dossier_body(**kw)).model_dump(mode="json"), "status": 1, "due_at": None}


def step(code: str, status: int, at: str = "2024-07-26T08:00:00+07:00") -> dict:
    return {"code": code, "event": {"status": status, "at": at, "officer": "Lê Văn Cường"}}


@pytest.mark.parametrize("flavour", ["session", "lgsp"])
def test_create_then_progress(portal, flavour):
    client = NationalPortalClient(settings(portal, flavour=flavour))
    snap = snapshot()
    client.sync_dossier({"dossier": snap, "updating": False})
    client.report_progress(step(snap["code"], 2))
    state = portal.dossier(snap["code"])
    assert state["creates"] == 1 and state["ChuHoSo"] == "Nguyễn Thị Hồng Nhung"
    assert [p["TrangThai"] for p in state["progress"]] == [2]
    logins = [r for r in portal.requests() if r["service"] == "login"]
    assert len(logins) == 1  # the session (or token) is reused


def test_session_login_carries_dstcode(portal):
    client = NationalPortalClient(settings(portal, unit_code="000.00.00.H31"))
    client.sync_dossier({"dossier": snapshot(), "updating": False})
    login = next(r for r in portal.requests() if r["service"] == "login")
    assert login["headers"]["dstcode"] == "000.00.00.H31"
    call = next(r for r in portal.requests() if r["service"] == "DongBoHoSoMC")
    assert call["body"]["madonvi"] == "000.00.00.H31" and call["body"]["session"]


@pytest.mark.parametrize("flavour", ["session", "lgsp"])
def test_relogin_when_the_credential_expires(portal, flavour):
    client = NationalPortalClient(settings(portal, flavour=flavour))
    snap = snapshot()
    client.sync_dossier({"dossier": snap, "updating": False})
    portal.expire_sessions()
    client.report_progress(step(snap["code"], 2))
    assert [p["TrangThai"] for p in portal.dossier(snap["code"])["progress"]] == [2]
    assert len([r for r in portal.requests() if r["service"] == "login"]) == 2


def test_already_exists_becomes_an_update(portal):
    client = NationalPortalClient(settings(portal))
    snap = snapshot()
    client.sync_dossier({"dossier": snap, "updating": False})
    client.sync_dossier({"dossier": {**snap, "status": 2, "due_at": "2024-07-30T17:00:00+07:00"}, "updating": False})
    state = portal.dossier(snap["code"])
    assert state["creates"] == 1 and state["updates"] == 1 and state["NgayHenTra"] == "20240730170000"


def test_repeated_progress_has_no_second_effect(portal):
    client = NationalPortalClient(settings(portal))
    snap = snapshot()
    client.sync_dossier({"dossier": snap, "updating": False})
    client.report_progress(step(snap["code"], 2))
    client.report_progress(step(snap["code"], 2))
    assert len(portal.dossier(snap["code"])["progress"]) == 1


@pytest.mark.parametrize("mode,extra", [("http_500", {}), ("error_code", {}), ("timeout", {"seconds": 3}),
                                        ("drop", {})])
def test_transient_failures_are_retryable(portal, mode, extra):
    client = NationalPortalClient(settings(portal))
    portal.faults(mode, 1, **extra)
    with pytest.raises(RetryableError):
        client.sync_dossier({"dossier": snapshot(), "updating": False})


def test_progress_for_unknown_dossier_is_permanent(portal):
    client = NationalPortalClient(settings(portal))
    with pytest.raises(PermanentError, match="error_code 4"):
        client.report_progress(step("000.00.17.H31-240725-0999", 2))


def test_wrong_password_is_retryable_not_fatal(portal):
    client = NationalPortalClient(settings(portal, password="wrong"))
    with pytest.raises(RetryableError, match="login refused"):
        client.sync_dossier({"dossier": snapshot(), "updating": False})


@responses.activate
@pytest.mark.parametrize("status,kind", [(429, ThrottledError), (408, RetryableError), (503, RetryableError),
                                         (400, PermanentError), (403, PermanentError)])
def test_http_status_kinds(status, kind):
    base = "http://np.invalid/national-portal"
    responses.post(f"{base}/login", json={"error_code": 0, "session": "s"})
    responses.post(f"{base}/service", status=status, json={"message": "no"}, headers={"Retry-After": "7"})
    client = NationalPortalClient(NationalPortalSettings(base_url=base, password="p"))
    with pytest.raises(kind) as info:
        client.sync_dossier({"dossier": snapshot(), "updating": False})
    if kind is ThrottledError:
        assert info.value.retry_after == 7.0


@responses.activate
def test_connection_refused_is_retryable():
    base = "http://np.invalid/national-portal"
    responses.post(f"{base}/login", body=requests.ConnectionError("refused"))
    client = NationalPortalClient(NationalPortalSettings(base_url=base, password="p"))
    with pytest.raises(RetryableError):
        client.sync_dossier({"dossier": snapshot(), "updating": False})


def test_progress_batch_is_one_call_and_isolates_a_bad_record(portal):
    client = NationalPortalClient(settings(portal))
    a, b = snapshot(), snapshot()
    client.sync_dossier_many([{"dossier": a, "updating": False}, {"dossier": b, "updating": False}])
    assert portal.dossier(a["code"])["creates"] == 1 and portal.dossier(b["code"])["creates"] == 1
    before = len(portal.requests())
    assert client.report_progress_many([step(a["code"], 2), step(b["code"], 2)]) == [None, None]
    assert len(portal.requests()) == before + 1  # one call for the whole batch
    results = client.report_progress_many([step(a["code"], 4), step("000.00.17.H31-240725-0998", 2),
                                           step(b["code"], 4)])
    assert results[0] is None and results[2] is None and isinstance(results[1], PermanentError)
    assert [p["TrangThai"] for p in portal.dossier(a["code"])["progress"]] == [2, 4]
    assert [p["TrangThai"] for p in portal.dossier(b["code"])["progress"]] == [2, 4]


def test_dossier_batch_with_one_already_there_falls_back_to_updates(portal):
    client = NationalPortalClient(settings(portal))
    old, new = snapshot(), snapshot()
    client.sync_dossier({"dossier": old, "updating": False})
    results = client.sync_dossier_many([{"dossier": {**old, "status": 2}, "updating": False},
                                        {"dossier": new, "updating": False}])
    assert results == [None, None]
    assert portal.dossier(old["code"])["updates"] == 1 and portal.dossier(new["code"])["creates"] == 1


def test_a_failed_batch_call_fails_every_job_in_it(portal):
    client = NationalPortalClient(settings(portal))
    a, b = snapshot(), snapshot()
    portal.faults("http_500", 1)
    results = client.sync_dossier_many([{"dossier": a, "updating": False}, {"dossier": b, "updating": False}])
    assert all(isinstance(r, RetryableError) for r in results)
    assert portal.dossier(a["code"]) is None and portal.dossier(b["code"]) is None


# --- TraCuuHoSo: reading a dossier back, whatever the portal answers -----------------------------------------


def test_lookup_reads_the_record_with_its_progress(portal):
    client = NationalPortalClient(settings(portal, unit_code="000.00.00.H31"))
    snap = snapshot()
    assert client.lookup(snap["code"]) == []
    client.sync_dossier({"dossier": snap, "updating": False})
    client.report_progress(step(snap["code"], 2))
    [record] = client.lookup(snap["code"])
    assert record["MaHoSo"] == snap["code"] and record["MaDonVi"] == "000.00.00.H31"
    assert [p["TrangThai"] for p in record["QuaTrinhXuLy"]] == [2]
    portal.faults("http_500", 1, services=["TraCuuHoSo"])
    with pytest.raises(RetryableError):
        client.lookup(snap["code"])


LOOKUP = "http://portal.test/service"


def lookup_answer(**kw) -> NationalPortalClient:
    base = "http://portal.test"
    responses.post(f"{base}/login", json={"error_code": 0, "session": "s"})
    responses.post(f"{base}/service", **kw)
    return NationalPortalClient(NationalPortalSettings(base_url=base, password="x", timeout_seconds=1.0,
                                                       reconcile={"lookup_max_bytes": 4096}))


CODE = "000.00.17.H31-240725-0001"


@responses.activate
@pytest.mark.parametrize("answer, found", [
    ({"json": {"error_code": 4, "message": "Không tìm thấy"}}, []),
    ({"json": {"error_code": 0, "result": []}}, []),
    ({"json": {"error_code": "0"}}, []),  # no result list: OpenCPS reads it as not synced
    ({"json": {"error_code": 0, "result": [{"MaHoSo": CODE, "TrangThaiHoSo": "4"}]}},
     [{"MaHoSo": CODE, "TrangThaiHoSo": "4"}]),
    ({"json": {"error_code": 0, "result": [{"MaHoSo": CODE, "ChuHoSo": "x" * 3000}]}},
     [{"MaHoSo": CODE, "ChuHoSo": "x" * 500}]),  # kept bounded
])
def test_lookup_answers(answer, found):
    assert lookup_answer(**answer).lookup(CODE) == found


@responses.activate
@pytest.mark.parametrize("answer, why", [
    ({"body": "<html>Bảo trì hệ thống</html>", "content_type": "text/html"}, "without error_code"),
    ({"json": {"error_code": 0, "result": "HS"}}, "not a list"),
    ({"json": {"error_code": 0, "result": [["x"]]}}, "other than records"),
    ({"json": {"error_code": 0, "result": [{"MaHoSo": "000.00.17.H31-240725-9999"}]}}, "other dossiers"),
    ({"json": {"error_code": 0, "result": [{"MaHoSo": CODE, "QuaTrinhXuLy": "x"}]}}, "QuaTrinhXuLy"),
    ({"json": {"error_code": 2, "message": "Dữ liệu không hợp lệ"}}, "error_code 2"),
    ({"json": {"error_code": 0, "result": [{"MaHoSo": CODE, "TrichYeuHoSo": "y" * 9000}]}}, "larger than 4096"),
    ({"body": "[" * 100_000, "content_type": "application/json"}, "larger than"),
    ({"body": '{"error_code": 0, "result": ' + "[" * 1500 + "]" * 1500 + "}",
      "content_type": "application/json"}, "without error_code"),
])
def test_lookup_answers_not_trusted(answer, why):
    from gateway.adapters.base import UnreadableAnswer

    with pytest.raises(UnreadableAnswer, match=why):
        lookup_answer(**answer).lookup(CODE)


@responses.activate
@pytest.mark.parametrize("answer", [{"json": {"error_code": 99}}, {"status": 503, "body": "x" * 100_000}])
def test_lookup_busy_or_down_is_retryable(answer):
    with pytest.raises(RetryableError):
        lookup_answer(**answer).lookup(CODE)
