"""What an archive package holds: everything the gateway has on a finished dossier, as payload files.

The dossier as filed with each attachment as a file (signed PDFs extended to PAdES B-LTA when they can be, each with
its signature report), its steps, payments and receipts, the public-post booking, every message sent about it, and
its audit records with the chain's head and newest TSA anchor (docs/archive.md lists each file).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, RowMapping

from gateway.adapters.base import PermanentError
from gateway.domain import archive as rules
from gateway.store import archive as packages
from gateway.store import attachment_signatures, audit, deliveries, dossiers, notifications, payments

# Extends one signed PDF to PAdES B-LTA: {"pdf": bytes | None, "note": why not extended, "retry": a partner down}.
Extend = Callable[[bytes], dict[str, Any]]


def _file_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes):
        return {"bytes": len(value)}
    raise TypeError(type(value).__name__)


# Datetimes through _file_value (in UTC, as json's default gave them); keys that are not strings made strings.
_FILE_JSON = (orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_DATETIME
              | orjson.OPT_NON_STR_KEYS)


def json_file(data: Any) -> bytes:
    """A JSON file of the package: UTF-8, indented, keys sorted, times in UTC.

    orjson: the bytes json.dumps(ensure_ascii=False, indent=2, sort_keys=True) gave (tests/test_archive_json.py),
    but for the exponent of a small float ("1e-7", not "1e-07"; the same number), at about a quarter of the CPU
    (394 -> 88 us for 30 rows): an indent sends json.dumps to its pure-Python encoder, 4 % of a worker's samples at
    210 events/s (docs/performance.md, sixth round)."""
    return orjson.dumps(data, default=_file_value, option=_FILE_JSON)


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
    dossier: Any = None  # the dossier's row, as read


@dataclass(frozen=True)
class Chain:
    """The audit chain's head and newest TSA anchor at sealing: read once for a batch, the same in each package."""

    head: Any
    anchor: Any

    @classmethod
    def now(cls, conn: Connection) -> Chain:
        return cls(audit.head(conn), packages.last_anchor(conn))


def _by(rows: list[RowMapping], key: str) -> dict[Any, list[RowMapping]]:
    grouped: dict[Any, list[RowMapping]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped


@dataclass(frozen=True)
class BatchRows:
    """What the packages of a batch hold in the database, read in one statement per table for the whole batch, not one
    per table and package (ten or so a package: 1.7 of the workers' 4.8 statements per event at 150 events/s mixed,
    docs/performance.md). Not the dossiers' own rows, whose filed attachments can be megabytes each, nor the bodies of
    their messages' attachments: those are read a package at a time. Read before the audit chain's head (Chain), so
    that the head covers every record read."""

    verdicts: dict[int, list[RowMapping]]  # by dossier id
    history: dict[int, list[RowMapping]]  # by dossier id, in order
    payments: dict[int, list[RowMapping]]  # by dossier id
    receipts: dict[int, bytes]  # by payment id
    delivery: dict[int, RowMapping]  # by dossier id
    tracking: dict[int, list[RowMapping]]  # by delivery id
    notifications: dict[str, list[RowMapping]]  # by dossier code
    audit: dict[str, list[RowMapping]]  # by dossier code, in the chain's order

    @classmethod
    def read(cls, conn: Connection, dossier_ids: list[int], codes: list[str]) -> BatchRows:
        if not dossier_ids:  # every package of the batch sealed already (repeated jobs)
            return cls({}, {}, {}, {}, {}, {}, {}, {})
        paid = payments.of_dossiers(conn, dossier_ids)
        booked = deliveries.of_dossiers(conn, dossier_ids)
        return cls(verdicts=_by(attachment_signatures.of_dossiers(conn, dossier_ids), "dossier_id"),
                   history=_by(dossiers.histories(conn, dossier_ids), "dossier_id"),
                   payments=_by(paid, "dossier_id"),
                   receipts=payments.receipts(conn, [row["id"] for row in paid]),
                   delivery={dossier_id: rows[0] for dossier_id, rows in _by(booked, "dossier_id").items()},
                   tracking=_by(deliveries.events_of(conn, [row["id"] for row in booked]), "delivery_id"),
                   notifications=_by(notifications.of_dossiers(conn, codes), "dossier_code"),
                   audit=_by(packages.audit_records(conn, codes), "subject"))


class ContentsReader:
    """Reads a dossier's package contents; verifies and extends its signed PDFs through the callables given."""

    def __init__(self, verify_pdf: Callable[[bytes], dict[str, Any]] | None = None,
                 extend: Extend | None = None) -> None:
        self.verify_pdf = verify_pdf  # the signature report of an attachment nobody verified yet
        self.extend = extend

    def read(self, conn: Connection, code: str, chain: Chain, rows: BatchRows) -> Contents:
        """Everything the gateway holds on the dossier, as the package's payload files, from its own row and the
        batch's rows; `chain`: the audit chain at sealing, read once for the batch."""
        out = Contents()
        dossier = dossiers.get(conn, code)
        if dossier is None:
            raise PermanentError(f"no dossier {code}")
        out.dossier = dossier
        data = dict(dossier["data"])
        # The dossier's own size: what was filed, its attachments counted once, as bodies (below), not base64.
        filed_only = {**data, "attachments": [{k: v for k, v in a.items() if k != "content_base64"}
                                              for a in data.get("attachments") or []]}
        out.dossier_bytes += len(json.dumps(filed_only, ensure_ascii=False).encode())
        verdicts = {v["attachment_id"]: dict(v) for v in rows.verdicts.get(dossier["id"], [])}
        # Extending the attachments calls the TSA, OCSP responders and CRL points, for many seconds when they are
        # slow: no transaction stays open meanwhile (idle_in_transaction_session_timeout would end the session;
        # each statement reads committed data on its own anyway). The reads below begin a new one.
        conn.rollback()
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
        out.files["dossier.json"] = json_file({"code": dossier["code"], "source": dossier["source"],
                                           "received_at": dossier["received_at"], "filed": {**data,
                                                                                            "attachments": filed}})
        out.files["attachments.json"] = json_file(index)
        out.files["history.json"] = json_file(_rows(rows.history.get(dossier["id"], []), drop=("dossier_id",)))
        self._payments(rows, out, dossier)
        self._deliveries(rows, out, dossier)
        self._notifications(conn, rows, out, code)
        self._audit(rows, out, code, chain)
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
        out.files[f"{stem}.json"] = json_file(report if report is not None else {"error": error or "not verified"})
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

    def _payments(self, batch: BatchRows, out: Contents, dossier: Any) -> None:
        rows = batch.payments.get(dossier["id"], [])
        listed = _rows(rows, drop=("request_fingerprint", "idempotency_key", "payer_ip"))
        for row, view in zip(rows, listed, strict=True):
            pdf = batch.receipts.get(row["id"])
            if pdf:
                name = f"receipts/{rules.safe_name(row['reference'])}.pdf"
                out.files[name] = pdf
                out.dossier_bytes += len(pdf)
                view["receipt"] = name
                out.documents.append({"path": f"data/{name}", "name": f"Biên lai {row['reference']}",
                                      "kind": "biên lai", "format": "application/pdf",
                                      "sha256_filed": hashlib.sha256(pdf).hexdigest()})
        out.files["payments.json"] = json_file(listed)

    def _deliveries(self, batch: BatchRows, out: Contents, dossier: Any) -> None:
        row = batch.delivery.get(dossier["id"])
        view = None
        if row is not None:
            view = {**_rows([row], drop=("request_fingerprint",))[0],
                    "tracking": _rows(batch.tracking.get(row["id"], []))}
        out.files["deliveries.json"] = json_file(view)

    def _notifications(self, conn: Connection, batch: BatchRows, out: Contents, code: str) -> None:
        listed = []
        sent = batch.notifications.get(code, [])
        attached = notifications.attachments_of(conn, [row["id"] for row in sent])  # one look-up for them all
        for row in sent:
            view = _rows([row], drop=("source_key",))[0]
            files = []
            for m, attachment in enumerate(attached.get(row["id"], []), start=1):
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
        out.files["notifications.json"] = json_file(listed)

    def _audit(self, batch: BatchRows, out: Contents, code: str, chain: Chain) -> None:
        records = batch.audit.get(code, [])
        head, anchor = chain.head, chain.anchor
        out.files["audit.json"] = json_file({
            "how_to_check": "each record's hash is HMAC-SHA256(chain key, prev_hash + newline + content), content "
                            "as gateway/domain/audit_chain.py writes it; the chain head and its last TSA anchor "
                            "below place these records in the whole chain (gateway audit verify)",
            "records": _rows(records),
            "chain_head": dict(head) if head else None,
            "anchor": {"seq": anchor["seq"], "hash": anchor["hash"], "time": anchor["timestamp_at"],
                       "token_base64": base64.b64encode(anchor["token"]).decode()} if anchor else None,
        })


def _decode(content: str | None) -> bytes | None:
    if not content:
        return None
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        return None
