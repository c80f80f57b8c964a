"""Fake national public-service portal (DVCQG), OpenCPS-style session API plus LGSP OAuth2 flavour.

What a dossier or a progress step must carry is in `national_portal_records.py`; how the portal drifts from
what it was sent (records dropped or altered after a "done", an operator's change, a lost dossier) is in
`national_portal_drift.py`."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import Blueprint, Response, request

from mocks.harness import (
    DRIFT_MODES,
    CredentialStore,
    Fault,
    MockConfig,
    MockState,
    Outcome,
    add_expire_endpoint,
    add_standard_endpoints,
    add_state_endpoints,
    bearer_token,
    challenged,
    guarded,
    json_object,
    json_reply,
)
from mocks.national_portal_drift import alter, operator_step
from mocks.national_portal_records import (
    COUNTERS,
    Invalid,
    is_updating,
    records,
    validate_dossier,
    validate_progress,
)

OK = "OK"
MSG_BAD_LOGIN = "Sai thông tin đăng nhập"
MSG_BAD_SESSION = "Phiên làm việc không hợp lệ hoặc đã hết hạn"
MSG_EXISTS = "Hồ sơ đã tồn tại"
MSG_NOT_FOUND = "Không tìm thấy hồ sơ"
MSG_DUPLICATE = "Tiến độ đã được ghi nhận trước đó"
BUSY: Outcome = (200, {"error_code": 99, "message": "Hệ thống đang bận"})

LOGIN_FAULT_NAME = "login"  # fault name for both /login and /lgsp/token


@dataclass
class PortalConfig(MockConfig):
    username: str = "gateway"
    password: str = "gateway-secret"
    client_id: str = "gateway-lgsp"
    client_secret: str = "lgsp-secret"
    lgsp_access_token: str = ""  # when set, a token request carrying it in `lgspaccesstoken` needs no Basic auth
    session_ttl_seconds: float = 3600.0
    token_ttl_seconds: float = 3600.0


class NationalPortal(MockState[PortalConfig]):
    """State of one portal instance: config, sessions, tokens and dossiers."""

    config_class = PortalConfig

    def clear(self) -> None:
        self.sessions = CredentialStore(lambda: self.config.session_ttl_seconds, nbytes=24)
        self.tokens = CredentialStore(lambda: self.config.token_ttl_seconds)
        self.dossiers: dict[str, dict[str, Any]] = {}
        self.drift: list[dict[str, Any]] = []  # what the drift faults did, oldest first (GET _mock/drift)
        self.alterations = 0  # which field the next `alter` without a `code` changes

    def expire_credentials(self) -> None:
        self.sessions.expire_all()
        self.tokens.expire_all()

    def record(self, service: str | None, body: Any, status: int, response: Any, fault: Fault | None,
               **extra: Any) -> None:
        # Only whether Authorization was sent: the log must not leak tokens.
        headers = {"dstcode": request.headers.get("dstcode"), "authorization": "Authorization" in request.headers}
        super().record(service, body, status, response, fault, headers=headers, **extra)

    # --- authentication -------------------------------------------------

    def login(self, body: dict[str, Any], dstcode: str | None) -> Outcome:
        with self.lock:
            cfg = self.config
            if not dstcode or body.get("username") != cfg.username or body.get("password") != cfg.password:
                return 200, {"error_code": 1, "message": MSG_BAD_LOGIN}
            session = self.sessions.issue()
            return 200, {"error_code": 0, "session": session, "message": OK}

    def issue_token(self, client_id: str | None, client_secret: str | None, grant_type: str | None,
                    access_token: str | None = None) -> Outcome:
        with self.lock:
            cfg = self.config
            by_header = bool(cfg.lgsp_access_token) and access_token == cfg.lgsp_access_token
            if not by_header and (client_id != cfg.client_id or client_secret != cfg.client_secret):
                return 401, {"error": "invalid_client"}
            if not grant_type:
                return 400, {"error": "invalid_request"}
            if grant_type != "client_credentials":
                return 400, {"error": "unsupported_grant_type"}
            token = self.tokens.issue()
            return 200, {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": int(cfg.token_ttl_seconds),
            }

    # --- services -------------------------------------------------------

    def call_service(self, body: dict[str, Any]) -> Outcome:
        handlers = {
            "DongBoHoSoMC": self._sync_dossiers,
            "CapNhatTienDoHoSoMC": self._update_progress,
            "TraCuuHoSo": self._lookup,
        }
        handler = handlers.get(_service_name(body) or "")
        if handler is None:
            return 200, {"error_code": 2, "message": f"Dịch vụ không hợp lệ: {body.get('service')}"}
        try:
            with self.lock:
                return handler(body)
        except Invalid as exc:
            return 200, {"error_code": 2, "message": str(exc)}

    def _sync_dossiers(self, body: dict[str, Any]) -> Outcome:
        # All-or-nothing per call: validate and check every item before changing anything.
        updating = is_updating(body)
        items = [validate_dossier(item, creating=not updating) for item in records(body)]
        ids = [item["MaHoSo"] for item in items]
        if updating:
            if any(i not in self.dossiers for i in ids):
                return 200, {"error_code": 4, "message": MSG_NOT_FOUND}
        elif any(i in self.dossiers for i in ids) or len(set(ids)) != len(ids):
            return 200, {"error_code": 3, "message": MSG_EXISTS}
        for item in items:
            fault = self.faults.take("DongBoHoSoMC", modes=DRIFT_MODES)
            if fault is not None and fault.mode == "silent_drop":  # answered "done", never stored
                self._drifted(fault.mode, "DongBoHoSoMC", item["MaHoSo"], updating=updating)
                continue
            if fault is not None and fault.mode == "alter":
                item, field = alter(item, fault.code, self.alterations)
                self.alterations += 1
                self._drifted(fault.mode, "DongBoHoSoMC", item["MaHoSo"], field=field, updating=updating)
            if updating:
                dossier = self.dossiers[item["MaHoSo"]]
                if any(dossier.get(k, object()) != v for k, v in item.items()):
                    dossier.update(item)
                    dossier["updates"] += 1
            else:
                unit = {"MaDonVi": body["madonvi"]} if isinstance(body.get("madonvi"), str) else {}
                self.dossiers[item["MaHoSo"]] = item | unit | {"creates": 1, "updates": 0, "progress": []}
            if fault is not None and fault.mode in ("operator_status", "lose"):
                self._after_write(fault, "DongBoHoSoMC", item["MaHoSo"])
        return 200, {"error_code": 0, "message": OK}

    def _update_progress(self, body: dict[str, Any]) -> Outcome:
        items = [validate_progress(item) for item in records(body)]
        if any(item["MaHoSo"] not in self.dossiers for item in items):
            return 200, {"error_code": 4, "message": MSG_NOT_FOUND}
        duplicates = 0
        for item in items:
            dossier = self.dossiers.get(item["MaHoSo"])
            if dossier is None:  # lost by a drift fault earlier in this very call
                continue
            # A step identical to one already recorded is a retry: acknowledge it without appending.
            # (The protocol carries no step id; two steps differing in any field are two steps.)
            if any(p == item for p in dossier["progress"]):
                duplicates += 1
                continue
            fault = self.faults.take("CapNhatTienDoHoSoMC", modes=("silent_drop", "operator_status", "lose"))
            if fault is not None and fault.mode == "silent_drop":
                self._drifted(fault.mode, "CapNhatTienDoHoSoMC", item["MaHoSo"], status=item["TrangThai"])
                continue
            dossier["progress"].append(item)
            dossier["TrangThaiHoSo"] = item["TrangThai"]
            if fault is not None:
                self._after_write(fault, "CapNhatTienDoHoSoMC", item["MaHoSo"])
        if duplicates == len(items):
            return 200, {"error_code": 0, "message": MSG_DUPLICATE, "duplicate": True}
        return 200, {"error_code": 0, "message": OK} | ({"duplicates": duplicates} if duplicates else {})

    def _lookup(self, body: dict[str, Any]) -> Outcome:
        # OpenCPS asks by "MaHoSo" and reads the dossier from the "result" list; "mahoso" is kept for old callers.
        mahoso = body.get("MaHoSo", body.get("mahoso"))
        if not isinstance(mahoso, str) or not mahoso:
            raise Invalid("MaHoSo là bắt buộc")
        dossier = self.dossiers.get(mahoso)
        if dossier is None:
            return 200, {"error_code": 4, "message": MSG_NOT_FOUND}
        # The record as stored, with its progress records as QuaTrinhXuLy and the unit that synced it as
        # MaDonVi [assumed: no public source shows the fields of TraCuuHoSo's answer; docs/partners.md].
        record = {k: copy.deepcopy(v) for k, v in dossier.items() if k not in COUNTERS}
        record["QuaTrinhXuLy"] = copy.deepcopy(dossier["progress"])
        return 200, {"error_code": 0, "message": OK, "result": [record]}

    # --- drift (faults of DRIFT_MODES, taken per record) ---------------------------------------

    def _drifted(self, mode: str, service: str, mahoso: str, **what: Any) -> None:
        self.drift.append({"mode": mode, "service": service, "MaHoSo": mahoso, **what})

    def _after_write(self, fault: Fault, service: str, mahoso: str) -> None:
        """What happens to a dossier right after a write was stored: a portal operator changes its status, or
        the portal loses it (restored from an older backup, say)."""
        if fault.mode == "lose":
            self.dossiers.pop(mahoso, None)
            self._drifted(fault.mode, service, mahoso)
            return
        dossier = self.dossiers[mahoso]
        step = operator_step(mahoso, dossier.get("TrangThaiHoSo"), fault.code)
        dossier["progress"].append(step)
        dossier["TrangThaiHoSo"] = step["TrangThai"]
        self._drifted(fault.mode, service, mahoso, status=step["TrangThai"])

    def drift_journal(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.drift)

    def snapshot(self, mahoso: str | None = None) -> Any:
        return self.copy_of(self.dossiers, mahoso)


def _busy(fault: Fault) -> Outcome:
    # error_code with a code answers that code (say 2, invalid data: a refusal of the call's own).
    return (200, {"error_code": int(fault.code), "message": "Injected fault"}) if (
        fault.code is not None and fault.code.isdigit()) else BUSY


def _reply(status: int, payload: Any) -> Response:
    error = payload.get("error") if isinstance(payload, dict) else None
    if error is None:
        return json_reply(status, payload)
    return challenged(status, payload, "Basic" if error == "invalid_client" else "Bearer", error)


def create_blueprint() -> Blueprint:
    """A fresh portal (own state, log and faults) as a blueprint; mount it at /national-portal."""
    portal = NationalPortal()
    bp = Blueprint("national_portal", __name__)
    add_standard_endpoints(bp, portal)

    def respond(service: str | None, body: Any, run: Callable[[], Outcome], *, control: bool = False) -> Response:
        return portal.serve(service, body, run, _busy, control=control, render=_reply)

    def malformed() -> Response:
        return portal.unreadable(None, 400, {"error_code": 2, "message": "Body phải là đối tượng JSON hợp lệ"})

    @bp.post("/login")
    def login() -> Response:
        body = json_object()
        if body is None:
            return malformed()
        dstcode = request.headers.get("dstcode")
        return respond(LOGIN_FAULT_NAME, body, run=partial(portal.login, body, dstcode), control=True)

    @bp.post("/service")
    def service() -> Response:
        body = json_object()
        if body is None:
            return malformed()
        run = guarded(lambda: portal.sessions.valid(body.get("session")),
                      (200, {"error_code": 401, "message": MSG_BAD_SESSION}), partial(portal.call_service, body))
        return respond(_service_name(body), body, run=run)

    @bp.post("/lgsp/token")
    def lgsp_token() -> Response:
        auth = request.authorization
        client_id, secret = (auth.username, auth.password) if auth and auth.type == "basic" else (None, None)
        form = request.form.to_dict()
        run = partial(portal.issue_token, client_id, secret, form.get("grant_type"),
                      request.headers.get("lgspaccesstoken"))
        return respond(LOGIN_FAULT_NAME, form, run=run, control=True)

    @bp.post("/lgsp/service")
    def lgsp_service() -> Response:
        body = json_object()
        if body is None:
            return malformed()
        run = guarded(lambda: portal.tokens.valid(bearer_token()), (401, {"error": "invalid_token"}),
                      partial(portal.call_service, body))
        return respond(_service_name(body), body, run=run)

    add_state_endpoints(bp, "dossiers", portal.snapshot, MSG_NOT_FOUND, "mahoso")

    @bp.get("/_mock/drift")
    def drift() -> Response:
        """What the drift faults did: each record dropped, altered (which field), lost, or changed by an operator."""
        return json_reply(200, {"drift": portal.drift_journal()})

    add_expire_endpoint(bp, "/_mock/expire-sessions", portal.expire_credentials)
    return bp


def _service_name(body: dict[str, Any]) -> str | None:
    service = body.get("service")
    return service if isinstance(service, str) else None
