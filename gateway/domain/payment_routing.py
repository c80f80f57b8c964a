"""Which payment provider serves a dossier: the first route naming its procedure, else the first
naming its unit, else the default. Configuration, not code, says which (settings `payment.routes`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Route(Protocol):
    provider: str
    procedure_code: str | None
    unit_code: str | None


def unit_of(dossier_code: str) -> str:
    """The unit code a dossier code starts with (`000.00.17.H31-240725-0001` -> `000.00.17.H31`)."""
    return dossier_code.rsplit("-", 2)[0]


def choose_provider(routes: Iterable[Route], *, procedure_code: str, dossier_code: str, default: str) -> str:
    routes = list(routes)
    for route in routes:
        if route.procedure_code == procedure_code:
            return route.provider
    unit = unit_of(dossier_code)
    for route in routes:
        if route.unit_code == unit:
            return route.provider
    return default
