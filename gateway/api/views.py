"""How stored rows are shown to callers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.domain.codes import LEVEL_NUMBER, STATUS_LABELS_VI, Status
from gateway.domain.dossier import VN_TZ


def vn_time(value: datetime | None) -> str | None:
    return value.astimezone(VN_TZ).isoformat() if value else None


def step(row: Any) -> dict[str, Any]:
    data = row["data"]
    return {
        "seq": row["seq"], "event_id": row["event_id"], "from_status": row["from_status"], "status": row["status"],
        "status_label": STATUS_LABELS_VI[Status(row["status"])], "at": vn_time(row["at"]),
        "officer": data.get("officer"), "position": data.get("position"), "department": data.get("department"),
        "note": data.get("note"), "due_at": data.get("due_at"),
    }


def dossier(row: Any, history: list[Any] | None = None) -> dict[str, Any]:
    view = {
        **row["data"],
        "level": row["level"],
        "level_number": LEVEL_NUMBER[row["level"]],
        "source": row["source"],
        "status": row["status"],
        "status_label": STATUS_LABELS_VI[Status(row["status"])],
        "received_at": vn_time(row["received_at"]),
        "due_at": vn_time(row["due_at"]),
        "created_at": vn_time(row["created_at"]),
        "updated_at": vn_time(row["updated_at"]),
    }
    if history is not None:
        view["history"] = [step(h) for h in history]
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


def feed_item(row: Any) -> dict[str, Any]:
    return {"cursor": str(row["id"]), "type": row["type"], "code": row["code"], "at": vn_time(row["at"]),
            "data": row["data"]}
