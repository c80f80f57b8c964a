"""The electronic archive's use cases: seal a finished dossier's package, renew its timestamp, forget bodies.

Sealing reads everything the gateway holds on the dossier, writes it as a BagIt bag, extends each signed PDF
to long-term validation, timestamps the tag manifest with the TSA, stores the zip once and checks what it stored
(verify_built). Any partner failure (TSA, OCSP) leaves the package unsealed and flagged; the job retries and
nothing is dropped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from sqlalchemy import Connection

from gateway.adapters.archive import BUILD, QUEUE
from gateway.adapters.archive.bag import add_tag_file, make_bag, unzip_to, zip_bag
from gateway.adapters.archive.storage import AlreadyStored, PackageStore
from gateway.adapters.archive.tsa import TsaClient
from gateway.adapters.base import PermanentError, RetryableError
from gateway.config import ArchiveSettings
from gateway.domain import archive as rules
from gateway.domain.archive import FAILING, SEALED
from gateway.services.archive.verify import PdfCheck, Report, verify_built, verify_package
from gateway.services.unit_of_work import Context
from gateway.store import archive as packages
from gateway.store import attachment_signatures, audit, deliveries, dossiers, notifications, outbox, payments

log = logging.getLogger(__name__)

# Extends one signed PDF to PAdES B-LTA: {"pdf": bytes | None, "note": why not extended, "retry": a partner down}.
Extend = Callable[[bytes], dict[str, Any]]


def _json(data: Any) -> bytes:
    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat()
        if isinstance(value, bytes):
            return {"bytes": len(value)}
        raise TypeError(type(value).__name__)

    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=default).encode() + b"\n"


def _rows(rows: list[Any], drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{k: v for k, v in dict(r).items() if k not in drop} for r in rows]


def _format(name: str, data: bytes) -> str:
    if data[:5] == b"%PDF-":
        return "application/pdf"
    return {"xml": "application/xml", "json": "application/json", "png": "image/png", "jpg": "image/jpeg",
            "jpeg": "image/jpeg"}.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")


@dataclass
class Contents:
    """What one package holds: payload files (paths under data/), their index, notes for the auditor."""

    files: dict[str, bytes] = field(default_factory=dict)
    documents: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)  # partners that were down: the package must wait
    dossier_bytes: int = 0


class Archive:
    def __init__(self, ctx: Context, settings: ArchiveSettings, tsa: TsaClient, store: PackageStore,
                 roots: list[asn1_x509.Certificate], verify_pdf: Callable[[bytes], dict[str, Any]] | None = None,
                 extend: Extend | None = None, pdf_check: PdfCheck | None = None) -> None:
        self.ctx = ctx
        self.settings = settings
        self.tsa = tsa
        self.store = store
        self.roots = roots
        self.verify_pdf = verify_pdf  # the signature report of an attachment nobody verified yet
        self.extend = extend
        self.pdf_check = pdf_check

    # Sealing -------------------------------------------------------------------------------------

    def build_one(self, payload: dict[str, Any]) -> None:
        code = payload["code"]
        now = datetime.now(UTC)
        with self.ctx.engine.connect() as conn:
            row = packages.get(conn, code)
        if row is None:
            raise PermanentError(f"no archive package is due for {code}")
        if row["state"] == SEALED:
            return  # a repeated job: the package exists
        try:
            self._seal(conn_row=dict(row), code=code, now=now)
        except Exception as exc:
            flag = f"not sealed yet: {exc}"[:300]
            with self.ctx.engine.begin() as conn:
                packages.change_unless_sealed(conn, code, now=datetime.now(UTC), state=FAILING,
                                              attempts=row["attempts"] + 1, flag=flag,
                                              last_error=f"{type(exc).__name__}: {exc}"[:2000])
            if isinstance(exc, RetryableError | PermanentError):
                raise
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc

    def _seal(self, *, conn_row: dict[str, Any], code: str, now: datetime) -> None:
        self.store.sweep(code)  # what a killed build left behind
        version = conn_row["version"] + 1
        latest = self.store.latest(code)
        if latest is not None and latest[0] >= version:
            # A worker stored this package and died before recording it: adopt it if it verifies whole.
            report = self.verify(latest[1])
            if report.ok:
                self.record_version(code, latest[0], latest[1], report, notes=self._notes_of(latest[1]),
                                    dossier_bytes=conn_row.get("dossier_bytes"), adopted=True)
                return
            version = latest[0] + 1  # never overwritten: the broken file stays for an operator to look at
        with self.ctx.engine.connect() as conn:
            contents = self.contents(conn, code)
            dossier = dossiers.get(conn, code)
        if contents.retry:
            raise RetryableError("; ".join(contents.retry)[:500])
        years = self.settings.retention_years(dossier["procedure_code"])
        meta = rules.metadata(dict(dossier), final_at=conn_row["final_at"], retention_years=years,
                              agency=self.settings.agency, agency_code=self.settings.agency_code,
                              documents=contents.documents, notes=contents.notes)
        contents.files["metadata.json"] = _json(meta)
        scratch = self.store.scratch(code)
        try:
            tagmanifest = make_bag(scratch, contents.files, rules.bag_info(meta, sealed_at=now))
            digest = self.settings.timestamp_digest
            token = self.tsa.stamp(rules.chain_imprint(tagmanifest, [], digest), digest)
            add_tag_file(scratch, rules.token_name(1), token)
            data = zip_bag(scratch, rules.package_label(code, version))
            try:
                path = self.store.write_once(code, version, data)
            except AlreadyStored:
                raise RetryableError(f"package version {version} of {code} appeared meanwhile; trying again") \
                    from None
            report = verify_built(path, data, scratch, code, self.roots, pdf_check=self.pdf_check)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self.record_version(code, version, path, report, notes=contents.notes,
                            dossier_bytes=contents.dossier_bytes, years=years)

    def verify(self, path: Path) -> Report:
        return verify_package(path, self.roots, pdf_check=self.pdf_check)

    def _notes_of(self, path: Path) -> list[str]:
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            folder = unzip_to(path, Path(scratch))
            meta = json.loads((folder / "data" / "metadata.json").read_text(encoding="utf-8"))
        note = next((f["value"] for f in meta["fields"] if f["key"] == "chu_giai"), None)
        return note.split("; ") if note else []

    def record_version(self, code: str, version: int, path: Path, report: Report, *, notes: list[str],
                       dossier_bytes: int | None = None, years: int | None = None, adopted: bool = False,
                       renewal: bool = False) -> None:
        """Record a package file just stored (sealed, or a renewal's new version) with what its check found.
        Its time is now, when it is stored and checked: the end of "final status to sealed"."""
        now = datetime.now(UTC)
        newest = report.timestamps[-1] if report.timestamps else {}
        failed = [f"{i.item}: {i.detail}" for i in report.items if i.verdict == "FAILED"]
        flag = ("stored, but it does not verify: " + failed[0])[:300] if failed else \
            ("sealed; " + "; ".join(notes))[:300] if notes else None
        values: dict[str, Any] = {
            "state": SEALED, "version": version, "path": self.store.relative(path),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "size": path.stat().st_size,
            "timestamp_at": _parse(newest.get("time")),
            # Renew before the first of the newest token's certificates ends (the TSA's, or its CA's).
            "tsa_not_after": _parse(newest.get("valid_until") or newest.get("tsa_not_after")),
            "timestamp_digest": newest.get("digest"), "timestamps": len(report.timestamps),
            "verified_at": now if report.ok else None, "flag": flag, "last_error": None, "renew_after": None,
        }
        if not renewal:
            values.update(sealed_at=now, notes=notes)
        if dossier_bytes is not None:
            values["dossier_bytes"] = dossier_bytes
        with self.ctx.engine.begin() as conn:
            row = packages.get(conn, code)
            if years is not None:
                values["retention_years"] = years
                values["retain_until"] = rules.retain_until(row["final_at"], years)
            packages.change(conn, code, now=now, **values)
            audit.record(conn, actor="archive", action="archive.renewed" if renewal else "archive.sealed",
                         subject=code, at=now, detail={"version": version, "sha256": values["sha256"],
                                                       "verified": report.ok, "adopted": adopted,
                                                       "timestamps": values["timestamps"]})
        log.info("archive package %s v%d %s (%d bytes, verified %s)", code, version,
                 "renewed" if renewal else "sealed", values["size"], report.ok)

    def contents(self, conn: Connection, code: str) -> Contents:
        """Everything the gateway holds on the dossier, as the package's payload files."""
        out = Contents()
        dossier = dossiers.get(conn, code)
        if dossier is None:
            raise PermanentError(f"no dossier {code}")
        data = dict(dossier["data"])
        # The dossier's own size: what was filed, its attachments counted once, as bodies (below), not base64.
        filed_only = {**data, "attachments": [{k: v for k, v in a.items() if k != "content_base64"}
                                              for a in data.get("attachments") or []]}
        out.dossier_bytes += len(json.dumps(filed_only, ensure_ascii=False).encode())
        verdicts = {v["attachment_id"]: dict(v) for v in attachment_signatures.of_dossier(conn, dossier["id"])}
        index = []
        filed = []
        for n, attachment in enumerate(data.get("attachments") or [], start=1):
            entry = {k: v for k, v in attachment.items() if k != "content_base64"}
            filed.append(entry)
            body = _decode(attachment.get("content_base64"))
            if body is None:
                index.append({**entry, "path": None, "note": "filed as a link, not a file: not in the package"
                              if attachment.get("url") else "no readable content"})
                continue
            name = f"attachments/{n:02d}-{rules.safe_name(attachment['name'])}"
            entry.update(self._attachment(out, n, attachment, body, verdicts.get(attachment["id"])))
            entry["path"] = name
            out.files[name] = entry.pop("_bytes")
            out.documents.append({"path": f"data/{name}", "name": attachment["name"], "kind": "thành phần hồ sơ",
                                  "format": _format(attachment["name"], body), "sha256_filed": entry["sha256_filed"]})
            index.append(entry)
        out.files["dossier.json"] = _json({"code": dossier["code"], "source": dossier["source"],
                                           "received_at": dossier["received_at"], "filed": {**data,
                                                                                            "attachments": filed}})
        out.files["attachments.json"] = _json(index)
        out.files["history.json"] = _json(_rows(dossiers.history(conn, dossier["id"]), drop=("dossier_id",)))
        self._payments(conn, out, dossier)
        self._deliveries(conn, out, dossier)
        self._notifications(conn, out, code)
        self._audit(conn, out, code)
        return out

    def _attachment(self, out: Contents, n: int, attachment: dict[str, Any], body: bytes,
                    verdict: dict[str, Any] | None) -> dict[str, Any]:
        out.dossier_bytes += len(body)
        entry: dict[str, Any] = {"sha256_filed": hashlib.sha256(body).hexdigest(), "length_filed": len(body),
                                 "signed": False, "extended": False, "_bytes": body}
        if body[:5] != b"%PDF-":
            return entry
        report = verdict["report"] if verdict else None
        error = None
        if report is None and self.verify_pdf is not None:
            try:
                report = self.verify_pdf(body)
            except Exception as exc:  # noqa: BLE001 - a file that cannot be verified is said so in the package
                error = str(exc)
        stem = f"signatures/{n:02d}-{rules.safe_name(attachment['id'])}"
        out.files[f"{stem}.json"] = _json(report if report is not None else {"error": error or "not verified"})
        out.files[f"{stem}.txt"] = rules.signature_text(attachment["name"], report, error).encode()
        signed = bool(report and report.get("signature_count"))
        entry["signed"] = signed
        entry["signature_report"] = f"{stem}.json"
        if not signed or self.extend is None:
            return entry
        outcome = self.extend(body)
        if outcome.get("retry"):
            out.retry.append(f"{attachment['name']}: {outcome['retry']}")
        elif outcome.get("pdf"):
            extended = outcome["pdf"]
            if extended[: len(body)] == body:  # an incremental update: the file as filed is its first bytes
                entry.update(extended=True, ltv=outcome.get("ltv"), _bytes=extended)
            else:
                out.notes.append(f"{attachment['name']}: the extended file does not keep the original bytes; "
                                 "kept as filed")
        else:
            note = f"{attachment['name']}: not extended to long-term validation ({outcome.get('note')})"
            entry["ltv_note"] = note
            out.notes.append(note)
        return entry

    def _payments(self, conn: Connection, out: Contents, dossier: Any) -> None:
        rows = payments.of_dossier(conn, dossier["id"])
        listed = _rows(rows, drop=("request_fingerprint", "idempotency_key", "payer_ip"))
        for row, view in zip(rows, listed, strict=True):
            pdf = payments.receipt(conn, row["id"])
            if pdf:
                name = f"receipts/{rules.safe_name(row['reference'])}.pdf"
                out.files[name] = pdf
                out.dossier_bytes += len(pdf)
                view["receipt"] = name
                out.documents.append({"path": f"data/{name}", "name": f"Biên lai {row['reference']}",
                                      "kind": "biên lai", "format": "application/pdf",
                                      "sha256_filed": hashlib.sha256(pdf).hexdigest()})
        out.files["payments.json"] = _json(listed)

    def _deliveries(self, conn: Connection, out: Contents, dossier: Any) -> None:
        row = deliveries.of_dossier(conn, dossier["id"])
        view = None
        if row is not None:
            view = {**_rows([row], drop=("request_fingerprint",))[0], "tracking": _rows(deliveries.events(conn,
                                                                                                          row["id"]))}
        out.files["deliveries.json"] = _json(view)

    def _notifications(self, conn: Connection, out: Contents, code: str) -> None:
        listed = []
        for row in notifications.of_dossier(conn, code):
            view = _rows([row], drop=("source_key",))[0]
            files = []
            for m, attachment in enumerate(notifications.attachments(conn, row["id"]), start=1):
                name = f"results/{rules.safe_name(row['reference'])}-{m:02d}-{rules.safe_name(attachment['filename'])}"
                body = attachment["content"]
                if not body:
                    files.append({"filename": attachment["filename"], "path": None, "note": "body dropped"})
                    continue
                out.files[name] = body
                out.dossier_bytes += len(body)
                files.append({"filename": attachment["filename"], "content_type": attachment["content_type"],
                              "path": name, "sha256": hashlib.sha256(body).hexdigest()})
                out.documents.append({"path": f"data/{name}", "name": attachment["filename"], "kind": "kết quả",
                                      "format": attachment["content_type"],
                                      "sha256_filed": hashlib.sha256(body).hexdigest()})
            view["attachments"] = files
            listed.append(view)
        out.files["notifications.json"] = _json(listed)

    def _audit(self, conn: Connection, out: Contents, code: str) -> None:
        records = packages.audit_records(conn, code)
        head = audit.head(conn)
        anchor = packages.last_anchor(conn)
        out.files["audit.json"] = _json({
            "how_to_check": "each record's hash is HMAC-SHA256(chain key, prev_hash + newline + content), content "
                            "as gateway/domain/audit_chain.py writes it; the chain head and its last TSA anchor "
                            "below place these records in the whole chain (gateway audit verify)",
            "records": _rows(records),
            "chain_head": dict(head) if head else None,
            "anchor": {"seq": anchor["seq"], "hash": anchor["hash"], "time": anchor["timestamp_at"],
                       "token_base64": base64.b64encode(anchor["token"]).decode()} if anchor else None,
        })

    # Jobs for the worker -------------------------------------------------------------------------

    def schedule_unsealed(self) -> int:
        """A package is never given up: its build job, buried after its attempts (a long TSA or OCSP outage),
        is revived at each scan, and an unsealed package without a job gets one. How many jobs were sent."""
        now = datetime.now(UTC)
        with self.ctx.engine.begin() as conn:
            rows = packages.unsealed(conn)
            codes = {r["dossier_code"] for r in rows}
            dead = [j for j in outbox.list_by_state(conn, outbox.DEAD, queue=QUEUE, limit=500)
                    if j["ordering_key"] in codes]
            revived = [j["id"] for j in dead if outbox.revive(conn, j["id"], now=now) is not None]
            busy = outbox.keys_with_unfinished(conn, QUEUE, sorted(codes))
            due = [r for r in rows if r["dossier_code"] not in busy]
            ids = outbox.enqueue_many(conn, [(outbox.NewJob(QUEUE, BUILD, r["dossier_code"],
                                                            {"code": r["dossier_code"]}), True) for r in due],
                                      now=now, max_attempts=self.ctx.jobs.max_attempts) if due else []
        sent = [(i, QUEUE) for i in [*revived, *ids]]
        if sent:
            self.ctx.publish_after_commit(sent)
        return len(sent)


def _decode(content: str | None) -> bytes | None:
    if not content:
        return None
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        return None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def pending_row(dossier: dict[str, Any], status: int, at: datetime) -> dict[str, Any]:
    return {"dossier_id": dossier["id"], "dossier_code": dossier["code"], "final_status": status, "final_at": at}

