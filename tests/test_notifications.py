"""Citizen notifications end to end, on both stacks: a real worker sends through the SMS and SMTP mocks."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from gateway.adapters.sms_email.viettel import numeric_request_id
from gateway.domain.sms_text import measure

from .conftest import dossier_body, wait_for

ONE_STOP = {"Authorization": "Bearer dev-one-stop-key"}
ADDRESS = "nhung@example.vn"


def told(gw, code: str) -> list[dict[str, Any]]:
    return gw.get(f"/api/v1/dossiers/{code}/notifications").get_json()["items"]


def settled(gw, reference: str, state: str = "sent") -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        view = gw.get(f"/api/v1/notifications/{reference}").get_json()
        return view if view["state"] == state else None

    return wait_for(done, 30, what=f"notification {reference} {state}")


def one(items: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [i for i in items if all(i.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, items)
    return found[0]


def send(gw, **body: Any):  # noqa: ANN201
    return gw.client.post("/api/v1/notifications", json=body, headers=ONE_STOP)


def test_filing_tells_the_citizen_by_sms_and_email_in_vietnamese(gw):
    code = gw.file(dossier_body())["code"]
    items = told(gw, code)
    sms, email = one(items, channel="sms"), one(items, channel="email")
    assert sms["to"] == "84912345678" and email["to"] == ADDRESS
    sent = settled(gw, sms["id"])
    # Without diacritics by default: GSM-7, one segment, exactly as the provider received it.
    assert sent["encoding"] == "gsm7" and sent["segments"] == measure(sent["body"]).segments
    assert f"Ho so {code} (Dang ky khai sinh) da duoc gui" in sent["body"]
    at_provider = [m for m in gw.viettel.messages(receiver="84912345678")
                   if m["request_id"] == numeric_request_id(sms["id"])]
    assert [m["content"] for m in at_provider] == [sent["body"]] and at_provider[0]["unicode"] is False
    settled(gw, email["id"])
    mail = [m for m in gw.mail.messages(to=ADDRESS) if code in (m["subject"] or "")]
    assert len(mail) == 1
    assert mail[0]["subject"] == f"Hồ sơ {code} đã được gửi thành công"
    assert "Kính gửi Ông/Bà Nguyễn Thị Hồng Nhung," in mail[0]["text"] and "Đăng ký khai sinh" in mail[0]["text"]


def test_sms_with_diacritics_survives_as_ucs2(gw, monkeypatch):
    monkeypatch.setattr(gw.gateway.notifier.settings.sms, "diacritics", True)
    r = send(gw, channel="sms", to="0912 345 678", template="refused",
             params={"dossier": {"code": "H56-240725-0001"}, "event": {"note": "Thiếu giấy chứng sinh bản gốc"}})
    assert r.status_code == 202, r.get_json()
    view = r.get_json()
    assert view["encoding"] == "ucs2" and view["segments"] == 2  # 74 UTF-16 units: over 70, two parts of 67
    settled(gw, view["id"])
    (message,) = [m for m in gw.viettel.messages() if m["request_id"] == numeric_request_id(view["id"])]
    assert message["unicode"] is True
    assert message["content"] == "Hồ sơ H56-240725-0001 không được tiếp nhận. Lý do: Thiếu giấy chứng sinh bản gốc"


def test_first_provider_down_the_next_one_takes_over(gw):
    gw.viettel.faults("http_500", 1)
    r = send(gw, channel="sms", to="0987654321", template="withdrawn", params={"dossier": {"code": "H56-240725-0002"}})
    view = settled(gw, r.get_json()["id"])
    assert view["provider"] == "vnpt" and view["attempts"] == 1
    assert [(a["provider"], a["outcome"]) for a in view["attempt_log"]] == [("viettel", "retryable"), ("vnpt", "sent")]
    assert [m["content"] for m in gw.vnpt.messages(receiver="84987654321")][-1] == view["body"]


def test_a_permanent_refusal_is_not_retried_nor_sent_elsewhere(gw):
    gw.viettel.faults("error_code", 1, code="Check ReceiverID: FORMAT_ERROR")
    before = len(gw.vnpt.requests())
    r = send(gw, channel="sms", to="0911111111", template="withdrawn", params={"dossier": {"code": "H56-240725-0003"}})
    view = settled(gw, r.get_json()["id"], state="failed")
    assert view["attempts"] == 1 and [a["outcome"] for a in view["attempt_log"]] == ["rejected"]
    assert "Check ReceiverID: FORMAT_ERROR" in view["last_error"]
    assert len(gw.vnpt.requests()) == before  # nobody else was asked
    dead = gw.get("/ops/dead-letters", key="dev-ops-key").get_json()["items"]
    assert any(d["payload"].get("reference") == view["id"] for d in dead)


def test_transient_email_failure_is_retried(gw):
    gw.mail.faults("http_500", 1)  # the SMTP mock answers 451
    dossier = {"code": "H56-1", "applicant_name": "Lê Văn An", "procedure_name": "Cấp phiếu lý lịch tư pháp"}
    r = send(gw, channel="email", to="an@example.vn", template="withdrawn", params={"dossier": dossier})
    view = settled(gw, r.get_json()["id"])
    assert view["attempts"] == 2 and [a["outcome"] for a in view["attempt_log"]] == ["retryable", "sent"]
    assert len([m for m in gw.mail.messages(to="an@example.vn") if m["subject"] == "Hồ sơ H56-1 đã được rút"]) == 1


def test_steps_tell_the_appointment_the_reason_and_attach_online_results(gw):
    code = gw.file(dossier_body(delivery_method="online"))["code"]
    gw.step(code, 2, due_at="2026-12-15T16:00:00+07:00", officer="Trần Văn An")
    gw.step(code, 4)
    pdf = b"%PDF-1.4 ket qua"
    gw.step(code, 9, results=[{"name": "Giấy khai sinh.pdf", "content_base64": base64.b64encode(pdf).decode()}])
    items = told(gw, code)
    assert [i["template"] for i in items if i["channel"] == "sms"] == ["received", "accepted", "result_ready"]
    accepted = settled(gw, one(items, channel="sms", template="accepted")["id"])
    assert "Ngay hen tra ket qua: 15/12/2026" in accepted["body"]
    result = settled(gw, one(items, channel="email", template="result_ready")["id"])
    assert result["attachments"] == [{"filename": "Giấy khai sinh.pdf", "content_type": "application/pdf",
                                      "size": len(pdf), "url": f"/api/v1/notifications/{result['id']}/attachments/1",
                                      "dropped_at": None}]
    assert gw.get(result["attachments"][0]["url"]).data == pdf
    (mail,) = [m for m in gw.mail.messages(to=ADDRESS) if m["subject"] == f"Hồ sơ {code} đã có kết quả"]
    assert mail["attachments"][0]["filename"] == "Giấy khai sinh.pdf"
    assert mail["attachments"][0]["sha256"] == hashlib.sha256(pdf).hexdigest()


def test_a_repeated_step_does_not_tell_twice(gw):
    code = gw.file(dossier_body())["code"]
    for _ in range(2):
        r = gw.post(f"/api/v1/dossiers/{code}/events", {"status": 3, "note": "Sai mẫu tờ khai", "event_id": "e-1"},
                    key="dev-one-stop-key")
        assert r.status_code in (200, 201)
    assert [i["template"] for i in told(gw, code) if i["channel"] == "sms"] == ["received", "refused"]


def test_bad_requests_get_a_clear_4xx(gw):
    cases = [
        ({"channel": "sms", "to": "12345", "template": "withdrawn"}, 422, "not a Vietnamese mobile number"),
        ({"channel": "email", "to": "no-at-sign", "template": "withdrawn"}, 422, "not an email address"),
        ({"channel": "sms", "to": "0912345678", "template": "no_such"}, 422, "no sms template 'no_such'"),
        ({"channel": "sms", "to": "0912345678", "template": "withdrawn"}, 422, "'dossier' is undefined"),
        ({"channel": "fax", "to": "0912345678", "template": "withdrawn"}, 422, "channel"),
        ({"channel": "sms", "to": "0912345678", "template": "withdrawn", "dossier_code": "000.00.00.H56-240725-9999"},
         404, "no dossier"),
    ]
    for body, status, text in cases:
        r = send(gw, **body)
        assert r.status_code == status, (body, r.get_json())
        assert text in str(r.get_json()["error"]), r.get_json()
    assert gw.get("/api/v1/notifications/TB0000").status_code == 404
    assert gw.client.post("/api/v1/notifications", json={}, headers={"Authorization": "Bearer dev-portal-key"}
                          ).status_code == 403


def test_a_resent_email_is_the_same_message():
    """SMTP has no idempotency: a send repeated after a worker died mid-call must at least be recognisable as
    the same message (mail systems show one message per Message-ID), and the mock's mailbox says so."""
    from gateway.adapters.sms_email.smtp_email import Email, build_message
    from mocks.email import MailStore

    email = Email("TB0123456789ABCDEF", "an@example.vn", "Hồ sơ đã được tiếp nhận", "Nội dung")
    first, again = (build_message(email, "Bộ phận Một cửa <motcua@example.gov.vn>") for _ in range(2))
    assert first["Message-ID"] == again["Message-ID"] == "<TB0123456789ABCDEF@example.gov.vn>"
    box = MailStore()
    for message in (first, again):
        box.add({"message_id": message["Message-ID"], "rcpt_tos": ["an@example.vn"]}, message.as_bytes())
    assert ["repeat_of" in m for m in box.messages()] == [False, True]
