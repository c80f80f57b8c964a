"""How stored rows are shown to callers."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from gateway.domain.archive import STATE_LABELS_VI as ARCHIVE_LABELS_VI
from gateway.domain.codes import LEVEL_NUMBER, STATUS_LABELS_VI, Status
from gateway.domain.delivery import STATE_LABELS_VI as DELIVERY_LABELS_VI
from gateway.domain.delivery import DeliveryState
from gateway.domain.dossier import VN_TZ
from gateway.domain.payment import STATE_LABELS_VI as PAYMENT_LABELS_VI
from gateway.domain.payment import PaymentState
from gateway.domain.portal_drift import KIND_LABELS_VI as DRIFT_LABELS_VI
from gateway.domain.portal_drift import STATE_LABELS_VI as FINDING_LABELS_VI
from gateway.domain.portal_drift import Kind as DriftKind
from gateway.domain.portal_drift import State as FindingState


def vn_time(value: datetime | None) -> str | None:
    return value.astimezone(VN_TZ).isoformat() if value else None


def step(row: Any) -> dict[str, Any]:
    data = row["data"]
    return {
        "seq": row["seq"], "event_id": row["event_id"], "from_status": row["from_status"], "status": row["status"],
        "status_label": STATUS_LABELS_VI[Status(row["status"])], "at": vn_time(row["at"]),
        "officer": data.get("officer"), "position": data.get("position"), "department": data.get("department"),
        "note": data.get("note"), "due_at": data.get("due_at"),
        **({"fees": data["fees"], "payment_id": data.get("payment_id")} if data.get("fees") else {}),
    }


def attachment_verdict(row: Any) -> dict[str, Any]:
    report = row["report"] or {}
    return {"indication": row["indication"], "sub_indication": row["sub_indication"],
            "summary": {"vi": row["summary_vi"], "en": row["summary_en"]}, "signature_count": row["signature_count"],
            "verified_at": vn_time(row["verified_at"]), "signatures": report.get("signatures", []),
            **({"error": report["error"]} if "error" in report else {})}


def attachment_url(code: str, attachment_id: str) -> str:
    return f"/api/v1/dossiers/{code}/attachments/{quote(attachment_id, safe='')}"


def result_url(reference: str, number: int) -> str:
    return f"/api/v1/notifications/{reference}/attachments/{number}"


def dossier(row: Any, history: list[Any] | None = None, verdicts: list[Any] | None = None) -> dict[str, Any]:
    signed = {v["attachment_id"]: attachment_verdict(v) for v in verdicts or []}
    view = {
        **row["data"],
        "level": row["level"],
        "level_number": LEVEL_NUMBER[row["level"]],
        "source": row["source"],
        "status": row["status"],
        "status_label": STATUS_LABELS_VI[Status(row["status"])],
        "received_at": vn_time(row["received_at"]),
        "due_at": vn_time(row["due_at"]),
        "acknowledge_by": vn_time(row.get("ack_due_at")),  # the 8-working-hour deadline to accept or refuse
        "created_at": vn_time(row["created_at"]),
        "updated_at": vn_time(row["updated_at"]),
    }
    if history is not None:
        view["history"] = [step(h) for h in history]
    # Each file (inline, or archived by data minimisation) has its download address; each verified one its verdict
    # (the others are not PDFs or not checked yet).
    view["attachments"] = [{**a, **({"content_url": attachment_url(row["code"], a["id"])}
                                    if a.get("content_base64") or a.get("archived") else {}),
                            **({"signature": signed[a["id"]]} if a["id"] in signed else {})}
                           for a in view.get("attachments", [])]
    return view


def citizen(row: Any) -> dict[str, Any]:
    """What a citizen may see when looking a dossier up: no ID number, no contact details."""
    return {
        "code": row["code"], "procedure_name": row["procedure_name"], "applicant_name": row["applicant_name"],
        "received_at": vn_time(row["received_at"]), "due_at": vn_time(row["due_at"]), "status": row["status"],
        "status_label": STATUS_LABELS_VI[Status(row["status"])],
    }


def job(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"], "queue": row["queue"], "kind": row["kind"], "ordering_key": row["ordering_key"],
        "state": row["state"], "attempts": row["attempts"], "max_attempts": row["max_attempts"],
        "last_error": row["last_error"], "next_attempt_at": vn_time(row["next_attempt_at"]),
        "created_at": vn_time(row["created_at"]), "updated_at": vn_time(row["updated_at"]),
        "finished_at": vn_time(row["finished_at"]), "payload": row["payload"],
    }


def payment(row: Any, *, has_receipt: bool = False) -> dict[str, Any]:
    base = f"/api/v1/dossiers/{row['dossier_code']}/payments/{row['reference']}"
    return {
        "id": row["reference"], "dossier_code": row["dossier_code"], "provider": row["provider"],
        "state": row["state"], "state_label": PAYMENT_LABELS_VI[PaymentState(row["state"])],
        "amount": row["amount"], "currency": "VND", "items": row["items"], "description": row["description"],
        "pay_url": row["pay_url"], "expires_at": vn_time(row["expires_at"]), "paid_at": vn_time(row["paid_at"]),
        "transaction_id": row["transaction_id"], "settled_by": row["settled_by"], "origin": row["origin"],
        "flag": row["flag"], "last_error": row["last_error"],
        "receipt_url": f"{base}/receipt" if has_receipt else None,
        "created_at": vn_time(row["created_at"]), "updated_at": vn_time(row["updated_at"]),
    }


def notification(row: Any, attempts: list[Any] | None = None, attachments: list[Any] | None = None) -> dict[str, Any]:
    view = {
        "id": row["reference"], "dossier_code": row["dossier_code"], "channel": row["channel"],
        "to": row["recipient"], "template": row["template"], "subject": row["subject"], "body": row["body"],
        "encoding": row["encoding"], "segments": row["segments"], "state": row["state"], "provider": row["provider"],
        "provider_message_id": row["provider_message_id"], "attempts": row["attempts"],
        "last_error": row["last_error"], "origin": row["origin"], "created_at": vn_time(row["created_at"]),
        "sent_at": vn_time(row["sent_at"]),
    }
    if attempts is not None:
        view["attempt_log"] = [{"at": vn_time(a["at"]), "provider": a["provider"], "outcome": a["outcome"],
                                "detail": a["detail"]} for a in attempts]
    if attachments is not None:
        view["attachments"] = [{"filename": f["filename"], "content_type": f["content_type"],
                                "size": f["size"] if f["size"] is not None else len(f["content"]),
                                "url": result_url(row["reference"], n), "dropped_at": vn_time(f["dropped_at"])}
                               for n, f in enumerate(attachments, start=1)]
    return view


def delivery(row: Any, events: list[Any] | None = None) -> dict[str, Any]:
    view = {
        "id": row["reference"], "dossier_code": row["dossier_code"], "provider": row["provider"],
        "state": row["state"], "state_label": DELIVERY_LABELS_VI[DeliveryState(row["state"])],
        "waybill": row["waybill"], "cod_amount": row["cod_amount"], "receiver": row["receiver"],
        "status_code": row["status_code"], "status_message": row["status_message"],
        "status_at": vn_time(row["status_at"]), "delivered_at": vn_time(row["delivered_at"]),
        "last_error": row["last_error"], "created_at": vn_time(row["created_at"]),
        "updated_at": vn_time(row["updated_at"]),
    }
    if events is not None:
        view["tracking"] = [{"status_code": e["status_code"], "status_message": e["status_message"],
                             "at": vn_time(e["at"]), "via": e["via"], "applied": e["applied"]} for e in events]
    return view


def sla_breach(row: Any, now: datetime) -> dict[str, Any]:
    return {"code": row["code"], "procedure_name": row["procedure_name"], "applicant_name": row["applicant_name"],
            "received_at": vn_time(row["received_at"]), "acknowledge_by": vn_time(row["ack_due_at"]),
            "overdue_minutes": int((now - row["ack_due_at"]).total_seconds() // 60)}


def archive_package(row: Any) -> dict[str, Any]:
    sealed = row["state"] == "sealed"
    return {"state": row["state"], "state_label": ARCHIVE_LABELS_VI[row["state"]], "version": row["version"],
            "timestamps": row["timestamps"], "sealed_at": vn_time(row["sealed_at"]),
            "verified_at": vn_time(row["verified_at"]),
            "timestamp_at": vn_time(row["timestamp_at"]), "renew_by": vn_time(row["tsa_not_after"]),
            "retention_years": row["retention_years"], "retain_until": vn_time(row["retain_until"]),
            "minimised_at": vn_time(row["minimised_at"]), "flag": row["flag"], "sha256": row["sha256"],
            "size": row["size"], "attempts": row["attempts"], "last_error": row["last_error"],
            "url": f"/api/v1/dossiers/{row['dossier_code']}/archive" if sealed else None}


def portal_finding(row: Any) -> dict[str, Any]:
    """A drift finding: the differences side by side (what the gateway sent, what the portal holds)."""
    return {"id": row["id"], "code": row["dossier_code"], "kind": row["kind"],
            "kind_label": DRIFT_LABELS_VI[DriftKind(row["kind"])], "state": row["state"],
            "state_label": FINDING_LABELS_VI[FindingState(row["state"])],
            "differences": [{k: d.get(k) for k in ("field", "gateway", "portal", "kind")} for d in row["differences"]],
            "repairs": row["repairs"], "repair_jobs": row["repair_jobs"] or [], "note": row["note"],
            "first_seen_at": vn_time(row["first_seen_at"]), "last_seen_at": vn_time(row["last_seen_at"]),
            "resolved_at": vn_time(row["resolved_at"]), "resolved_by": row["resolved_by"]}


def portal_check(row: Any) -> dict[str, Any]:
    return {"code": row["dossier_code"], "outcome": row["outcome"], "detail": row["detail"],
            "checked_at": vn_time(row["checked_at"]), "next_check_at": vn_time(row["next_check_at"]),
            "checks": row["checks"]}
