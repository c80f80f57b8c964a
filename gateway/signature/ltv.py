"""PAdES long-term validation with pyHanko: extend a signed PDF to B-LTA when sealing; check it offline later.

Extending embeds, in the document security store (DSS), every certificate of each signature's chain and the
CRL and OCSP answers about them (fetched once, now, from the URLs the certificates name), then adds a
document timestamp from the TSA (ETSI EN 319 142-1, B-LT then B-LTA). Checking runs pyHanko's AdES-LTA
validation (ETSI EN 319 102-1 5.6.3) with fetching forbidden: what the file carries must be enough.
"""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import datetime
from typing import Any

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper
from pyhanko.sign.validation import add_validation_info
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.authority import CertTrustAnchor
from pyhanko_certvalidator.context import CertValidationPolicySpec, ValidationTimingInfo
from pyhanko_certvalidator.errors import RevokedError
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
from pyhanko_certvalidator.policy_decl import LEGACY_POLICY_MAP, CertRevTrustPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager

from gateway.domain.archive import FAILED, PASSED, WARNING, Item

log = logging.getLogger(__name__)

# What a failing partner looks like from inside pyHanko: the package waits and retries.
_PARTNER_DOWN = ("fetch", "ocsp", "crl", "connection", "timed out", "timeout", "unreachable", "revocation info",
                 "revinfo", "no revocation")


class LtvExtender:
    """Built inside the sandbox's process (sandbox.py); `verify` is the sandbox's one call: here, extend."""

    def __init__(self, tsa_url: str, tsa_timeout: float, roots_der: list[bytes], fetch_timeout: float) -> None:
        self.tsa_url = tsa_url
        self.tsa_timeout = tsa_timeout
        self.roots = [asn1_x509.Certificate.load(d) for d in roots_der]
        self.fetch_timeout = fetch_timeout

    def verify(self, pdf: bytes) -> dict[str, Any]:
        try:
            return {"pdf": self.extend(pdf), "ltv": "PAdES B-LTA"}
        except _PartnerDown as exc:
            return {"pdf": None, "retry": str(exc)}
        except RecursionError:
            return {"pdf": None, "note": "the PDF's objects are nested too deeply"}
        except Exception as exc:  # noqa: BLE001 - a broken or hostile file: sealed as filed, the report says why
            return {"pdf": None, "note": f"{type(exc).__name__}: {exc}"[:300]}

    def extend(self, pdf: bytes) -> bytes:
        context = ValidationContext(trust_roots=self.roots, allow_fetching=True, revocation_mode="hard-fail",
                                    fetchers=RequestsFetcherBackend(self.fetch_timeout).get_fetchers())
        out = io.BytesIO(pdf)
        reader = PdfFileReader(out, strict=False)
        count = len(reader.embedded_regular_signatures)
        if count == 0:
            raise ValueError("no signature to extend")
        for n in range(count):
            reader = PdfFileReader(out, strict=False)  # each round appends a revision: read it afresh
            try:
                out = add_validation_info(reader.embedded_regular_signatures[n], context, in_place=True)
            except RevokedError as exc:
                raise ValueError(f"the signer's certificate is revoked: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - sorted into "partner down" (retry) or the file's fault
                raise _classify(exc) from None
        stamper = PdfTimeStamper(RequestsHTTPTimeStamper(self.tsa_url, timeout=self.tsa_timeout))
        try:
            result = stamper.timestamp_pdf(IncrementalPdfFileWriter(out, strict=False), md_algorithm="sha256",
                                           validation_context=context, in_place=True)
        except TimestampRequestError as exc:
            raise _PartnerDown(f"time-stamping authority: {exc}") from None
        except Exception as exc:  # noqa: BLE001
            raise _classify(exc) from None
        return result.getvalue()


class _PartnerDown(Exception):
    pass


def _classify(exc: Exception) -> Exception:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError | TimestampRequestError) or any(w in text.lower() for w in _PARTNER_DOWN):
        return _PartnerDown(text[:300])
    return ValueError(text[:300])


def _spec(roots: list[asn1_x509.Certificate]) -> PdfSignatureValidationSpec:
    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=[CertTrustAnchor(r) for r in roots]),
        revinfo_policy=CertRevTrustPolicy(LEGACY_POLICY_MAP["hard-fail"]))
    return PdfSignatureValidationSpec(SignatureValidationSpec(
        cert_validation_policy=policy,
        revinfo_gathering_policy=RevocationInfoGatheringSpec(online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY)))


def check_ltv(name: str, pdf: bytes, roots: list[asn1_x509.Certificate], now: datetime) -> list[Item]:
    """A verdict per signature of a packaged PDF, from what the file carries alone (no network)."""
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signatures = reader.embedded_regular_signatures
        stamps = reader.embedded_timestamp_signatures
    except Exception as exc:  # noqa: BLE001 - an unreadable PDF is a failure of that file
        return [Item(name, FAILED, f"the PDF cannot be read: {type(exc).__name__}: {exc}"[:300])]
    items = []
    spec = _spec(roots)
    for sig in signatures:
        label = f"{name} ({sig.field_name})"
        try:
            result = asyncio.run(ades_lta_validation(sig, spec, timing_info=ValidationTimingInfo(
                validation_time=now, best_signature_time=now, point_in_time_validation=False)))
        except Exception as exc:  # noqa: BLE001 - a signature that cannot be checked fails, and says why
            items.append(Item(label, FAILED, f"cannot be validated: {type(exc).__name__}: {exc}"[:300]))
            continue
        status = result.api_status
        ades = getattr(result.ades_subindic, "name", str(result.ades_subindic))
        # The verdict is pyHanko's bottom line (intact, valid, trusted at the time the DSS and document timestamps
        # prove, changes after signing only LTV maintenance); its AdES sub-indication is reported alongside.
        passed = bool(status is not None and status.bottom_line)
        if passed and stamps:
            items.append(Item(label, PASSED, f"long-term signature valid offline (PAdES B-LTA, {len(stamps)} document "
                                             f"timestamp(s); AdES {ades})"))
        elif passed:
            items.append(Item(label, WARNING, f"signature valid offline, but no document timestamp (not B-LTA; "
                                              f"AdES {ades})"))
        else:
            items.append(Item(label, FAILED, f"the long-term signature does not validate offline (AdES {ades})"))
    if not signatures:
        items.append(Item(name, WARNING, "no signature in this PDF"))
    return items
