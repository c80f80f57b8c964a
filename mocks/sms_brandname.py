"""What both brandname SMS partners (Viettel, VNPT) share: GSM 03.38, the receiver form, the messages accepted."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from flask import Blueprint, Response, jsonify, request

from mocks.harness import MockConfig, MockState, add_standard_endpoints

# GSM 03.38 default alphabet (ESC left out: it is the escape code, not a character) and its extension table.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "\f^{}\\[~]|€"
_GSM7 = frozenset(GSM7_BASIC + GSM7_EXTENSION)
MAX_CONTENT = 1000
# [0-9], not \d: \d also matches other scripts' digits.
_RECEIVER = re.compile(r"84[0-9]{9}")

C = TypeVar("C", bound=MockConfig)


def is_gsm7(text: str) -> bool:
    """Whether `text` can go as a plain (GSM-7) SMS: only GSM 03.38 basic-set or extension-table characters."""
    return all(ch in _GSM7 for ch in text)


def valid_receiver(value: Any) -> bool:
    """One mobile number in the international form 84xxxxxxxxx."""
    return isinstance(value, str) and _RECEIVER.fullmatch(value) is not None


class SentMessages:
    """Messages a provider accepted, oldest first, one per request id. Callers hold the mock's lock."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.clear()

    def clear(self) -> None:
        self._items: list[dict[str, Any]] = []
        self._ids: set[str] = set()
        # (receiver, brandname, content) of each: a repeat is looked up, not searched for among every message.
        self._texts: set[tuple[str, str, str]] = set()

    def seen(self, request_id: str) -> bool:
        return request_id in self._ids

    def seen_message(self, receiver: str, brandname: str, content: str) -> bool:
        return (receiver, brandname, content) in self._texts

    def add(self, request_id: str, receiver: str, brandname: str, content: str, unicode: bool) -> None:
        self._ids.add(request_id)
        self._texts.add((receiver, brandname, content))
        self._items.append(
            {
                "provider": self.provider,
                "request_id": request_id,
                "receiver": receiver,
                "brandname": brandname,
                "content": content,
                "unicode": unicode,
                "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            }
        )

    def list(self, receiver: str | None = None) -> list[dict[str, Any]]:
        return [dict(m) for m in self._items if receiver is None or m["receiver"] == receiver]


class BrandnameSms(MockState[C]):
    """State of one SMS provider's mock: its settings and the messages it accepted (`provider` names it)."""

    provider: ClassVar[str]

    def clear(self) -> None:
        self.messages = SentMessages(self.provider)


def add_sms_mock_endpoints(bp: Blueprint, state: BrandnameSms[Any]) -> None:
    """The harness's `_mock/*`, and GET `_mock/messages[?receiver=84...]`: what the provider accepted."""
    add_standard_endpoints(bp, state)

    @bp.get("/_mock/messages")
    def mock_messages() -> Response:
        with state.lock:
            return jsonify({"messages": state.messages.list(request.args.get("receiver"))})
