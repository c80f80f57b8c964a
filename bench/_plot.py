"""load.py's figures as a picture (PNG, beside the JSON): what people would rather look at than read.

Four panels: offered rate against what the API accepted and what reached the national portal end to
end; p99 latency per route; the job backlog over the whole run (levels one after another); CPU ms per
status event by role, with the goal's 4 ms of gateway CPU marked. Needs matplotlib (the bench extra);
without it nothing is drawn and load.py says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

GATEWAY_ROLES = ("api", "workers", "postgres", "rabbitmq")
OTHER_ROLES = ("mocks", "bench client")  # "other" (the rest of the machine) is left out: noise
GOAL_GATEWAY_MS = 4.0


def plot(result: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: files only
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    levels = result["levels"]
    if not levels:
        return None
    offered = [lv["rate"] for lv in levels]
    fig, ((rates, p99), (backlog, cpu)) = plt.subplots(2, 2, figsize=(12, 8), dpi=80)
    title = (f"bench/load.py, {result['mix_name']} mix, {result['gateway_workers']} worker(s): best sustained "
             f"{result['best_sustained_e2e_events_per_s']:,.0f} status events/s end to end")
    fig.suptitle(title, fontsize=11)

    rates.plot(offered, offered, ":", color="grey", label="offered")
    rates.plot(offered, [lv["events_per_s_api"] for lv in levels], "o-", label="accepted by the API")
    rates.plot(offered, [lv["events_per_s_e2e"] or 0 for lv in levels], "s-", label="end to end")
    for lv in levels:
        if lv["saturated"]:
            rates.annotate("saturated", (lv["rate"], lv["events_per_s_api"]), fontsize=8, color="red",
                           textcoords="offset points", xytext=(4, -12))
    rates.set(xlabel="offered status events/s", ylabel="status events/s", title="rate")
    rates.legend(fontsize=8)

    for route in levels[0]["routes"]:
        points = [(lv["rate"], lv["routes"][route]["p99"]) for lv in levels if lv["routes"][route]["p99"]]
        if points:
            p99.plot(*zip(*points, strict=True), "o-", label=route)
    p99.axhline(100, color="red", lw=0.8, ls="--", label="goal at 150/s: 100 ms")
    p99.set(xlabel="offered status events/s", ylabel="ms (client side)", title="p99 latency per route",
            yscale="log")
    p99.legend(fontsize=8)

    first = levels[0]["started_at"]
    for lv in levels:
        series = lv["backlog_over_time"]
        if series:
            backlog.plot([lv["started_at"] - first + t for t, _ in series], [n for _, n in series],
                         label=f"{lv['rate']:,.0f}/s")
    backlog.set(xlabel="seconds since the first level", ylabel="jobs pending + in flight", title="backlog")
    backlog.legend(fontsize=8)

    bottom = [0.0] * len(levels)
    x = range(len(levels))
    for role in (*GATEWAY_ROLES, *OTHER_ROLES):
        heights = [lv["cpu_ms_per_event"].get(role, 0.0) for lv in levels]
        cpu.bar(x, heights, bottom=bottom, label=role, hatch="//" if role in OTHER_ROLES else None)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    cpu.axhline(GOAL_GATEWAY_MS, color="red", lw=0.8, ls="--", label="goal: 4 ms gateway")
    cpu.set_xticks(list(x), [f"{r:,.0f}/s" for r in offered])
    cpu.set(xlabel="offered status events/s", ylabel="CPU ms per status event",
            title="CPU per event by role (hatched: not the gateway)")
    cpu.legend(fontsize=7, ncol=2)

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
