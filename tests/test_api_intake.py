"""Filing dossiers: idempotency, validation, bad input, auth, lookup. Runs on both stacks."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from gateway.adapters.national_portal.mapping import dossier_to_dvcqg
from gateway.domain.dossier import DossierIn
from gateway.store.tables import audit_log, dossiers, feed_items, jobs

from .conftest import dossier_body, new_code


def row_counts(gw) -> dict[str, int]:
    """What a filing writes. Workers keep writing their own records meanwhile (job outcomes in the audit
    log, SLA announcements in the feed), so those are left out of the comparison."""
    with gw.gateway.engine.connect() as conn:
        def count(table, *where) -> int:  # noqa: ANN001
            return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()

        return {"dossiers": count(dossiers), "jobs": count(jobs),
                "feed_items": count(feed_items, feed_items.c.type == "dossier.created"),
                "audit_log": count(audit_log, audit_log.c.actor != "worker")}


def test_file_then_read_back(gw):
    body = dossier_body()
    filed = gw.file(body)
    assert filed["status"] == 1 and filed["status_label"] == "Mới đăng ký"
    assert filed["applicant"]["phone"] == "84912345678"
    got = gw.get(f"/api/v1/dossiers/{body['code']}")
    assert got.status_code == 200
    assert got.get_json()["procedure_name"] == "Đăng ký khai sinh" and got.get_json()["history"] == []


def test_same_code_same_body_is_200_and_nothing_new(gw):
    body = dossier_body()
    gw.file(body)
    before = row_counts(gw)
    again = gw.post("/api/v1/dossiers", body)
    assert again.status_code == 200
    assert again.get_json()["code"] == body["code"]
    assert row_counts(gw) == before
    assert len(gw.jobs(body["code"])) == 1


def test_same_code_different_body_is_409(gw):
    body = dossier_body()
    gw.file(body)
    r = gw.post("/api/v1/dossiers", {**body, "summary": "nội dung khác"})
    assert r.status_code == 409
    assert r.get_json()["error"]["code"] == "conflict"
    assert gw.get(f"/api/v1/dossiers/{body['code']}").get_json()["summary"] == body["summary"]


@pytest.mark.parametrize("patch,field", [
    ({"code": "HS-1"}, "code"),
    ({"procedure_code": "abc"}, "procedure_code"),
    ({"level": 7}, "level"),
    ({"fees": [{"code": "A", "name": "Lệ phí", "amount": 10.5}]}, "fees.0.amount"),
    ({"submitted_at": "yesterday"}, "submitted_at"),
])
def test_validation_errors_name_the_field(gw, patch, field):
    before = row_counts(gw)
    r = gw.post("/api/v1/dossiers", dossier_body(**patch))
    assert r.status_code == 422
    error = r.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert field in [d["field"] for d in error["details"]]
    assert row_counts(gw) == before


def test_bad_id_number_refused(gw):
    body = dossier_body()
    body["applicant"]["id_number"] = "0011900"
    r = gw.post("/api/v1/dossiers", body)
    assert r.status_code == 422
    assert "applicant.id_number" in [d["field"] for d in r.get_json()["error"]["details"]]


@pytest.mark.parametrize("data,content_type,status,code", [
    (b'{"code": ', "application/json", 400, "invalid_json"),
    (b"[1, 2]", "application/json", 400, "invalid_json"),
    (b"\xff\xfe", "application/json", 400, "invalid_json"),
    (b"code=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    (b"{}", "text/plain", 415, "unsupported_media_type"),
])
def test_malformed_bodies(gw, data, content_type, status, code):
    before = row_counts(gw)
    r = gw.client.post("/api/v1/dossiers", data=data, content_type=content_type,
                       headers={"Authorization": "Bearer dev-portal-key"})
    assert r.status_code == status
    assert r.get_json()["error"]["code"] == code
    assert row_counts(gw) == before


def test_oversized_body_is_413(gw):
    limit = gw.settings.api.max_body_bytes
    body = dossier_body()
    body["form"] = {"blob": "x" * (limit + 10)}
    r = gw.post("/api/v1/dossiers", body)
    assert r.status_code == 413
    assert r.get_json()["error"]["code"] == "request_entity_too_large"


def test_auth(gw):
    body = dossier_body()
    assert gw.client.post("/api/v1/dossiers", json=body).status_code == 401
    wrong = gw.post("/api/v1/dossiers", body, key="not-a-key")
    assert wrong.status_code == 401 and wrong.get_json()["error"]["code"] == "unauthorized"
    forbidden = gw.post("/api/v1/dossiers", body, key="dev-one-stop-key")
    assert forbidden.status_code == 403 and forbidden.get_json()["error"]["code"] == "forbidden"
    assert gw.get("/ops/dead-letters", key="dev-portal-key").status_code == 403
    assert gw.get(f"/api/v1/dossiers/{body['code']}").status_code == 404  # nothing was filed


def test_unknown_dossier_and_unknown_route_are_json_404(gw):
    r = gw.get(f"/api/v1/dossiers/{new_code()}")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    r = gw.get("/api/v1/nowhere")
    assert r.status_code == 404 and "error" in r.get_json()


def test_lookup_citizen_view(gw):
    body = dossier_body()
    body["applicant"]["id_number"] = "079201000123"
    gw.file(body)
    by_code = gw.get(f"/api/v1/lookup?code={body['code']}", key="dev-portal-key")
    assert by_code.status_code == 200
    item = by_code.get_json()["items"][0]
    assert item == {"code": body["code"], "procedure_name": "Đăng ký khai sinh",
                    "applicant_name": "Nguyễn Thị Hồng Nhung", "received_at": "2024-07-25T09:15:00+07:00",
                    "due_at": None, "status": 1, "status_label": "Mới đăng ký"}
    by_id = gw.get("/api/v1/lookup?id_number=079201000123", key="dev-portal-key").get_json()["items"]
    assert body["code"] in [i["code"] for i in by_id]
    assert "079201000123" not in str(by_id)  # the citizen view never echoes the ID number
    assert gw.get("/api/v1/lookup?id_number=12", key="dev-portal-key").status_code == 400
    assert gw.get("/api/v1/lookup", key="dev-portal-key").status_code == 400
    assert gw.get(f"/api/v1/lookup?code={new_code()}", key="dev-portal-key").status_code == 404


def test_national_portal_files_with_its_own_field_names(gw):
    code = new_code()
    dvcqg = {
        "MaHoSo": code, "MaTTHC": "1.001193.000.00.00.H56", "TenTTHC": "Đăng ký kết hôn", "MucDo": 4,
        "ChuHoSo": "Phạm Thu Hà", "LoaiDoiTuong": 1, "SoDinhDanh": "001190099999", "SoDienThoai": "0987654321",
        "Email": "ha@example.vn", "TinhThanh": "Đà Nẵng", "PhuongXa": "Phường Hải Châu",
        "TrichYeuHoSo": "Đăng ký kết hôn", "NgayNopHoSo": "20240725101500", "KenhThucHien": 2,
        "HinhThucNhanKetQua": "2", "DanhSachLePhi": [{"MaPhiLePhi": "LPKH", "TenPhiLePhi": "Lệ phí", "Gia": 0}],
    }
    url = "/api/v1/callbacks/national-portal/dossiers"
    r = gw.post(url, dvcqg, key="dev-national-portal-key")
    assert r.status_code == 201, r.get_json()
    view = r.get_json()
    assert view["source"] == "national_portal" and view["level"] == "toan_trinh"
    assert view["delivery_method"] == "online" and view["received_at"] == "2024-07-25T10:15:00+07:00"
    assert gw.post(url, dvcqg, key="dev-national-portal-key").status_code == 200
    assert gw.post(url, {**dvcqg, "NgayNopHoSo": "2024-07-25"}, key="dev-national-portal-key").status_code == 422
    assert gw.post(url, dvcqg, key="dev-portal-key").status_code == 403


def test_national_portal_files_a_dongbohosomc_record(gw):
    """The record the gateway itself sends in DongBoHoSoMC is one the callback files."""
    body = dossier_body()
    record = dossier_to_dvcqg({**DossierIn.model_validate(body).model_dump(mode="json"), "status": 1})
    url = "/api/v1/callbacks/national-portal/dossiers"
    r = gw.post(url, record, key="dev-national-portal-key")
    assert r.status_code == 201, r.get_json()
    view = r.get_json()
    assert (view["code"], view["source"], view["status"]) == (body["code"], "national_portal", 1)
    assert view["applicant"]["id_number"] == "001190012345" and view["applicant"]["phone"] == "84912345678"
    assert view["received_at"] == "2024-07-25T09:15:00+07:00" and view["delivery_method"] == "post"
    assert view["fees"] == body["fees"] and view["attachments"][0]["url"] == body["attachments"][0]["url"]
    assert view["level"] == "mot_phan"  # no MucDo and no catalogue entry: national_portal.default_level
    assert gw.get(f"/api/v1/dossiers/{body['code']}").get_json()["procedure_name"] == "Đăng ký khai sinh"
    # Refusals name the portal's field.
    bad_id = {**record, "MaHoSo": new_code(), "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "12"}]}
    r = gw.post(url, bad_id, key="dev-national-portal-key")
    assert r.status_code == 422
    assert [d["field"] for d in r.get_json()["error"]["details"]] == ["DinhDanhCHS.0.SoDinhDanh"]
    no_id = {k: v for k, v in record.items() if k != "DinhDanhCHS"} | {"MaHoSo": new_code()}
    r = gw.post(url, no_id, key="dev-national-portal-key")
    assert r.status_code == 422 and [d["field"] for d in r.get_json()["error"]["details"]] == ["DinhDanhCHS"]


def test_health_and_readiness(gw):
    assert gw.client.get("/healthz").get_json() == {"status": "ok"}
    ready = gw.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.parametrize("raw,why", [
    (b'{"code": NaN}', "NaN"),
    (b'{"a": Infinity}', "Infinity"),
    (b"[" * 100_000 + b"]" * 100_000, "nested"),
    (b'{"code": "x\\u0000y"}', "NUL"),
])
def test_hostile_json_is_a_400(gw, raw, why):
    before = row_counts(gw)
    r = gw.client.post("/api/v1/dossiers", data=raw, content_type="application/json",
                       headers={"Authorization": "Bearer dev-portal-key"})
    assert r.status_code == 400, why
    assert r.get_json()["error"]["code"] == "invalid_json"
    assert row_counts(gw) == before


def test_nul_inside_free_form_data_is_refused(gw):
    r = gw.post("/api/v1/dossiers", dossier_body(form={"ghi_chu": "a\u0000b"}))
    assert r.status_code == 400


def test_unpaired_surrogate_inside_free_form_data_is_refused(gw):
    before = row_counts(gw)
    raw = json.dumps(dossier_body(form={"ghi_chu": "a\udc00b"}))  # escaped as \\udc00: valid JSON, no UTF-8
    r = gw.client.post("/api/v1/dossiers", data=raw, content_type="application/json",
                       headers={"Authorization": "Bearer dev-portal-key"})
    assert r.status_code == 400 and "surrogate" in r.get_json()["error"]["message"]
    assert row_counts(gw) == before


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "1990-01-01T00:00:00"])
def test_absurd_dates_are_422(gw, when):
    r = gw.post("/api/v1/dossiers", dossier_body(submitted_at=when))
    assert r.status_code == 422


def test_database_down_is_503_not_500(gw, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def refuse(*args, **kwargs):
        raise OperationalError("connect", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(gw.gateway.engine, "begin", refuse)
    monkeypatch.setattr(gw.gateway.engine, "connect", refuse)
    r = gw.post("/api/v1/dossiers", dossier_body())
    assert r.status_code == 503
    assert r.get_json()["error"]["code"] == "database_unavailable" and r.headers["Retry-After"] == "2"


def test_openapi_document_is_built_from_the_routes_and_models(gw):
    doc = gw.client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    routes = {(r.rule, m) for r in gw.app.url_map.iter_rules()
              if r.endpoint != "static" and not r.endpoint.startswith("console.")  # HTML pages, not API
              for m in r.methods - {"HEAD", "OPTIONS"}}
    import re

    documented = {(re.sub(r"\{(\w+)\}", r"<\1>", p), m.upper()) for p, ops in doc["paths"].items() for m in ops}
    assert {(re.sub(r"<\w+:", "<", r), m) for r, m in routes} == documented
    filing = doc["paths"]["/api/v1/dossiers"]["post"]
    assert filing["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/DossierIn"}
    assert filing["security"] and "portal" in filing["description"]
    schema = doc["components"]["schemas"]["DossierIn"]
    assert "code" in schema["required"] and schema["additionalProperties"] is False
    assert "Fee" in doc["components"]["schemas"] and "StepBatch" in doc["components"]["schemas"]
    assert "security" not in doc["paths"]["/healthz"]["get"]
