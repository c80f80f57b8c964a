"""POSTs a signed batch of feed items to the one-stop software's webhook URL."""

from __future__ import annotations

import json
import time
from typing import Any

from gateway.adapters.base import PerThreadHttp, send
from gateway.config import WebhookSettings

from .standard_webhooks import sign


class WebhookClient:
    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.http = PerThreadHttp()

    def deliver(self, msg_id: str, payload: dict[str, Any]) -> None:
        """Raises the adapter error kinds (retryable, throttled, permanent) on failure."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        stamp = int(time.time())
        headers = {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(stamp),
                   "webhook-signature": sign(self.settings.secret, msg_id, stamp, body)}
        send(self.http.session(), "POST", self.settings.url, "webhook push", timeout=self.settings.timeout_seconds,
             data=body, headers=headers)
