"""The TSA and OCSP mocks, driven by pyHanko's own clients over real HTTP: what the archive will meet."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator

import pytest
import requests
from asn1crypto import x509 as asn1_x509
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import RevokedError
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
from werkzeug.serving import make_server

from mocks.pki import TestPki
from mocks.server import create_app


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, TestPki]]:
    server = make_server("127.0.0.1", 0, create_app(), threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    pki = TestPki(crl_base=f"{base}/ca", ocsp_url=f"{base}/ocsp/")
    assert requests.put(f"{base}/tsa/_mock/identity", json=pki.tsa.as_json(), timeout=5).ok
    yield base, pki
    server.shutdown()


@pytest.fixture(autouse=True)
def clean(served: tuple[str, TestPki]) -> None:
    base, pki = served
    for mock in ("tsa", "ocsp"):
        requests.post(f"{base}/{mock}/_mock/reset", timeout=5).raise_for_status()
    body = {**pki.ca.as_json(), "revoked": [{"serial": format(pki.revoked.cert.serial_number, "x"),
                                            "at": pki.revoked_at.isoformat()}]}
    assert requests.put(f"{base}/ocsp/_mock/issuers/vnpt-ca", json=body, timeout=5).ok


def asn1(cert) -> asn1_x509.Certificate:  # noqa: ANN001
    return asn1_x509.Certificate.load(cert.der)


def stamp(base: str, digest: bytes):  # noqa: ANN201
    return asyncio.run(RequestsHTTPTimeStamper(f"{base}/tsa/").async_timestamp(digest, "sha256"))


def test_a_token_from_the_tsa_verifies_against_the_test_root_and_binds_the_digest(served) -> None:  # noqa: ANN001
    base, pki = served
    digest = hashlib.sha256(b"tagmanifest-sha256.txt").digest()
    token = stamp(base, digest)
    context = ValidationContext(trust_roots=[asn1(pki.public_root)], allow_fetching=False, revocation_mode="soft-fail")
    status = TimestampSignatureStatus(**asyncio.run(validate_tst_signed_data(token["content"], context,
                                                                             lambda algo: digest)))
    assert status.intact and status.valid and status.trusted
    other = asyncio.run(validate_tst_signed_data(token["content"], context, lambda algo: b"\0" * 32))
    assert not other["intact"]
    assert requests.get(f"{base}/tsa/_mock/requests", timeout=5).json()["requests"][-1]["service"] == "timestamp"


@pytest.mark.parametrize("mode", ["http_500", "garbage", "error_code"])
def test_a_failing_tsa_is_an_error_the_client_can_name(served, mode: str) -> None:  # noqa: ANN001
    base, _ = served
    requests.post(f"{base}/tsa/_mock/faults", json={"mode": mode, "count": 1}, timeout=5).raise_for_status()
    with pytest.raises((TimestampRequestError, ValueError)):
        stamp(base, b"\1" * 32)
    assert stamp(base, b"\1" * 32) is not None  # the fault was used up


def test_a_request_that_is_not_der_is_refused_with_a_bad_data_format_reply(served) -> None:  # noqa: ANN001
    base, _ = served
    r = requests.post(f"{base}/tsa/", data=b"hello", headers={"Content-Type": "application/timestamp-query"}, timeout=5)
    assert r.status_code == 400 and r.headers["Content-Type"] == "application/timestamp-reply"


def _check(base: str, pki: TestPki, who) -> None:  # noqa: ANN001
    context = ValidationContext(trust_roots=[asn1(pki.public_root)], other_certs=[asn1(pki.ca)],
                                allow_fetching=True, revocation_mode="hard-fail",
                                fetchers=RequestsFetcherBackend(5).get_fetchers())
    # The CA itself is checked against the root's CRL, published at the CA mock.
    requests.put(f"{base}/ca/_mock/crls/national-root.crl", data=pki.root_crl(), timeout=5).raise_for_status()
    requests.put(f"{base}/ca/_mock/crls/vnpt-ca.crl", data=pki.crl([]), timeout=5).raise_for_status()
    asyncio.run(CertificateValidator(asn1(who), validation_context=context).async_validate_usage(set()))


def test_the_ocsp_responder_says_good_for_a_valid_signer_and_revoked_for_a_revoked_one(served) -> None:  # noqa: ANN001
    base, pki = served
    _check(base, pki, pki.signer)
    with pytest.raises(RevokedError, match="OCSP response indicates"):  # the CA mock's CRL revokes no one
        _check(base, pki, pki.revoked)
    asked = [r for r in requests.get(f"{base}/ocsp/_mock/requests", timeout=5).json()["requests"]]
    assert len(asked) >= 2


def test_an_ocsp_request_for_an_unknown_issuer_is_unauthorized_and_garbage_is_refused(served) -> None:  # noqa: ANN001
    from asn1crypto import ocsp

    base, _ = served
    r = requests.post(f"{base}/ocsp/", data=b"\x30\x03\x02\x01\x01", timeout=5)
    assert ocsp.OCSPResponse.load(r.content)["response_status"].native == "malformed_request"
    requests.post(f"{base}/ocsp/_mock/faults", json={"mode": "garbage", "count": 1}, timeout=5).raise_for_status()
    r = requests.post(f"{base}/ocsp/", data=b"\x30\x03\x02\x01\x01", timeout=5)
    with pytest.raises(ValueError):
        ocsp.OCSPResponse.load(r.content).native  # noqa: B018


def test_identities_are_checked_and_the_key_is_never_shown(served) -> None:  # noqa: ANN001
    base, pki = served
    assert requests.put(f"{base}/tsa/_mock/identity", json={"cert": "nope"}, timeout=5).status_code == 400
    shown = requests.get(f"{base}/tsa/_mock/identity", timeout=5).json()
    assert "key" not in shown and "Time Stamping" in shown["subject"]
