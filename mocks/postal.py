"""Fake VNPost public-post delivery (Bưu chính công ích): token auth, orders, tracking and signed tracking callbacks.

What a CreateOrder must carry is in `postal_orders.py`."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, ClassVar

from flask import Blueprint, Response, request

from mocks.harness import (
    CredentialStore,
    Fault,
    MockConfig,
    MockState,
    Outcome,
    add_action_endpoint,
    add_expire_endpoint,
    add_standard_endpoints,
    add_state_endpoints,
    bearer_token,
    challenged,
    deliver,
    guarded,
    json_object,
    masked,
    same_secret,
    vn_now,
)
from mocks.postal_orders import Invalid, parties, s10_check_digit, validate_order

OK = "100"
CALLBACK_TIMEOUT_SECONDS = 5.0

# The one table of tracking statuses (VNPost-style codes, Vietnamese messages).
STATUSES = {
    "100": "Đã tạo đơn hàng",
    "200": "Bưu tá đã nhận hàng",
    "300": "Đang vận chuyển",
    "400": "Đang phát hàng",
    "500": "Phát thành công",
    "501": "Phát không thành công",
    "600": "Đang chuyển hoàn",
    "601": "Đã chuyển hoàn",
    "700": "Đã hủy",
}

MSG_BAD_CREDENTIALS = "Sai thông tin xác thực"
MSG_CREATED = "Tạo đơn hàng thành công"
MSG_EXISTS = "Mã đơn hàng đã tồn tại"
MSG_NOT_FOUND = "Không tìm thấy đơn hàng"
MSG_BUSY = "Hệ thống đang bận"
MSG_BAD_BODY = "Body phải là đối tượng JSON hợp lệ"
BAD_TOKEN: Outcome = (401, {"Status": "401", "Message": "Token không hợp lệ hoặc đã hết hạn"})

TOKEN_SERVICE = "token"


@dataclass
class PostalConfig(MockConfig):
    POSITIVE: ClassVar[frozenset[str]] = frozenset({"token_ttl_seconds"})

    customer_code: str = "GATEWAY"
    customer_key: str = "gateway"
    customer_secret: str = "vnpost-secret"
    token_ttl_seconds: float = 3600.0
    callback_url: str = "http://127.0.0.1:8000/api/v1/callbacks/postal/vnpost"
    callback_secret: str = "vnpost-callback-secret"


def now_vn() -> str:
    """Now as ISO 8601 with the +07:00 offset, e.g. 2025-07-01T09:30:00+07:00."""
    return vn_now().isoformat(timespec="seconds")


def sign(raw: bytes, secret: str) -> str:
    """Hex HMAC-SHA256 of the exact body bytes (own implementation: never shared with the gateway)."""
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


class VNPost(MockState[PostalConfig]):
    """State of one mock instance: config, tokens and orders by OrderNumber."""

    config_class = PostalConfig

    def clear(self) -> None:
        self.tokens = CredentialStore(lambda: self.config.token_ttl_seconds)
        self.orders: dict[str, dict[str, Any]] = {}

    def record(self, service: str | None, body: Any, status: int, response: Any, fault: Fault | None,
               **extra: Any) -> None:
        # Only whether Authorization was sent: the log must not leak tokens.
        super().record(service, masked(body, "CustomerSecret"), status, masked(response, "Token"), fault,
                       method=request.method, headers={"authorization": "Authorization" in request.headers}, **extra)

    # --- authentication -------------------------------------------------

    def issue_token(self, body: dict[str, Any]) -> Outcome:
        with self.lock:
            cfg = self.config
            key, secret = body.get("CustomerKey"), body.get("CustomerSecret")
            if not (same_secret(key, cfg.customer_key) and same_secret(secret, cfg.customer_secret)):
                return 401, {"Status": "401", "Message": MSG_BAD_CREDENTIALS}
            token = self.tokens.issue()
            ttl = cfg.token_ttl_seconds
            # Whole seconds as an int (what clients expect); a shortened test TTL like 0.5 stays exact.
            return 200, {"Status": OK, "Token": token, "ExpiresIn": int(ttl) if ttl.is_integer() else ttl}

    # --- orders -----------------------------------------------------------

    def create_order(self, body: dict[str, Any]) -> Outcome:
        with self.lock:
            try:
                validate_order(body, self.config.customer_code)
            except Invalid as exc:
                return 200, {"Status": "101", "Message": str(exc)}
            number = body["OrderNumber"]
            if number in self.orders:
                # No ItemCode on purpose: a client retrying after a lost reply must look the order up.
                return 200, {"Status": "102", "Message": MSG_EXISTS}
            item_code = self._new_item_code()
            self.orders[number] = order = {
                "OrderNumber": number,
                "ItemCode": item_code,
                "CustomerCode": body["CustomerCode"],
                "CODAmount": body["CODAmount"],
                **copy.deepcopy(parties(body)),  # Sender and Receiver
                "Description": body.get("Description"),
                "created_at": now_vn(),
                "history": [],
                "callbacks": [],
            }
            self._set_status(order, OK, order["created_at"])
            return 200, {"Status": OK, "Message": MSG_CREATED, "OrderNumber": number, "ItemCode": item_code}

    def _new_item_code(self) -> str:
        used = {order["ItemCode"] for order in self.orders.values()}
        while True:
            serial = f"{secrets.randbelow(10**8):08d}"
            code = f"EB{serial}{s10_check_digit(serial)}VN"
            if code not in used:
                return code

    @staticmethod
    def _set_status(order: dict[str, Any], code: str, at: str) -> None:
        order["StatusCode"], order["StatusMessage"] = code, STATUSES[code]
        order["history"].append({"statusCode": code, "statusMessage": STATUSES[code], "at": at})

    def get_order(self, number: str) -> Outcome:
        with self.lock:
            order = self.orders.get(number)
            if order is None:
                return 404, {"Status": "104", "Message": MSG_NOT_FOUND}
            keys = ("OrderNumber", "ItemCode", "CODAmount", "Receiver", "StatusCode", "StatusMessage")
            return 200, {"Status": OK} | {key: copy.deepcopy(order[key]) for key in keys}

    def tracking(self, number: str) -> Outcome:
        with self.lock:
            order = self.orders.get(number)
            if order is None:
                return 404, {"Status": "104", "Message": MSG_NOT_FOUND}
            return 200, {"Status": OK, **self._tracking_view(order)}

    @staticmethod
    def _tracking_view(order: dict[str, Any]) -> dict[str, Any]:
        return {
            "orderNumber": order["OrderNumber"],
            "itemCode": order["ItemCode"],
            "statusCode": order["StatusCode"],
            "statusMessage": order["StatusMessage"],
            "at": order["history"][-1]["at"],
            "history": copy.deepcopy(order["history"]),
        }

    def snapshot(self, number: str | None = None) -> Any:
        return self.copy_of(self.orders, number)

    # --- moving parcels and the tracking callback --------------------------

    def move(self, number: str, status_code: str, *, push: bool = True, replayed: bool = False,
             at: str | None = None) -> dict[str, Any] | None:
        """Move an order on (appending history) and, with push, send its callback. A replayed callback (late,
        or sent again) goes out for any status without touching the order. None if the order is unknown."""
        with self.lock:
            order = self.orders.get(number)
            if order is None:
                return None
            at = at or now_vn()
            if not replayed:
                self._set_status(order, status_code, at)
            view = self._tracking_view(order)
        callback = self.send_callback(number, status_code, at, replayed) if push else None
        return {"order": view, "callback": callback}

    def send_callback(self, number: str, status_code: str, at: str, replayed: bool) -> dict[str, Any]:
        """POST the signed tracking callback; returns {"status", "body"} or {"error"} and records it on the order."""
        with self.lock:
            order = self.orders[number]
            message = {
                "orderNumber": number,
                "itemCode": order["ItemCode"],
                "statusCode": status_code,
                "statusMessage": STATUSES[status_code],
                "at": at,
            }
            url, secret = self.config.callback_url, self.config.callback_secret
        raw = json.dumps(message, ensure_ascii=False).encode("utf-8")  # these exact bytes are signed and sent
        headers = {"Content-Type": "application/json; charset=utf-8", "X-VNPost-Signature": sign(raw, secret)}
        sent_at = now_vn()
        # Sent outside the lock: the gateway answering the callback may well call this mock back.
        sent = deliver("POST", url, CALLBACK_TIMEOUT_SECONDS, data=raw, headers=headers)
        result = {"error": sent.error} if sent.error is not None else {"status": sent.status, "body": sent.answer}
        with self.lock:
            found = self.orders.get(number)  # a reset while sending would have removed it
            if found is not None:
                found["callbacks"].append({"sent_at": sent_at, "message": message, "replayed": replayed} | result)
        return result


def _status_code(body: dict[str, Any]) -> str:
    code = body.get("statusCode")
    if not isinstance(code, str) or code not in STATUSES:
        raise Invalid(f"statusCode phải là một trong {', '.join(STATUSES)}")
    return code


def _busy(fault: Fault) -> Outcome:
    return 200, {"Status": fault.code or "999", "Message": MSG_BUSY}


def create_blueprint() -> Blueprint:
    """A fresh VNPost mock (own state, log and faults) as a blueprint; mount it at /postal."""
    post = VNPost()
    bp = Blueprint("postal", __name__)
    add_standard_endpoints(bp, post)

    def with_token(service: str, body: Any, run: Callable[[], Outcome]) -> Response:
        # Every call but the token call wants a valid token: without one, 401 and a Bearer challenge.
        run = guarded(lambda: post.tokens.valid(bearer_token()), BAD_TOKEN, run)
        return post.serve(service, body, run, _busy, render=partial(challenged, scheme="Bearer", error="invalid_token"))

    def malformed(service: str) -> Response:
        return post.unreadable(service, 400, {"Status": "101", "Message": MSG_BAD_BODY})

    @bp.post("/api/token")
    def token() -> Response:
        body = json_object()
        if body is None:
            return malformed(TOKEN_SERVICE)
        return post.serve(TOKEN_SERVICE, body, lambda: post.issue_token(body), _busy, control=True)

    @bp.post("/api/orders")
    def create_order() -> Response:
        body = json_object()
        if body is None:
            return malformed("CreateOrder")
        return with_token("CreateOrder", body, lambda: post.create_order(body))

    @bp.get("/api/orders/<order_number>")
    def get_order(order_number: str) -> Response:
        return with_token("GetOrder", None, lambda: post.get_order(order_number))

    @bp.get("/api/orders/<order_number>/tracking")
    def tracking(order_number: str) -> Response:
        return with_token("Tracking", None, lambda: post.tracking(order_number))

    # --- test controls -----------------------------------------------------

    def advance(body: dict[str, Any], order_number: str) -> dict[str, Any] | None:
        code, push = _status_code(body), body.get("push", True)
        if not isinstance(push, bool):
            raise Invalid("push phải là true hoặc false")
        return post.move(order_number, code, push=push)

    def replay(body: dict[str, Any], order_number: str) -> dict[str, Any] | None:
        code, at = _status_code(body), body.get("at")
        try:
            if at is not None:
                datetime.fromisoformat(at)
        except (TypeError, ValueError):
            raise Invalid("at phải là chuỗi ISO 8601") from None
        return post.move(order_number, code, replayed=True, at=at)

    add_action_endpoint(bp, "/_mock/advance/<order_number>", advance, MSG_NOT_FOUND)
    add_action_endpoint(bp, "/_mock/push/<order_number>", replay, MSG_NOT_FOUND)
    add_expire_endpoint(bp, "/_mock/expire-tokens", lambda: post.tokens.expire_all())
    add_state_endpoints(bp, "orders", post.snapshot, MSG_NOT_FOUND, "order_number")
    return bp
