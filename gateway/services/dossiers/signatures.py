"""Verifying PDF signatures: on request, and for every PDF attachment of a filed dossier (in a job).

An attachment's verdict is stored once, with the full report, and announced in the change feed as
`dossier.attachment_verified`, so the officer sees it before opening the dossier.
"""

from __future__ import annotations

import base64
import binascii
import logging
from functools import partial
from typing import Any

from sqlalchemy import Connection

from gateway import signature
from gateway.adapters.base import PermanentError, RetryableError
from gateway.config import SignatureSettings
from gateway.services.unit_of_work import Context
from gateway.signature.pdf_verifier import PdfVerifier, VerifierPolicy
from gateway.signature.sandbox import SandboxBusy, SandboxLimits, VerificationRefused, VerifierSandbox
from gateway.signature.trust_store import TrustStore
from gateway.store import attachment_signatures, audit, dossiers, feed, outbox, server_clock

log = logging.getLogger(__name__)

PDF_IN_BASE64 = "JVBERi0"  # "%PDF-", base64-encoded: how a PDF attachment starts
# A file we could not verify: broken files fail, files too big or too complex to check stay undecided.
REFUSED_INDICATION = {"not_a_pdf": "TOTAL_FAILED", "malformed_pdf": "TOTAL_FAILED"}


class TooLarge(VerificationRefused):
    def __init__(self, limit: int) -> None:
        super().__init__("pdf_too_large", f"the PDF is larger than {limit} bytes", status=413)


class Signatures:
    """The trust store (loaded, and checked against pinned fingerprints, at start) and the sandbox."""

    def __init__(self, settings: SignatureSettings) -> None:
        self.settings = settings
        self.trust = TrustStore.load(settings.trust_path, settings.trust_fingerprints)
        policy = VerifierPolicy(revocation_mode=settings.revocation_mode, fetch_revocation=settings.fetch_revocation,
                                fetch_timeout_seconds=settings.fetch_timeout_seconds,
                                revocation_cache_seconds=settings.revocation_cache_seconds,
                                accept_digital_signature_only=settings.accept_digital_signature_only)
        limits = SandboxLimits(processes=settings.sandbox_processes, time_limit_seconds=settings.time_limit_seconds,
                               memory_limit_mb=settings.memory_limit_mb)
        self.sandbox = VerifierSandbox(partial(PdfVerifier, self.trust, policy), limits)

    def verify(self, pdf: bytes) -> dict[str, Any]:
        if len(pdf) > self.settings.max_pdf_bytes:
            raise TooLarge(self.settings.max_pdf_bytes)
        return self.sandbox.verify(pdf)

    def close(self) -> None:
        self.sandbox.close()


def attachment_jobs(code: str, data: dict[str, Any]) -> list[outbox.NewJob]:
    """One verification job per attachment sent inline as a PDF (attachments by URL are not fetched)."""
    return [outbox.NewJob(signature.QUEUE, signature.VERIFY_ATTACHMENT, code,
                          {"dossier_code": code, "attachment_id": a["id"]})
            for a in data.get("attachments", []) if (a.get("content_base64") or "").startswith(PDF_IN_BASE64)]


def _verdict(report: dict[str, Any]) -> dict[str, Any]:
    return {"indication": report["indication"], "sub_indication": report["sub_indication"],
            "summary_vi": report["summary"]["vi"], "summary_en": report["summary"]["en"],
            "signature_count": report["signature_count"], "report": report}


def _refusal(exc: VerificationRefused) -> dict[str, Any]:
    return {"indication": REFUSED_INDICATION.get(exc.code, "INDETERMINATE"), "sub_indication": "FORMAT_FAILURE",
            "summary_vi": f"Không kiểm tra được chữ ký số của tệp: {exc}.",
            "summary_en": f"The file's signatures could not be verified: {exc}.", "signature_count": 0,
            "report": {"error": {"code": exc.code, "message": str(exc)}}}


class AttachmentSignatureJobs:
    def __init__(self, ctx: Context, signatures: Signatures) -> None:
        self.ctx = ctx
        self.signatures = signatures

    def verify_one(self, payload: dict[str, Any]) -> None:
        code, attachment_id = payload["dossier_code"], payload["attachment_id"]
        with self.ctx.engine.connect() as conn:
            dossier = dossiers.get(conn, code)
        if dossier is None:
            raise PermanentError(f"no dossier {code}")
        attachment = next((a for a in dossier["data"].get("attachments", []) if a["id"] == attachment_id), None)
        if attachment is None or not attachment.get("content_base64"):
            raise PermanentError(f"dossier {code} has no inline attachment {attachment_id!r}")
        try:
            pdf = base64.b64decode(attachment["content_base64"], validate=True)
            outcome = _verdict(self.signatures.verify(pdf))
        except binascii.Error:
            outcome = _refusal(VerificationRefused("not_a_pdf", "the attachment is not valid base64"))
        except VerificationRefused as exc:
            outcome = _refusal(exc)
        except SandboxBusy as exc:
            raise RetryableError(str(exc)) from exc
        with self.ctx.engine.begin() as conn:
            self._store(conn, dossier, attachment, outcome)

    @staticmethod
    def _store(conn: Connection, dossier: Any, attachment: dict[str, Any], outcome: dict[str, Any]) -> None:
        now = server_clock.now()
        row = {"dossier_id": dossier["id"], "attachment_id": attachment["id"], "name": attachment["name"],
               "verified_at": now, **outcome}
        if not attachment_signatures.add(conn, row):
            return
        signers = [s["signer"]["name"] for s in (outcome["report"] or {}).get("signatures", []) if s.get("signer")]
        data = {"attachment_id": attachment["id"], "name": attachment["name"], "indication": outcome["indication"],
                "sub_indication": outcome["sub_indication"],
                "summary": {"vi": outcome["summary_vi"], "en": outcome["summary_en"]},
                "signature_count": outcome["signature_count"], "signers": signers}
        feed.append(conn, type="dossier.attachment_verified", code=dossier["code"], at=now, data=data)
        audit.record(conn, actor="worker", action="attachment.verified", subject=dossier["code"], at=now,
                     detail={k: data[k] for k in ("attachment_id", "indication", "sub_indication")})
