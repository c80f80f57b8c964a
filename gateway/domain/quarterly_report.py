"""The quarterly report provinces owe on their online public services: per procedure, level and channel,
how many dossiers came in, where they ended, how many were on time, paid online and delivered by post.

Definitions (one place, so the JSON and the CSV say the same):
- a dossier belongs to the quarter in which it was received (Vietnamese time);
- finished: in a final status (3 refused, 7 withdrawn, 8 stopped, 10 result returned) now;
- on time: its result (first step 9 or 10) came no later than its appointment date; dossiers with a
  result and an appointment date are the base of the on-time rate;
- paid online: the national portal was told its fees were paid online; base: dossiers with fees;
- delivered by post: a VNPost delivery was booked; base: dossiers with a result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .codes import STATUS_LABELS_VI, Status
from .dossier import VN_TZ
from .status_machine import is_final

LEVEL_NAMES = {"mot_phan": "một phần", "toan_trinh": "toàn trình"}
CHANNEL_NAMES = {1: "trực tiếp", 2: "trực tuyến", 3: "bưu chính công ích"}


@dataclass(frozen=True)
class Quarter:
    year: int
    quarter: int

    def __post_init__(self) -> None:
        if not 2000 <= self.year <= 2100 or self.quarter not in (1, 2, 3, 4):
            raise ValueError("a quarter is a year from 2000 to 2100 and a quarter from 1 to 4")

    @property
    def start(self) -> datetime:
        return datetime(self.year, 3 * self.quarter - 2, 1, tzinfo=VN_TZ)

    @property
    def end(self) -> datetime:
        return (datetime(self.year + 1, 1, 1, tzinfo=VN_TZ) if self.quarter == 4
                else datetime(self.year, 3 * self.quarter + 1, 1, tzinfo=VN_TZ))


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class Tally:
    received: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    finished: int = 0
    with_result: int = 0
    timed: int = 0  # with a result and an appointment date
    on_time: int = 0
    with_fees: int = 0
    paid_online: int = 0
    delivered_by_post: int = 0

    def add(self, d: Mapping[str, Any]) -> None:
        self.received += 1
        self.by_status[d["status"]] = self.by_status.get(d["status"], 0) + 1
        self.finished += is_final(d["status"])
        if d["result_at"] is not None:
            self.with_result += 1
            self.delivered_by_post += bool(d["posted"])
            if d["due_at"] is not None:
                self.timed += 1
                self.on_time += d["result_at"] <= d["due_at"]
        if d["has_fees"]:
            self.with_fees += 1
            self.paid_online += d["fees_paid_online_at"] is not None

    def figures(self) -> dict[str, Any]:
        return {
            "received": self.received, "finished": self.finished,
            "by_status": {str(s): self.by_status.get(s, 0) for s in Status},
            "with_result": self.with_result, "on_time": self.on_time, "late": self.timed - self.on_time,
            "on_time_rate": _share(self.on_time, self.timed),
            "with_fees": self.with_fees, "paid_online": self.paid_online,
            "paid_online_share": _share(self.paid_online, self.with_fees),
            "delivered_by_post": self.delivered_by_post,
            "post_share": _share(self.delivered_by_post, self.with_result),
        }


def build(quarter: Quarter, dossiers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`dossiers`: procedure_code, procedure_name, level, channel, status, due_at, result_at, has_fees,
    fees_paid_online_at, posted, for every dossier received in the quarter."""
    rows: dict[tuple, Tally] = {}
    names: dict[str, str] = {}
    total = Tally()
    for d in dossiers:
        key = (d["procedure_code"], d["level"], d["channel"])
        names.setdefault(d["procedure_code"], d["procedure_name"])
        rows.setdefault(key, Tally()).add(d)
        total.add(d)
    return {
        "year": quarter.year, "quarter": quarter.quarter,
        "from": quarter.start.date().isoformat(), "to": quarter.end.date().isoformat(),  # `to` excluded
        "status_labels": {str(s): STATUS_LABELS_VI[s] for s in Status},
        "totals": total.figures(),
        "rows": [{"procedure_code": code, "procedure_name": names[code], "level": level,
                  "level_name": LEVEL_NAMES.get(level, level), "channel": channel,
                  "channel_name": CHANNEL_NAMES.get(channel, str(channel)), **tally.figures()}
                 for (code, level, channel), tally in sorted(rows.items())],
    }


CSV_COLUMNS = ["procedure_code", "procedure_name", "level", "channel", "received", "finished",
               *[f"status_{int(s)}" for s in Status], "with_result", "on_time", "late", "on_time_rate",
               "with_fees", "paid_online", "paid_online_share", "delivered_by_post", "post_share"]


def csv_rows(report: dict[str, Any]) -> Iterable[list[Any]]:
    """The rows of the CSV (header first), the totals last, as procedure code `TOTAL`."""
    yield CSV_COLUMNS
    total = {"procedure_code": "TOTAL", "procedure_name": "", "level": "", "channel": "", **report["totals"]}
    for row in [*report["rows"], total]:
        flat = {**row, **{f"status_{s}": n for s, n in row["by_status"].items()}}
        yield ["" if flat[c] is None else flat[c] for c in CSV_COLUMNS]
