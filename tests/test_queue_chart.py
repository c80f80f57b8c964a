"""The console's chart: samples bucketed by minute, drawn as SVG with gaps where no worker sampled."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from gateway.api.queue_chart import render
from gateway.domain.queue_history import per_minute

NOW = datetime(2026, 12, 3, 10, 30, 20, tzinfo=UTC)


def sample(minutes_ago: float, queue: str, backlog: int, dead: int = 0) -> dict:
    return {"at": NOW - timedelta(minutes=minutes_ago), "queue": queue, "backlog": backlog, "dead": dead}


def test_queues_add_up_and_a_minute_keeps_its_highest_sample():
    minutes = per_minute([sample(0, "national_portal", 30, 1), sample(0, "payment", 12),
                          sample(0.1, "national_portal", 5, 2), sample(10, "payment", 7, 3),
                          sample(90, "payment", 999)], now=NOW)
    assert len(minutes) == 60 and minutes[-1].start == NOW.replace(second=0)
    assert (minutes[-1].backlog, minutes[-1].dead) == (42, 2)  # 30 + 12 at one moment beats 5 later
    assert (minutes[-11].backlog, minutes[-11].dead) == (7, 3)
    assert minutes[-2].backlog is None  # nobody sampled: no value, not a zero
    assert all(m.backlog != 999 for m in minutes)  # older than the hour


def test_the_svg_scales_to_the_peak_and_breaks_at_gaps():
    samples = [sample(n, "national_portal", 100 - n, dead=4) for n in range(0, 5)]
    samples += [sample(n, "national_portal", 50) for n in range(20, 25)]
    svg = str(render(per_minute(samples, now=NOW)))
    assert svg.startswith('<svg id="queue-chart"') and "<script" not in svg
    assert '>100</text>' in svg  # the y axis is labelled with the peak
    backlog_lines = re.findall(r'<polyline class="backlog" points="([^"]+)"', svg)
    assert len(backlog_lines) == 2  # two runs of samples, not bridged across the 15 empty minutes
    ys = [float(p.split(",")[1]) for p in backlog_lines[1].split()]
    assert min(ys) == 10.0  # the peak touches the top of the plot
    assert re.search(r'<polyline class="dead"', svg)


def test_no_samples_says_so():
    svg = str(render(per_minute([], now=NOW)))
    assert "Chưa có số liệu" in svg and "<polyline" not in svg
