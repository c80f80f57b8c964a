"""The verifier on real PAdES signatures made at test time: every case an officer meets, every broken file.

These call PdfVerifier in-process (what runs inside the sandbox); test_signatures_api.py goes through HTTP
and the sandbox on both stacks.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.signature.pdf_verifier import PdfVerifier, UnreadablePdf, VerifierPolicy
from gateway.signature.trust_store import TrustStore, TrustStoreError
from mocks.pki import (
    TestPki,
    add_signature_field,
    change_page_text,
    one_page_pdf,
    sign,
    with_crls_in_dss,
)

from . import signature_fixtures as bad


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki()


@pytest.fixture(scope="module")
def trust(pki, tmp_path_factory) -> TrustStore:
    return TrustStore.load(pki.write_trust_dir(tmp_path_factory.mktemp("trust")))


@pytest.fixture(scope="module")
def verifier(trust) -> PdfVerifier:
    return PdfVerifier(trust, VerifierPolicy())


@pytest.fixture(scope="module")
def signed(pki) -> bytes:
    return sign(one_page_pdf(), pki.signer)


def only(report: dict) -> dict:
    assert report["signature_count"] == len(report["signatures"]) == 1
    return report["signatures"][0]


def verdict(report: dict) -> tuple[str, str | None]:
    return report["indication"], report["sub_indication"]


def test_a_valid_signature_passes_with_signer_chain_and_anchor(verifier, signed, pki):
    report = verifier.verify(signed)
    assert verdict(report) == ("TOTAL_PASSED", None)
    sig = only(report)
    assert sig["signer"]["name"] == "Nguyễn Văn An"
    assert sig["signer"]["organisation"] == "UBND xã Tân Lập"
    assert sig["signer"]["serial"] == format(pki.signer.cert.serial_number, "X")
    assert "Test VNPT Certification Authority" in sig["signer"]["issuer"]
    assert [c["subject"].split(",")[0] for c in sig["chain"]] == [
        "Common Name: Nguyễn Văn An", "Common Name: Test VNPT Certification Authority",
        "Common Name: Test Vietnam National Root CA"]
    assert sig["trust_anchor"]["group"] == "public"
    assert sig["facts"]["intact"] and sig["facts"]["valid"] and sig["facts"]["trusted"]
    assert sig["facts"]["covers_whole_file"] and not sig["facts"]["modified_after_signing"]
    assert sig["signing_time"] is not None and sig["timestamp_time"] is None
    assert report["summary"]["vi"] == "Tất cả 1 chữ ký số hợp lệ."
    assert "Nguyễn Văn An hợp lệ" in sig["summary"]["vi"]


def test_an_officials_signature_chains_to_the_government_root(verifier, pki):
    sig = only(verifier.verify(sign(one_page_pdf(), pki.official)))
    assert sig["indication"] == "TOTAL_PASSED"
    assert sig["trust_anchor"]["group"] == "government"


def test_a_timestamp_is_reported_with_its_time(verifier, pki):
    sig = only(verifier.verify(sign(one_page_pdf(), pki.signer, timestamper=pki.timestamper())))
    assert sig["indication"] == "TOTAL_PASSED"
    assert sig["timestamp_time"] is not None and sig["timestamp_trusted"] is True


def test_one_byte_flipped_in_the_signed_range_is_a_hash_failure(verifier, signed):
    report = verifier.verify(bad.flip_signed_byte(signed))
    assert verdict(report) == ("TOTAL_FAILED", "HASH_FAILURE")
    assert only(report)["facts"]["intact"] is False
    assert "đã bị sửa" in report["summary"]["vi"]


def test_a_damaged_signature_value_is_a_crypto_failure(verifier, signed):
    report = verifier.verify(bad.damage_signature_value(signed))
    assert verdict(report) == ("TOTAL_FAILED", "SIG_CRYPTO_FAILURE")
    assert only(report)["facts"] | {"intact": True, "valid": False} == only(report)["facts"]


def test_content_changed_in_an_update_after_signing_fails(verifier, signed):
    report = verifier.verify(change_page_text(signed))
    assert verdict(report) == ("TOTAL_FAILED", "FORMAT_FAILURE")
    facts = only(report)["facts"]
    assert facts["coverage"] == "ENTIRE_REVISION" and facts["modified_after_signing"]
    assert facts["modification"] == "OTHER" and facts["modification_vi"] == "nội dung bị thay đổi"
    assert "sau khi Nguyễn Văn An ký" in report["summary"]["vi"]


def test_a_second_signature_added_later_is_allowed(verifier, signed, pki):
    report = verifier.verify(sign(signed, pki.official, field_name="Signature2"))
    assert verdict(report) == ("TOTAL_PASSED", None)
    first, second = report["signatures"]
    assert (first["field_name"], second["field_name"]) == ("Signature1", "Signature2")
    assert first["facts"]["modified_after_signing"] and first["facts"]["modification"] == "FORM_FILLING"
    assert first["facts"]["docmdp_ok"] is True
    assert second["facts"]["covers_whole_file"]


def test_a_certified_document_changed_against_its_docmdp_rule_fails(verifier, pki):
    certified = sign(one_page_pdf(), pki.signer, certify=True)
    assert only(verifier.verify(certified))["certification"] == "NO_CHANGES"
    report = verifier.verify(add_signature_field(certified))
    assert verdict(report) == ("TOTAL_FAILED", "FORMAT_FAILURE")
    assert only(report)["facts"]["docmdp_ok"] is False


def test_the_same_field_added_to_an_approval_signature_is_fine(verifier, signed):
    """The DocMDP failure above comes from the certification, not from the change itself."""
    assert verdict(verifier.verify(add_signature_field(signed))) == ("TOTAL_PASSED", None)


def test_revoked_by_the_crl_in_the_document_fails(verifier, pki):
    pdf = with_crls_in_dss(sign(one_page_pdf(), pki.revoked), pki.crl(), pki.root_crl())
    report = verifier.verify(pdf)
    assert verdict(report) == ("TOTAL_FAILED", "REVOKED")
    sig = only(report)
    assert sig["facts"]["revoked"] is True
    assert sig["revocation"]["revoked_at"].startswith(pki.revoked_at.date().isoformat())
    assert "thu hồi" in sig["summary"]["vi"]


def test_the_same_crl_does_not_touch_a_good_signer(verifier, signed, pki):
    assert verdict(verifier.verify(with_crls_in_dss(signed, pki.crl(), pki.root_crl()))) == ("TOTAL_PASSED", None)


def test_expired_at_signing_time_is_indeterminate(verifier, pki):
    report = verifier.verify(sign(one_page_pdf(), pki.expired))
    assert verdict(report) == ("INDETERMINATE", "OUT_OF_BOUNDS_NO_POE")
    assert any("expired" in p for p in only(report)["problems"])


@pytest.mark.parametrize("who", ["self_signed", "stranger"])
def test_self_signed_and_unknown_ca_find_no_chain(verifier, pki, who):
    report = verifier.verify(sign(one_page_pdf(), getattr(pki, who)))
    assert verdict(report) == ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")
    assert only(report)["trust_anchor"] is None


def test_sha1_is_refused_as_a_weak_algorithm(verifier, pki):
    report = verifier.verify(sign(one_page_pdf(), pki.signer, digest="sha1"))
    assert verdict(report) == ("INDETERMINATE", "CRYPTO_CONSTRAINTS_FAILURE")
    assert only(report)["digest_algorithm"] == "sha1"


def test_an_unsigned_pdf_says_no_signature_found(verifier):
    report = verifier.verify(one_page_pdf())
    assert verdict(report) == ("NO_SIGNATURE_FOUND", None)
    assert report["signatures"] == [] and report["summary"]["vi"] == "Tài liệu không có chữ ký số."


# Revocation policy and key usage ------------------------------------------------------------------


def test_fail_closed_without_revocation_data_is_not_a_pass(trust, signed, pki):
    strict = PdfVerifier(trust, VerifierPolicy(revocation_mode="require"))
    report = strict.verify(signed)
    assert report["indication"] == "INDETERMINATE"
    assert any("no revocation information" in p for p in only(report)["problems"])
    # With the CRLs carried in the document, the same signature passes the strict check.
    assert verdict(strict.verify(with_crls_in_dss(signed, pki.crl(), pki.root_crl()))) == ("TOTAL_PASSED", None)


def test_digital_signature_without_non_repudiation_is_accepted_only_where_configured(trust, pki):
    pdf = with_crls_in_dss(sign(one_page_pdf(), pki.digital_only), pki.crl(), pki.root_crl())
    assert verdict(PdfVerifier(trust, VerifierPolicy()).verify(pdf)) == ("TOTAL_PASSED", None)
    strict = PdfVerifier(trust, VerifierPolicy(accept_digital_signature_only=False))
    report = strict.verify(pdf)
    assert report["indication"] == "INDETERMINATE"
    assert any("key usage" in p.lower() for p in only(report)["problems"])


# Trust store ---------------------------------------------------------------------------------------


def test_trust_roots_are_read_from_both_groups_pem_and_der(trust, pki):
    assert {(r.group, r.file) for r in trust.roots} == {("public", "public/national-root.pem"),
                                                        ("government", "government/gov-root.cer")}
    assert "Test Vietnam National Root CA" in next(r.subject for r in trust.roots if r.group == "public")


def test_pinned_fingerprints_refuse_an_unexpected_root(pki, tmp_path, trust):
    folder = pki.write_trust_dir(tmp_path)
    pins = [r.sha256 for r in trust.roots]
    assert len(TrustStore.load(folder, pins).roots) == 2
    (folder / "public" / "intruder.pem").write_bytes(pki.stranger.chain[0].public_bytes(Encoding.PEM))
    with pytest.raises(TrustStoreError, match="not among signature.trust_fingerprints"):
        TrustStore.load(folder, pins)
    with pytest.raises(TrustStoreError, match="pinned root"):
        TrustStore.load(pki.write_trust_dir(tmp_path / "other"), [*pins, "ab" * 32])


def test_a_file_that_is_not_a_certificate_stops_the_start(tmp_path):
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "root.pem").write_text("not a certificate")
    with pytest.raises(TrustStoreError, match="not a PEM or DER certificate"):
        TrustStore.load(tmp_path)


@pytest.mark.parametrize("where", [".", "roots"])
def test_a_root_outside_public_or_government_stops_the_start(pki, tmp_path, where):
    folder = pki.write_trust_dir(tmp_path)
    (folder / where).mkdir(exist_ok=True)
    (folder / where / "vn-root.pem").write_bytes(pki.stranger.chain[0].public_bytes(Encoding.PEM))
    with pytest.raises(TrustStoreError, match=r"vn-root.pem: a trust root must be in .*public.* or .*government"):
        TrustStore.load(folder)


def test_the_gateway_refuses_to_start_naming_the_misplaced_root(pki, tmp_path):
    folder = pki.write_trust_dir(tmp_path)
    (folder / "vn-root.pem").write_bytes(pki.stranger.chain[0].public_bytes(Encoding.PEM))
    env = {**os.environ, "GATEWAY_SIGNATURE__TRUST_DIR": str(folder),
           "GATEWAY_DATABASE__URL": f"sqlite:///{tmp_path / 'gw.db'}"}
    done = subprocess.run([sys.executable, "-m", "gateway", "dead-letters", "list"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "refusing to start" in done.stderr and "vn-root.pem: a trust root must be in" in done.stderr
    assert "Traceback" not in done.stderr


def test_with_no_roots_nothing_is_trusted(tmp_path, signed):
    report = PdfVerifier(TrustStore.load(tmp_path), VerifierPolicy()).verify(signed)
    assert verdict(report) == ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")


# Bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "code"), [
    (lambda s: b"", "not_a_pdf"),
    (lambda s: b"<html>not a pdf</html>", "not_a_pdf"),
    (lambda s: s[: len(s) // 2], "malformed_pdf"),
    (bad.broken_xref, "malformed_pdf"),
    (lambda s: bad.encrypted(), "encrypted_pdf"),
    (lambda s: bad.deeply_nested(), "malformed_pdf"),
    (lambda s: bad.decompression_bomb(), "malformed_pdf"),
], ids=["empty", "not-a-pdf", "truncated", "broken-xref", "encrypted", "deeply-nested", "bomb"])
def test_unreadable_files_say_why(verifier, signed, make, code):
    with pytest.raises(UnreadablePdf) as caught:
        verifier.verify(make(signed))
    assert caught.value.code == code


@pytest.mark.parametrize(("make", "sub"), [
    (bad.zero_contents, "FORMAT_FAILURE"),
    (bad.drop_contents, "FORMAT_FAILURE"),
    (bad.wrong_byte_range, "HASH_FAILURE"),
], ids=["zeroed-contents", "missing-contents", "wrong-byte-range"])
def test_a_broken_signature_is_reported_not_raised(verifier, signed, make, sub):
    report = verifier.verify(make(signed))
    assert verdict(report) == ("TOTAL_FAILED", sub)
    assert only(report)["field_name"] == "Signature1"
