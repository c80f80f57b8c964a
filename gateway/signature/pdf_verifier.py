"""Verify every signature in a PDF with pyHanko and report the facts and the verdict.

This runs inside the sandbox (sandbox.py): it trusts nothing about its input, and any failure to read the
file becomes an `UnreadablePdf` with a reason a caller can act on. A signature that cannot itself be read
(zeroed /Contents, a broken CMS blob) is reported as that signature's FORMAT_FAILURE, not as a crash.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESStatus
from pyhanko.sign.fields import SigSeedSubFilter, enumerate_sig_fields
from pyhanko.sign.general import NonexistentAttributeError, find_unique_cms_attribute
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore, NoDSSFoundError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers import Fetchers
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
from pyhanko_certvalidator.policy_decl import DEFAULT_WEAK_HASH_ALGOS

from gateway.domain.signature_verdict import (
    MODIFICATIONS,
    Indication,
    SignatureFacts,
    Verdict,
    judge,
    of_document,
)

from . import speedups
from .trust_store import TrustStore

log = logging.getLogger(__name__)
speedups.install()

SUBFILTERS = {f.value for f in (SigSeedSubFilter.ADOBE_PKCS7_DETACHED, SigSeedSubFilter.PADES)}
HEADER_WINDOW = 1024  # PDF readers accept the %PDF- header anywhere in the first kilobyte


class UnreadablePdf(Exception):
    """The file cannot be read as a PDF at all; `code` says why (not_a_pdf, encrypted_pdf, malformed_pdf)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class VerifierPolicy:
    revocation_mode: str = "soft-fail"  # soft-fail, hard-fail, require (fail closed: no data is no pass)
    fetch_revocation: bool = False  # fetch CRLs/OCSP named in certificates; else embedded data only
    fetch_timeout_seconds: float = 5.0
    revocation_cache_seconds: float = 300.0
    accept_digital_signature_only: bool = True  # many Vietnamese token certificates lack nonRepudiation


def _name(name: asn1_x509.Name, field: str) -> str | None:
    value = name.native.get(field)
    return ", ".join(value) if isinstance(value, list) else value


def _cert_view(cert: asn1_x509.Certificate) -> dict[str, Any]:
    return {"subject": cert.subject.human_friendly, "issuer": cert.issuer.human_friendly,
            "serial": format(cert.serial_number, "X"), "sha256": hashlib.sha256(cert.dump()).hexdigest(),
            "not_before": cert.not_valid_before.isoformat(), "not_after": cert.not_valid_after.isoformat()}


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


class PdfVerifier:
    def __init__(self, trust: TrustStore, policy: VerifierPolicy) -> None:
        self.trust = trust
        self.policy = policy
        self.roots = [asn1_x509.Certificate.load(root.der) for root in trust.roots]
        self._fetchers: Fetchers | None = None
        self._fetchers_since = 0.0
        usages = {"non_repudiation", "digital_signature"} if policy.accept_digital_signature_only \
            else {"non_repudiation"}
        self.key_usage = KeyUsageConstraints(key_usage=usages, match_all_key_usages=False)

    def _fetchers_now(self) -> Fetchers | None:
        """Fetched CRLs and OCSP answers are cached by the fetchers; renewing them bounds the cache's age."""
        if not self.policy.fetch_revocation:
            return None
        if self._fetchers is None or time.monotonic() - self._fetchers_since > self.policy.revocation_cache_seconds:
            self._fetchers = RequestsFetcherBackend(self.policy.fetch_timeout_seconds).get_fetchers()
            self._fetchers_since = time.monotonic()
        return self._fetchers

    def verify(self, pdf: bytes) -> dict[str, Any]:
        if b"%PDF-" not in pdf[:HEADER_WINDOW]:
            raise UnreadablePdf("not_a_pdf", "the file does not start with a PDF header (%PDF-)")
        reader = self._open(pdf)
        try:
            fields = list(enumerate_sig_fields(reader, filled_status=True))
            revisions = reader.xrefs.total_revisions
        except RecursionError:
            raise UnreadablePdf("malformed_pdf", "the PDF's objects are nested too deeply") from None
        except Exception as exc:  # noqa: BLE001 - a broken form tree: the file as a whole is unreadable
            raise UnreadablePdf("malformed_pdf", f"the PDF's signature fields cannot be read: {exc}") from None
        embedded = self._embedded_revocation(reader)
        entries = [self._one(sig, embedded) if isinstance(sig, EmbeddedPdfSignature) else sig
                   for sig in _signatures_in(reader, fields)]
        verdict = of_document([e.pop("_verdict") for e in entries])
        return {"indication": verdict.indication.value, "sub_indication": verdict.sub_indication,
                "summary": {"vi": verdict.vi, "en": verdict.en}, "signature_count": len(entries),
                "revisions": revisions, "size": len(pdf), "sha256": hashlib.sha256(pdf).hexdigest(),
                "signatures": entries}

    def _open(self, pdf: bytes) -> PdfFileReader:
        try:
            reader = PdfFileReader(io.BytesIO(pdf), strict=False)
            if reader.encrypted:
                # Signed PDFs are sometimes encrypted with an empty user password: those we can still read.
                try:
                    ok = reader.decrypt(b"").status.name != "FAILED"
                except Exception:  # noqa: BLE001 - an unsupported or broken security handler: still locked
                    ok = False
                if not ok:
                    raise UnreadablePdf("encrypted_pdf", "the PDF is encrypted with a password; send it decrypted")
            reader.root  # noqa: B018 - resolving the catalogue proves the cross-reference data works
            return reader
        except UnreadablePdf:
            raise
        except RecursionError:
            raise UnreadablePdf("malformed_pdf", "the PDF's objects are nested too deeply") from None
        except Exception as exc:  # noqa: BLE001 - a broken file breaks the parser in many ways; all mean "unreadable"
            raise UnreadablePdf("malformed_pdf", f"the PDF cannot be read: {type(exc).__name__}: {exc}") from None

    @staticmethod
    def _embedded_revocation(reader: PdfFileReader) -> dict[str, list]:
        """Certificates, CRLs and OCSP answers the document carries in its security store (DSS)."""
        try:
            dss = DocumentSecurityStore.read_dss(reader)
            return {"certs": list(dss.load_certs()),
                    "crls": [asn1_crl.CertificateList.load(ref.get_object().read_data(DecodePurpose.CRL))
                             for ref in dss.crls],
                    "ocsps": [asn1_ocsp.OCSPResponse.load(ref.get_object().read_data(DecodePurpose.OCSP_RESPONSE))
                              for ref in dss.ocsps]}
        except NoDSSFoundError:
            return {"certs": [], "crls": [], "ocsps": []}
        except Exception as exc:  # noqa: BLE001 - a broken DSS is not fatal: verify without it
            log.info("unreadable DSS ignored: %s", exc)
            return {"certs": [], "crls": [], "ocsps": []}

    def _context(self, sig: EmbeddedPdfSignature, embedded: dict[str, list]) -> ValidationContext:
        crls, ocsps = list(embedded["crls"]), list(embedded["ocsps"])
        try:  # revocation data signed along with the signature (Adobe's revocationInfoArchival)
            archival = find_unique_cms_attribute(sig.signer_info["signed_attrs"], "adobe_revocation_info_archival")
            crls += list(archival["crl"] or [])
            ocsps += list(archival["ocsp"] or [])
        except (NonexistentAttributeError, KeyError, ValueError):
            pass
        fetchers = self._fetchers_now()
        return ValidationContext(trust_roots=self.roots, other_certs=embedded["certs"], crls=crls, ocsps=ocsps,
                                 allow_fetching=fetchers is not None, fetchers=fetchers,
                                 revocation_mode=self.policy.revocation_mode)

    def _one(self, sig: EmbeddedPdfSignature, embedded: dict[str, list]) -> dict[str, Any]:
        field = _safe(lambda: sig.field_name) or "?"
        with _ProblemsHeard() as heard:
            try:
                status = validate_pdf_signature(sig, self._context(sig, embedded), key_usage_settings=self.key_usage)
            except RecursionError:
                return _unreadable_signature(field, "the signature's objects are nested too deeply")
            except Exception as exc:  # noqa: BLE001 - zeroed /Contents, a bad /ByteRange, a broken CMS blob...
                return _unreadable_signature(field, f"{type(exc).__name__}: {exc}")
        return {**self._entry(field, sig, status), "problems": heard.messages}

    def _entry(self, field: str, sig: EmbeddedPdfSignature, status: PdfSignatureStatus) -> dict[str, Any]:
        cert = status.signing_cert
        path = list(status.validation_path.iter_certs(include_root=True)) if status.validation_path else []
        chain = [_cert_view(c) for c in reversed(path)] if path else [_cert_view(cert)]
        anchor = chain[-1]["sha256"] if path else None
        problem = status.trust_problem_indic
        tst = status.timestamp_validity
        signed_at = (tst.timestamp if tst and tst.trusted else None) or status.signer_reported_dt
        revocation = status.revocation_details
        facts = SignatureFacts(
            intact=status.intact, valid=status.valid, trusted=status.trusted, revoked=status.revoked,
            revoked_before_signing=bool(revocation and (signed_at is None or revocation.revocation_date <= signed_at)),
            self_signed=cert.self_signed != "no",
            trust_problem=problem.standard_name if problem else None,
            trust_problem_failed=bool(problem and problem.status is AdESStatus.FAILED),
            chain_found=bool(path) or (problem is not None and problem.standard_name != "NO_CERTIFICATE_CHAIN_FOUND"),
            weak_algorithm=status.md_algorithm in DEFAULT_WEAK_HASH_ALGOS,
            coverage=status.coverage.name if status.coverage else None,
            modification=status.modification_level.name if status.modification_level else None,
            docmdp_ok=status.docmdp_ok)
        signer_name = _name(cert.subject, "common_name") or cert.subject.human_friendly
        verdict = judge(facts, signer_name)
        certification = _safe(lambda: sig.docmdp_level.name if sig.docmdp_level else None)
        return {
            "field_name": field, "indication": verdict.indication.value, "sub_indication": verdict.sub_indication,
            "summary": {"vi": verdict.vi, "en": verdict.en},
            "signer": {"name": signer_name, "organisation": _name(cert.subject, "organization_name"),
                       "serial": format(cert.serial_number, "X"), "issuer": cert.issuer.human_friendly},
            "signing_time": _iso(status.signer_reported_dt),
            "timestamp_time": _iso(tst.timestamp) if tst else None,
            "timestamp_trusted": (tst.valid and tst.intact and tst.trusted) if tst else None,
            "digest_algorithm": status.md_algorithm, "signature_algorithm": status.pkcs7_signature_mechanism,
            "chain": chain,
            "trust_anchor": {"group": self.trust.group_of(anchor), "sha256": anchor} if anchor else None,
            "certification": certification,
            "revocation": ({"revoked_at": _iso(revocation.revocation_date),
                            "reason": revocation.revocation_reason.native} if revocation else None),
            "facts": {"intact": facts.intact, "valid": facts.valid, "trusted": facts.trusted, "revoked": facts.revoked,
                      "trust_problem": facts.trust_problem, "coverage": facts.coverage,
                      "covers_whole_file": facts.coverage == "ENTIRE_FILE",
                      "modified_after_signing": facts.coverage != "ENTIRE_FILE",
                      "modification": facts.modification,
                      "modification_vi": MODIFICATIONS.get(facts.modification or "", (None,))[0],
                      "docmdp_ok": facts.docmdp_ok},
            "_verdict": verdict,
        }


class _ProblemsHeard(logging.Handler):
    """pyHanko says why a check failed only in its log; we hear it and put it in the report. It swaps the
    loggers' handlers, so one verification at a time per process: the sandbox's workers are single-threaded."""

    LOGGERS = ("pyhanko", "pyhanko_certvalidator")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().split("\n")[0][:500]
        if message not in self.messages:
            self.messages.append(message)

    def __enter__(self) -> _ProblemsHeard:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            logger.addHandler(self)
            logger.propagate = False  # the report carries it; the service log need not repeat each file
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            logger.removeHandler(self)
            logger.propagate = True


def _signatures_in(reader: PdfFileReader, fields: list) -> list[EmbeddedPdfSignature | dict[str, Any]]:
    """Each filled signature field, oldest first; one that cannot be read (zeroed or missing /Contents, an
    unknown /SubFilter) becomes its own FORMAT_FAILURE entry instead of hiding the others."""
    readable: list[EmbeddedPdfSignature] = []
    broken: list[dict[str, Any]] = []
    for name, value, field in fields:
        try:
            if value.get_object().get("/Type") == "/DocTimeStamp":
                continue  # a document timestamp is not a signature by anyone
            subfilter = value.get_object().get("/SubFilter")
            if subfilter not in SUBFILTERS:
                broken.append(_unreadable_signature(name, f"unsupported /SubFilter {subfilter}"))
                continue
            readable.append(EmbeddedPdfSignature(reader, field, name))
        except RecursionError:
            broken.append(_unreadable_signature(name, "the signature's objects are nested too deeply"))
        except Exception as exc:  # noqa: BLE001 - zeroed /Contents, a broken CMS blob, a bad /ByteRange
            broken.append(_unreadable_signature(name, f"{type(exc).__name__}: {exc}"))
    readable.sort(key=lambda s: s.signed_revision)
    return [*readable, *broken]


def _safe(read):  # noqa: ANN001, ANN202 - a property of a possibly broken signature, or None
    try:
        return read()
    except Exception:  # noqa: BLE001
        return None


def _unreadable_signature(field: str, why: str) -> dict[str, Any]:
    verdict = Verdict(Indication.TOTAL_FAILED, "FORMAT_FAILURE", f"Không đọc được chữ ký {field}: {why}.",
                      f"The signature {field} cannot be read: {why}.")
    return {"field_name": field, "indication": verdict.indication.value, "sub_indication": verdict.sub_indication,
            "summary": {"vi": verdict.vi, "en": verdict.en}, "signer": None, "signing_time": None,
            "timestamp_time": None, "timestamp_trusted": None, "digest_algorithm": None, "signature_algorithm": None,
            "chain": [], "trust_anchor": None, "certification": None, "revocation": None, "problems": [why],
            "facts": {"intact": None, "valid": None, "trusted": False, "revoked": None, "trust_problem": None,
                      "coverage": None, "covers_whole_file": None, "modified_after_signing": None,
                      "modification": None, "modification_vi": None, "docmdp_ok": None},
            "_verdict": verdict}
