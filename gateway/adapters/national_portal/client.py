"""The national portal (DVCQG) client: DongBoHoSoMC and CapNhatTienDoHoSoMC over REST JSON, and TraCuuHoSo (the
look-up of one dossier, for reconciliation).

Two ways in, chosen by `national_portal.flavour`: a direct session (login with username/password
and a `dstcode` header, the session travels in each body) or the province's LGSP (OAuth2
client-credentials bearer token). Both re-authenticate once when the portal says the credential
expired.
"""

from __future__ import annotations

import base64
import json
import threading
from enum import Enum
from typing import Any

import requests

from gateway.adapters.base import (
    AdapterError,
    PermanentError,
    PerThreadHttp,
    RetryableError,
    UnreadableAnswer,
    batch_or_each,
    before_calling,
    check_http,
    read_bounded,
    send,
)
from gateway.config import NationalPortalSettings

from .mapping import dossier_to_dvcqg, event_to_progress, portal_records


class Reply(Enum):
    OK = "ok"
    RELOGIN = "relogin"
    EXISTS = "exists"
    RETRY = "retry"
    REJECT = "reject"


# The portal's error_code values and what each means for us. Unknown codes are business errors.
ERROR_CODES: dict[int, Reply] = {
    0: Reply.OK,
    1: Reply.RETRY,      # login refused: credentials may be fixed by an operator, keep trying a while
    2: Reply.REJECT,     # invalid data
    3: Reply.EXISTS,     # dossier already exists: DongBoHoSoMC create becomes an update
    4: Reply.REJECT,     # dossier not found
    99: Reply.RETRY,     # system busy
    401: Reply.RELOGIN,  # session unknown or expired
}
# A provincial system reads "already exists" from the message too, whatever error_code says (its create
# answers "0", "3" or "-3" with "... đã tồn tại"): a create so answered becomes an update.
ALREADY_EXISTS_TEXT = "đã tồn tại"
EXISTS_CODES = frozenset({0, 3, -3})
# isUpdating as the reference systems send it: the strings "True"/"False" (OpenCPS DVCQGIntegrationActionTerm).
IS_UPDATING: dict[bool, str] = {False: "False", True: "True"}


def error_code(data: dict[str, Any]) -> int | None:
    """The answer's error_code as a number: the portal's answers carry it as a number or a digit string."""
    value = data.get("error_code")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


class _SessionAuth:
    def __init__(self, settings: NationalPortalSettings) -> None:
        self.settings = settings
        self._session: str | None = None
        self._lock = threading.Lock()

    def url(self) -> str:
        return f"{self.settings.base_url}/service"

    def prepare(self, http: requests.Session, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._session is None:
                self._session = self._login(http)
            return {"session": self._session, **body}

    def _login(self, http: requests.Session) -> str:
        s = self.settings
        reply = send(http, "POST", f"{s.base_url}/login", "national portal login", timeout=s.timeout_seconds,
                     json={"username": s.username, "password": s.password}, headers={"dstcode": s.unit_code})
        data = _json(reply, "national portal login")
        if error_code(data) != 0 or not data.get("session"):
            raise RetryableError(f"national portal login refused: {data.get('message')!r}")
        return data["session"]

    def expired(self, response: requests.Response, data: dict[str, Any] | None) -> bool:
        return data is not None and ERROR_CODES.get(error_code(data)) is Reply.RELOGIN

    def forget(self) -> None:
        with self._lock:
            self._session = None


def lgsp_access_token(access_key: str, secret_key: str, app_name: str, partner_code: str,
                      partner_code_cus: str = "") -> str:
    """The `lgspaccesstoken` header value: Base64 of the LGSP credentials as JSON, in OpenCPS's key order."""
    fields = {"AccessKey": access_key, "SecretKey": secret_key, "AppName": app_name, "PartnerCode": partner_code,
              "PartnerCodeCus": partner_code_cus}
    return base64.b64encode(json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()).decode()


class _LgspAuth:
    def __init__(self, settings: NationalPortalSettings) -> None:
        self.settings = settings
        self._token: str | None = None
        self._lock = threading.Lock()

    def url(self) -> str:
        return f"{self.settings.base_url}/lgsp/service"

    def prepare(self, http: requests.Session, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._token is None:
                self._token = self._fetch_token(http)
            http.headers["Authorization"] = f"Bearer {self._token}"
            if self.settings.lgsp_access_token:
                http.headers["lgspaccesstoken"] = self.settings.lgsp_access_token
        return body

    def _fetch_token(self, http: requests.Session) -> str:
        s = self.settings
        # Client credentials by HTTP Basic (OAuth2), and/or the lgspaccesstoken header (as the provincial LGSPs
        # in OpenCPS and other provinces' code take it).
        auth = (s.lgsp_client_id, s.lgsp_client_secret) if s.lgsp_client_id else None
        headers = {"lgspaccesstoken": s.lgsp_access_token} if s.lgsp_access_token else {}
        reply = send(http, "POST", f"{s.base_url}/lgsp/token", "LGSP token", timeout=s.timeout_seconds,
                     data={"grant_type": "client_credentials"}, auth=auth, headers=headers)
        token = _json(reply, "LGSP token").get("access_token")
        if not token:
            raise RetryableError("LGSP token reply has no access_token")
        return token

    def expired(self, response: requests.Response, data: dict[str, Any] | None) -> bool:
        return response.status_code == 401

    def forget(self) -> None:
        with self._lock:
            self._token = None


def _json(response: requests.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise RetryableError(f"{what}: answer is not JSON: {response.text[:200]!r}") from None
    if not isinstance(data, dict):
        raise RetryableError(f"{what}: answer is not a JSON object")
    return data


class NationalPortalClient:
    """Delivers dossier and progress jobs; thread-safe (one HTTP session per thread)."""

    def __init__(self, settings: NationalPortalSettings) -> None:
        self.settings = settings
        self.auth = _LgspAuth(settings) if settings.flavour == "lgsp" else _SessionAuth(settings)
        self._http_sessions = PerThreadHttp(abandon_after=settings.timeout_seconds)

    def _http(self) -> requests.Session:
        return self._http_sessions.session()

    # Job handlers -------------------------------------------------------------------------------

    def sync_dossier(self, payload: dict[str, Any]) -> None:
        """DongBoHoSoMC: create, or update when asked to or when the portal already has the dossier."""
        record = dossier_to_dvcqg(payload["dossier"])
        updating = bool(payload.get("updating"))
        reply = self._call({"service": "DongBoHoSoMC", "isUpdating": IS_UPDATING[updating], "data": [record]})
        if reply is Reply.EXISTS and not updating:
            self._call({"service": "DongBoHoSoMC", "isUpdating": IS_UPDATING[True], "data": [record]})

    def report_progress(self, payload: dict[str, Any]) -> None:
        """CapNhatTienDoHoSoMC: one processing step."""
        self._progress([payload])

    # Batches: the portal takes a list in `data`; a batch holds at most one job per dossier. ------

    def sync_dossier_many(self, payloads: list[dict[str, Any]]) -> list[AdapterError | None]:
        results: list[AdapterError | None] = [None] * len(payloads)
        for updating in (False, True):
            idx = [i for i, p in enumerate(payloads) if bool(p.get("updating")) is updating]
            if not idx:
                continue

            def send_all(group: list[dict[str, Any]], updating: bool = updating) -> None:
                reply = self._call({"service": "DongBoHoSoMC", "isUpdating": IS_UPDATING[updating],
                                    "data": [dossier_to_dvcqg(p["dossier"]) for p in group]})
                if reply is Reply.EXISTS:  # someone in the batch exists: sort it out one by one
                    raise PermanentError("DongBoHoSoMC: a dossier of the batch already exists")

            for i, result in zip(idx, batch_or_each(send_all, self.sync_dossier, [payloads[i] for i in idx]),
                                 strict=True):
                results[i] = result
        return results

    def report_progress_many(self, payloads: list[dict[str, Any]]) -> list[AdapterError | None]:
        return batch_or_each(self._progress, self.report_progress, payloads)

    def _progress(self, payloads: list[dict[str, Any]]) -> None:
        records = [event_to_progress(p["code"], p["event"]) for p in payloads]
        self._call({"service": "CapNhatTienDoHoSoMC", "data": records})

    # Reading: TraCuuHoSo ---------------------------------------------------------------------------

    def lookup(self, code: str) -> list[dict[str, Any]]:
        """TraCuuHoSo: the portal's records of one dossier code (each with its progress records when the portal
        gives them); none when it has none. Read as OpenCPS reads it: a `result` list, empty (or error_code 4)
        when the portal does not hold the dossier. Bounded like any call (timeout, `lookup_max_bytes`); the
        portal busy or down raises RetryableError; an answer that cannot be trusted raises UnreadableAnswer."""
        service = "TraCuuHoSo"
        # The key under both spellings public code uses: OpenCPS's searchDossier puts "mahoso", the conformance
        # example (and the record's own field) "MaHoSo" (docs/partners/national-portal.md).
        code_, data = self._exchange({"service": service, "MaHoSo": code, "mahoso": code},
                                     limit=self.settings.reconcile.lookup_max_bytes)
        reply = ERROR_CODES.get(code_)
        if code_ == 4:
            return []
        if reply in (Reply.RETRY, Reply.RELOGIN):
            raise RetryableError(f"{service}: error_code {code_}: {str(data.get('message'))[:200]!r}")
        if reply is not Reply.OK:
            raise UnreadableAnswer(f"{service}: error_code {code_}: {str(data.get('message'))[:200]!r}")
        try:
            return portal_records(data, code)
        except ValueError as exc:
            raise UnreadableAnswer(f"{service}: {exc}") from None

    # Plumbing -----------------------------------------------------------------------------------

    def _exchange(self, body: dict[str, Any], *, limit: int | None = None) -> tuple[int, dict[str, Any]]:
        """One call (logging in again once when the credential is refused): the answer's error_code and body.
        With `limit` the answer is read up to that many bytes, and one that is not a JSON object is not trusted."""
        http = self._http()
        service = body["service"]
        for attempt in (1, 2):
            # A connect and an abandoned request may each take the timeout (adapters/base.py): the record this
            # call carries must not reach the portal after a later one sent by the worker that took the job over.
            before_calling(2 * self.settings.timeout_seconds, service)
            full = {"madonvi": self.settings.unit_code, **self.auth.prepare(http, body)}
            try:
                if limit is None:  # the filings and steps: the short way (adapters/base.py PerThreadHttp.request)
                    response = self._http_sessions.request("POST", self.auth.url(), json=full,
                                                           timeout=self.settings.timeout_seconds)
                else:
                    response = http.post(self.auth.url(), json=full, timeout=self.settings.timeout_seconds,
                                         stream=True)
                    read_bounded(response, limit, service)
            except requests.RequestException as exc:
                raise RetryableError(f"{service}: {type(exc).__name__}: {exc}") from exc
            data = None
            if response.headers.get("Content-Type", "").startswith("application/json") or limit is not None:
                try:
                    data = json.loads(response.content)
                except (ValueError, RecursionError):  # RecursionError: nested deeper than Python parses
                    data = None
            if self.auth.expired(response, data if isinstance(data, dict) else None):
                self.auth.forget()
                if attempt == 1:
                    continue
                raise RetryableError(f"{service}: credential refused right after a fresh login")
            break
        check_http(response, service)
        code = error_code(data) if isinstance(data, dict) else None
        if code is None:
            what = f"{service}: answer without error_code: {response.text[:200]!r}"
            raise UnreadableAnswer(what) if limit is not None else RetryableError(what)
        return code, data

    def _call(self, body: dict[str, Any]) -> Reply:
        service = body["service"]
        code, data = self._exchange(body)
        reply = ERROR_CODES.get(code, Reply.REJECT)
        if (service == "DongBoHoSoMC" and code in EXISTS_CODES
                and ALREADY_EXISTS_TEXT in str(data.get("message") or "").lower()):
            reply = Reply.EXISTS
        message = f"{service}: error_code {code}: {data.get('message')!r}"
        if reply is Reply.RETRY:
            raise RetryableError(message)
        if reply in (Reply.REJECT, Reply.RELOGIN):
            raise PermanentError(message)
        return reply
