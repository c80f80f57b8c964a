"""The last hour of the queues, minute by minute, from the samples the workers take: pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Minute:
    start: datetime
    backlog: int | None  # all queues together; None: no sample in that minute (no worker was sampling)
    dead: int | None


def per_minute(samples: Iterable[Mapping[str, Any]], *, now: datetime, minutes: int = 60) -> list[Minute]:
    """Sum each sample's queues, then keep the highest of each minute (several workers sample alike)."""
    totals: dict[datetime, list[int]] = defaultdict(lambda: [0, 0])
    for sample in samples:
        total = totals[sample["at"]]
        total[0] += sample["backlog"]
        total[1] += sample["dead"]
    first = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    best: dict[int, tuple[int, int]] = {}
    for at, (backlog, dead) in totals.items():
        slot = int((at - first).total_seconds() // 60)
        if 0 <= slot < minutes:
            old = best.get(slot, (0, 0))
            best[slot] = (max(old[0], backlog), max(old[1], dead))
    return [Minute(first + timedelta(minutes=n), *best.get(n, (None, None))) for n in range(minutes)]
