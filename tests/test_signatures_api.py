"""POST /api/v1/signatures/verify, /ops/trust, and the verification of a filed dossier's PDF attachments,
on both stacks, through the real sandbox processes (and, for attachments, a real worker)."""

from __future__ import annotations

import base64
import io

import pytest
import requests
from cryptography.hazmat.primitives import hashes

from gateway.config import SignatureSettings
from gateway.services.dossiers.signatures import Signatures
from gateway.signature.sandbox import VerificationRefused
from mocks.pki import change_page_text, one_page_pdf, sign

from . import signature_fixtures as bad
from .conftest import dossier_body, wait_for
from .test_payments import feed

ONE_STOP = {"Authorization": "Bearer dev-one-stop-key"}
PORTAL = {"Authorization": "Bearer dev-portal-key"}
OPS = {"Authorization": "Bearer dev-ops-key"}


@pytest.fixture
def signed(stack) -> bytes:
    return sign(one_page_pdf(), stack.pki.signer)


def verify(gw, body: bytes, headers=ONE_STOP, content_type: str = "application/pdf"):  # noqa: ANN001, ANN201
    return gw.client.post("/api/v1/signatures/verify", data=body, headers={**headers, "Content-Type": content_type})


def test_a_signed_pdf_gets_its_report(gw, signed):
    r = verify(gw, signed)
    assert r.status_code == 200, r.get_json()
    report = r.get_json()
    assert report["indication"] == "TOTAL_PASSED"
    assert report["signatures"][0]["signer"]["name"] == "Nguyễn Văn An"
    assert report["summary"] == {"vi": "Tất cả 1 chữ ký số hợp lệ.", "en": "All 1 signature(s) are valid."}
    assert r.headers["Content-Type"].startswith("application/json")


def test_the_portal_may_upload_as_a_form(gw, signed, stack):
    tampered = change_page_text(signed)
    r = gw.client.post("/api/v1/signatures/verify", headers=PORTAL,
                       data={"file": (io.BytesIO(tampered), "giay-khai-sinh.pdf", "application/pdf")})
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["indication"], r.get_json()["sub_indication"]) == ("TOTAL_FAILED", "FORMAT_FAILURE")
    missing = gw.client.post("/api/v1/signatures/verify", headers=PORTAL, data={"other": "x"},
                             content_type="multipart/form-data")
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (400, "missing_file")


def test_only_one_stop_and_portal_keys_may_verify(gw, signed):
    assert gw.client.post("/api/v1/signatures/verify", data=signed,
                          headers={"Content-Type": "application/pdf"}).status_code == 401
    r = verify(gw, signed, headers=OPS)
    assert (r.status_code, r.get_json()["error"]["code"]) == (403, "forbidden")


@pytest.mark.parametrize(("body", "content_type", "status", "code"), [
    (b"", "application/pdf", 400, "empty_body"),
    (b"%PDF-1.7 ...", "text/plain", 415, "unsupported_media_type"),
    (b"GIF89a not a pdf", "application/pdf", 422, "not_a_pdf"),
    (b"%PDF-1.7\n1 0 obj << /Type /Catalog", "application/pdf", 422, "malformed_pdf"),
], ids=["empty", "wrong-type", "not-a-pdf", "truncated"])
def test_bad_uploads_get_a_precise_4xx(gw, body, content_type, status, code):
    r = verify(gw, body, content_type=content_type)
    assert (r.status_code, r.get_json()["error"]["code"]) == (status, code)


@pytest.mark.parametrize("make", [bad.broken_xref, lambda s: bad.encrypted(), lambda s: bad.deeply_nested()],
                         ids=["broken-xref", "encrypted", "deeply-nested"])
def test_broken_files_are_422_never_500(gw, signed, make):
    r = verify(gw, make(signed))
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["error"]["code"] in {"malformed_pdf", "encrypted_pdf"}


def test_a_broken_signature_is_a_report_not_an_error(gw, signed):
    r = verify(gw, bad.zero_contents(signed))
    assert r.status_code == 200
    assert r.get_json()["signatures"][0]["sub_indication"] == "FORMAT_FAILURE"


def test_a_pdf_over_the_size_cap_is_413_unread(gw, stack):
    limit = stack.settings.signature.max_pdf_bytes
    r = verify(gw, b"%PDF-1.7\n" + b"0" * limit)
    assert (r.status_code, r.get_json()["error"]["code"]) == (413, "pdf_too_large")


def test_a_decompression_bomb_leaves_the_service_standing(gw, signed):
    r = verify(gw, bad.decompression_bomb())
    assert (r.status_code, r.get_json()["error"]["code"]) == (422, "malformed_pdf")
    assert "limit" in r.get_json()["error"]["message"]
    # The next caller is served as usual, by the same API process.
    assert verify(gw, signed).get_json()["indication"] == "TOTAL_PASSED"
    assert gw.client.get("/healthz").status_code == 200


def test_ops_sees_the_trust_roots_and_their_fingerprints(gw, stack):
    r = gw.client.get("/ops/trust", headers=OPS)
    assert r.status_code == 200
    roots = {root["group"]: root for root in r.get_json()["roots"]}
    assert set(roots) == {"public", "government"}
    assert roots["public"]["sha256"] == stack.pki.public_root.cert.fingerprint(hashes.SHA256()).hex()
    assert gw.client.get("/ops/trust", headers=ONE_STOP).status_code == 403


def test_the_openapi_document_takes_a_pdf_body(gw):
    doc = gw.client.get("/openapi.json").get_json()
    body = doc["paths"]["/api/v1/signatures/verify"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/pdf", "multipart/form-data"}


# Attachments of a filed dossier -------------------------------------------------------------------


def test_pdf_attachments_of_a_dossier_are_verified_by_a_job(gw, stack, signed):
    def inline(attachment_id: str, content: bytes) -> dict:
        return {"id": attachment_id, "name": f"{attachment_id}.pdf", "component_code": "TP1",
                "content_base64": base64.b64encode(content).decode()}

    body = dossier_body(attachments=[
        inline("to-khai", signed), inline("ban-sao", bad.flip_signed_byte(signed)),
        {"id": "anh", "name": "anh.jpg", "content_base64": base64.b64encode(b"\xff\xd8\xff\xe0 jpeg").decode()},
        {"id": "cccd", "name": "cccd.pdf", "url": "https://dvc.example.gov.vn/files/cccd.pdf"}])
    code = gw.file(body)["code"]

    def verdicts() -> dict | None:
        dossier = gw.get(f"/api/v1/dossiers/{code}").get_json()
        found = {a["id"]: a["signature"] for a in dossier["attachments"] if "signature" in a}
        return found if len(found) == 2 else None

    found = wait_for(verdicts, timeout=60)
    assert found["to-khai"]["indication"] == "TOTAL_PASSED"
    assert found["to-khai"]["signatures"][0]["signer"]["name"] == "Nguyễn Văn An"
    assert (found["ban-sao"]["indication"], found["ban-sao"]["sub_indication"]) == ("TOTAL_FAILED", "HASH_FAILURE")
    assert "đã bị sửa" in found["ban-sao"]["summary"]["vi"]
    items = feed(gw, code, "dossier.attachment_verified")
    assert sorted((i["data"]["attachment_id"], i["data"]["indication"]) for i in items) == [
        ("ban-sao", "TOTAL_FAILED"), ("to-khai", "TOTAL_PASSED")]
    assert next(i for i in items if i["data"]["attachment_id"] == "to-khai")["data"]["signers"] == ["Nguyễn Văn An"]
    # One job per inline PDF (not the image, not the file by URL), each done.
    wait_for(lambda: [j["state"] for j in gw.jobs(code) if j["queue"] == "signatures"] == ["done", "done"])


# Revocation fetched from the CA ------------------------------------------------------------------


def test_revocation_is_fetched_from_the_ca_and_cached(stack):
    pki = stack.pki
    stack.ca.post("/_mock/reset")
    for name, der in (("vnpt-ca.crl", pki.crl()), ("national-root.crl", pki.root_crl())):
        assert requests.put(f"{stack.ca.base}/_mock/crls/{name}", data=der, timeout=5).ok
    settings = SignatureSettings(trust_dir=str(stack.tmp / "trust"), fetch_revocation=True,
                                 revocation_mode="require", sandbox_processes=1)
    signatures = Signatures(settings)
    try:
        revoked = signatures.verify(sign(one_page_pdf(), pki.revoked))
        assert (revoked["indication"], revoked["sub_indication"]) == ("TOTAL_FAILED", "REVOKED")
        fetched = len(stack.ca.requests())
        assert fetched >= 2  # the CA's CRL and the root's
        for _ in range(3):
            assert signatures.verify(sign(one_page_pdf(), pki.signer))["indication"] == "TOTAL_PASSED"
        assert len(stack.ca.requests()) == fetched  # served from the cache
    finally:
        signatures.close()


def test_with_the_ca_unreachable_a_fail_closed_check_does_not_pass(stack):
    stack.ca.post("/_mock/reset")  # no CRL published: the distribution point answers 404
    settings = SignatureSettings(trust_dir=str(stack.tmp / "trust"), fetch_revocation=True,
                                 revocation_mode="require", sandbox_processes=1, fetch_timeout_seconds=2)
    signatures = Signatures(settings)
    try:
        report = signatures.verify(sign(one_page_pdf(), stack.pki.signer))
        assert report["indication"] == "INDETERMINATE"
    finally:
        signatures.close()


def test_a_time_limit_kills_the_verifier_not_the_service(stack, signed):
    settings = SignatureSettings(trust_dir=str(stack.tmp / "trust"), sandbox_processes=1,
                                 time_limit_seconds=0.001)
    signatures = Signatures(settings)
    try:
        for _ in range(2):
            with pytest.raises(VerificationRefused, match="took longer than") as caught:
                signatures.verify(signed)
            assert caught.value.code == "pdf_too_complex"
        assert signatures.sandbox.replaced == 2
    finally:
        signatures.close()
