"""The archive packages as operators see them: how many in each state, which wait to be sealed and why, and the
sealing lag (how long the oldest finished dossier has waited for its package)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import RowMapping

from gateway.adapters import archive as archiving
from gateway.domain import archive as archive_rules
from gateway.services.ops import state_counts
from gateway.services.unit_of_work import Context
from gateway.store import archive as packages
from gateway.store import outbox, server_clock


@dataclass(frozen=True)
class Overview:
    counts: dict[str, int]
    waiting: list[tuple[RowMapping, Any]]  # (package, its unfinished build job or None), failing first
    sealed: list[RowMapping]  # newest first
    lag_seconds: float  # the oldest finished dossier not yet sealed has waited this long; 0: none waits


def sealing_lag(ctx: Context) -> float:
    with ctx.engine.connect() as conn:
        return state_counts.sealing_lag(conn, server_clock.now())


def overview(ctx: Context, limit: int = 200) -> Overview:
    with ctx.engine.connect() as conn:
        lag = state_counts.sealing_lag(conn, server_clock.now())
        counts = packages.counts(conn)
        waiting = packages.listing(conn, archive_rules.FAILING, limit=limit) + \
            packages.listing(conn, archive_rules.PENDING, limit=limit)
        sealed = packages.listing(conn, archive_rules.SEALED, limit=limit)
        jobs_of = outbox.unfinished_of_keys(conn, archiving.QUEUE, [r["dossier_code"] for r in waiting])
    return Overview(counts, [(r, jobs_of.get(r["dossier_code"])) for r in waiting], sealed, lag)
