"""Readiness: does each thing this process needs answer (the database, the broker)?"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Engine

from gateway.store.database import ping


class Pingable(Protocol):
    def ping(self) -> None: ...


def checks(engine: Engine, broker: Pingable) -> dict[str, str]:
    """`ok`, or `unreachable: <error type>`, per dependency."""
    probes: dict[str, Callable[[], None]] = {"database": lambda: ping(engine), "broker": broker.ping}
    result = {}
    for name, probe in probes.items():
        try:
            probe()
            result[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - report, don't crash
            result[name] = f"unreachable: {type(exc).__name__}"
    return result
