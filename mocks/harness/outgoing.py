"""Calls a mock makes itself: the callbacks it sends to the gateway, once or several copies at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

ANSWER_CHARS = 2000  # a non-JSON answer is kept as text, this long at most


@dataclass(frozen=True)
class Delivery:
    """What came back from one call: the status and answer (JSON, else text), or the error instead."""

    status: int | None = None
    answer: Any = None
    error: str | None = None


def deliver(method: str, url: str, timeout: float, **kwargs: Any) -> Delivery:
    """Send one request (`requests` keywords: json, params, data, headers); never raises for the network."""
    try:
        resp = requests.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        return Delivery(error=f"{type(exc).__name__}: {exc}")
    try:
        answer: Any = resp.json()
    except ValueError:
        answer = resp.text[:ANSWER_CHARS]
    return Delivery(status=resp.status_code, answer=answer)


def send_copies(send: Callable[[], dict[str, Any]], copies: int, timeout: float) -> list[dict[str, Any]]:
    """Run `send` `copies` times at the same moment (one thread each, released together) and return the
    results in order; a copy still out `timeout` seconds later is `{}`. One copy runs in the caller's thread."""
    if copies == 1:
        return [send()]
    results: list[dict[str, Any]] = [{} for _ in range(copies)]
    start = threading.Barrier(copies)

    def one(slot: int) -> None:
        start.wait()
        results[slot] = send()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results
