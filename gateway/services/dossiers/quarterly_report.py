"""The province's quarterly report on online public services, counted from the dossiers received in it."""

from __future__ import annotations

from typing import Any

from gateway.domain.quarterly_report import Quarter, build
from gateway.services.unit_of_work import Context
from gateway.store import reports


def quarterly(ctx: Context, quarter: Quarter) -> dict[str, Any]:
    with ctx.engine.connect() as conn:  # the rows stream in while the report is counted
        return build(quarter, reports.received_between(conn, quarter.start, quarter.end))
