"""VNPost public-post orders: a token from the customer key and secret, then create, read and track orders.

The order number is the dossier code, so VNPost itself refuses a second order for one dossier (Status 102);
the client then reads the first order back, and a booking repeated after a lost answer keeps its waybill.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from gateway.adapters.base import PermanentError, PerThreadHttp, RetryableError, check_http, send
from gateway.config import PostalSettings

# Status of a business answer. Unknown: retryable (a dead letter once attempts run out).
CREATED, INVALID, EXISTS, NOT_FOUND = "100", "101", "102", "104"
PERMANENT_STATUSES = frozenset({INVALID, NOT_FOUND})


@dataclass(frozen=True)
class Order:
    order_number: str  # the dossier code
    cod_amount: int
    sender: dict[str, str]
    receiver: dict[str, Any]
    description: str


@dataclass(frozen=True)
class Tracking:
    status_code: str
    status_message: str
    at: datetime


# CreateOrder is flat: each party's fields prefixed with Sender/Receiver, as OpenCPS's client sends them
# (tests/conformance/vnpost/README.md). ReceiverCommune has no public source: [assumed], for the two-level
# local government since 2025-07-01.
SENDER_FIELDS = ("Province", "District", "Address", "Name", "Email", "Tel")
RECEIVER_FIELDS = ("Name", "Address", "Tel", "Province", "District", "Email", "Commune")


def create_order_body(customer_code: str, order: Order) -> dict[str, Any]:
    """The CreateOrder JSON, keys in OpenCPS's order; a party field we do not have is left out, not sent as null."""

    def fields(prefix: str, party: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
        return {prefix + key: party[key] for key in keys if party.get(key) not in (None, "")}

    return ({"CustomerCode": customer_code, "OrderNumber": order.order_number, "CODAmount": order.cod_amount}
            | fields("Sender", order.sender, SENDER_FIELDS) | {"Description": order.description}
            | fields("Receiver", order.receiver, RECEIVER_FIELDS))


class VNPostClient:
    name = "vnpost"

    def __init__(self, settings: PostalSettings) -> None:
        self.settings = settings
        self.http = PerThreadHttp(abandon_after=settings.timeout_seconds)
        self._token_lock = threading.Lock()
        self._token: tuple[str, float] | None = None  # (token, monotonic expiry)

    # Authentication ---------------------------------------------------------------------------------

    def _fresh_token(self) -> str:
        s = self.settings
        credentials = {"CustomerKey": s.customer_key, "CustomerSecret": s.customer_secret}
        response = send(self.http.session(), "POST", f"{s.base_url}/api/token", "vnpost token",
                        timeout=s.timeout_seconds, json=credentials)
        body = self._json(response, "token")
        if body.get("Status") != CREATED or not body.get("Token"):
            raise PermanentError(f"vnpost token: {body.get('Status')} {body.get('Message')}")
        ttl = float(body.get("ExpiresIn") or 300)
        self._token = (body["Token"], time.monotonic() + ttl * 0.9)
        return body["Token"]

    def _token_now(self, renew: bool = False) -> str:
        with self._token_lock:
            if renew or self._token is None or self._token[1] < time.monotonic():
                return self._fresh_token()
            return self._token[0]

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        """An authenticated call; an expired token is renewed once. A 404 is answered, not raised."""
        url = f"{self.settings.base_url}{path}"
        for renew in (False, True):
            headers = {"Authorization": f"Bearer {self._token_now(renew)}"}
            try:
                response = self.http.request(method, url, headers=headers, timeout=self.settings.timeout_seconds,
                                             **kwargs)
            except requests.RequestException as exc:
                raise RetryableError(f"{what}: {type(exc).__name__}: {exc}") from exc
            if response.status_code != 401:
                break
        if response.status_code == 404:
            return response
        check_http(response, what)
        return response

    @staticmethod
    def _json(response: requests.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as exc:
            raise RetryableError(f"vnpost {what}: not JSON: {response.text[:200]}") from exc
        if not isinstance(body, dict):
            raise RetryableError(f"vnpost {what}: unexpected answer {body!r:.200}")
        return body

    # Orders -----------------------------------------------------------------------------------------

    def book(self, order: Order) -> str:
        """Create the order; return its waybill (ItemCode), also when the order already existed."""
        body = create_order_body(self.settings.customer_code, order)
        reply = self._json(self._call("POST", "/api/orders", "vnpost create order", json=body), "create order")
        status = str(reply.get("Status"))
        if status == CREATED and reply.get("ItemCode"):
            return str(reply["ItemCode"])
        if status == EXISTS:
            return self.waybill_of(order.order_number)
        error = f"vnpost create order {order.order_number}: {status} {reply.get('Message')}"
        raise (PermanentError if status in PERMANENT_STATUSES else RetryableError)(error)

    def waybill_of(self, order_number: str) -> str:
        response = self._call("GET", f"/api/orders/{order_number}", "vnpost get order")
        reply = self._json(response, "get order")
        if response.status_code == 404 or not reply.get("ItemCode"):
            raise RetryableError(f"vnpost: order {order_number} said to exist but not found: {reply.get('Message')}")
        return str(reply["ItemCode"])

    def track(self, order_number: str) -> Tracking | None:
        """The order's current tracking status; None if VNPost does not know the order."""
        response = self._call("GET", f"/api/orders/{order_number}/tracking", "vnpost tracking")
        if response.status_code == 404:
            return None
        reply = self._json(response, "tracking")
        try:
            return Tracking(str(reply["statusCode"])[:16], str(reply.get("statusMessage") or "")[:300],
                            datetime.fromisoformat(reply["at"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise RetryableError(f"vnpost tracking {order_number}: unreadable answer {reply!r:.200}") from exc
