"""Figures as a plain-text table and as JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

CPU_PHASES = ("filing_api", "events_api", "events_drain", "events_e2e")
CPU_ROLES = ("api", "workers", "mocks", "postgres", "rabbitmq", "bench client", "other")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of unsorted values; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def latency_ms(seconds: list[float]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100)):
        value = percentile(seconds, q)
        out[name] = None if value is None else round(value * 1000, 1)
    return out


def write_json(figures: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n")


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _settings_lines(s: dict[str, Any]) -> list[str]:
    lines = [
        f"dossiers {s['dossiers']} x {s['events_per_dossier']} events (journey {s['journey']}), "
        f"{s['concurrency']} client threads"
        + (f", steps posted {s['batch']} per request (POST /api/v1/one-stop/events)" if s.get("batch", 1) > 1 else ""),
        f"API: {s['api_workers']} gunicorn workers x {s['api_threads']} threads;  "
        f"gateway workers: {s['gateway_workers']} x {s['worker_threads']} consumer threads;  "
        f"{s['cores']} cores, log level {s['log_level']}, code {s['code']}"
        + (";  ANALYZE after filing" if s.get("analyze_after_filing") else ""),
    ]
    if s["extra_env"]:
        lines.append("extra env: " + " ".join(f"{k}={v}" for k, v in s["extra_env"].items()))
    return lines


def _throughput_lines(f: dict[str, Any]) -> list[str]:
    fi, ev, e2e = f["filing"], f["events"], f["e2e"]
    row = "{:<34}{:>8}{:>8}{:>7}{:>10}{:>11}  {}"
    return [
        row.format("", "count", "ok", "fail", "seconds", "per second", ""),
        row.format("filing through the API", fi["requests"], fi["ok"], fi["failed"], _num(fi["seconds"], 2),
                   _num(fi["per_s"]), "dossiers/s"),
        row.format("filing end to end", fi["ok"], "", "", _num(fi["e2e_seconds"], 2), _num(fi["e2e_per_s"]),
                   "dossiers/s (first filing sent -> last portal request)"),
        row.format("events through the API", ev["requests"], ev["ok"], ev["failed"], _num(ev["seconds"], 2),
                   _num(ev["per_s"]), "events/s"),
        row.format("events end to end", ev["ok"], "", "", _num(e2e["seconds"], 2), _num(e2e["events_per_s"]),
                   "events/s (first event sent -> last portal request)"),
        row.format("  jobs delivered in that window", e2e["jobs"], "", "", "", _num(e2e["jobs_per_s"]),
                   "jobs/s"),
        row.format("  portal requests in that window", e2e["portal_requests"], "", "", "",
                   _num(e2e["portal_requests_per_s"]), "requests/s"),
    ]


def _latency_lines(f: dict[str, Any]) -> list[str]:
    row = "{:<34}{:>9}{:>9}{:>9}{:>9}"
    lines = [row.format("API latency (ms)", "p50", "p95", "p99", "max")]
    events_route = ("POST /api/v1/one-stop/events (per step)" if f["settings"].get("batch", 1) > 1
                    else "POST /api/v1/dossiers/{code}/events")
    for name, key in (("POST /api/v1/dossiers", "filing"), (events_route, "events")):
        lat = f[key]["latency_ms"]
        lines.append(row.format(name, *(_num(lat[k]) for k in ("p50", "p95", "p99", "max"))))
    return lines


def _drain_lines(f: dict[str, Any]) -> list[str]:
    e2e, ev = f["e2e"], f["events"]
    return [
        f"jobs backlog when the last event was answered: {ev['backlog_at_api_end']} pending/in flight; "
        f"drained {_num(e2e['drain_after_api_seconds'], 2)} s later",
        f"event jobs done after 50% / 99% / 100% of the drain wait: "
        f"{_num(e2e['t50'], 2)} / {_num(e2e['t99'], 2)} / {_num(e2e['t100'], 2)} s after the first event",
        f"final job states: {e2e['final_counts']}",
    ]


def _db_lines(per_event: dict[str, dict[str, float]]) -> list[str]:
    db = per_event.get("database", {})
    lines = ["PostgreSQL work per accepted event, events phase incl. drain (pg_stat_database / pg_stat_user_tables):",
             "  " + ", ".join(f"{k} {v}" for k, v in db.items())]
    tables = {name: c for name, c in per_event.items() if name != "database" and not name.startswith("index ")}
    if tables:
        columns = list(next(iter(tables.values())))
        row = "  {:<16}" + "{:>14}" * len(columns)
        lines.append(row.format("table", *columns))
        lines += [row.format(name, *(c[k] for k in columns)) for name, c in sorted(tables.items())]
    return lines


def _raw_lines(f: dict[str, Any]) -> list[str]:
    raw = f["raw_broker"]
    return [
        f"raw broker (kombu, persistent, durable queue, publisher confirms, prefetch {raw['prefetch']}, "
        f"{raw['messages']:,} messages, one thread):",
        f"  publish {_num(raw['publish_per_s'])}/s   consume+ack {_num(raw['consume_per_s'])}/s   "
        f"publish+consume {_num(raw['publish_consume_per_s'])} msgs/s",
        f"ratio end to end / raw: events {_num(f['ratio_e2e_events_to_raw'], 3)}   "
        f"jobs {_num(f['ratio_e2e_jobs_to_raw'], 3)}  (e2e per second / raw publish+consume per second)",
    ]


def _cpu_lines(cpu: dict[str, dict[str, float]]) -> list[str]:
    if not cpu or not any(cpu.values()):
        return ["CPU per process: not available (needs Linux /proc)"]
    per_event = cpu.get("ms_per_event", {})
    row = "{:<30}" + "{:>13}" * len(CPU_PHASES) + "{:>16}"
    lines = [row.format("CPU, % of one core", *CPU_PHASES, "ms CPU/event")]
    for role in CPU_ROLES:
        lines.append(row.format(role, *(_num(cpu.get(p, {}).get(role), 0) for p in CPU_PHASES),
                                _num(per_event.get(role), 2)))
    lines.append(row.format("machine busy, % of all cores", *(_num(cpu.get(p, {}).get("machine"), 0)
                                                              for p in CPU_PHASES), _num(per_event.get("machine"), 2)))
    lines.append("(ms CPU/event: CPU time over the events_e2e window divided by the events accepted)")
    return lines


def _verification_lines(v: dict[str, Any]) -> list[str]:
    if v["ok"]:
        return [f"verification at the national-portal mock: OK ({v['dossiers']} dossiers, {v['steps']} steps, "
                "each dossier created once, its steps all there in posted order, no duplicates)"]
    lines = [f"verification at the national-portal mock: {v['problem_count']} PROBLEM(S)"]
    lines += [f"  {p}" for p in v["problems"]]
    return lines


def _profile_lines(profiles: list[dict[str, Any]]) -> list[str]:
    lines = []
    for prof in profiles:
        if "error" in prof:
            lines.append(f"profile {prof['name']}: {prof['error']}")
            continue
        lines.append(f"profile {prof['name']} ({prof['samples']} samples holding the GIL, {prof['file']}):")
        lines += [f"  {pct:5.1f}% self     {fn}" for fn, pct in prof["self"][:6]]
        lines += [f"  {pct:5.1f}% project  {fn}" for fn, pct in prof["project"][:6]]
        lines += [f"  {pct:5.1f}% library  {fn}" for fn, pct in prof["library"][:6]]
    return lines


def render(f: dict[str, Any]) -> str:
    sections = [
        ["=== gateway end-to-end benchmark ===", *_settings_lines(f["settings"])],
        _throughput_lines(f),
        _latency_lines(f),
        _drain_lines(f),
        _db_lines(f["db_per_event"]),
        _raw_lines(f),
        _cpu_lines(f["cpu"]),
        _verification_lines(f["verification"]),
    ]
    if f["errors"]:
        sections.append(["errors:", *[f"  {e}" for e in f["errors"]]])
    if f["profiles"]:
        sections.append(_profile_lines(f["profiles"]))
    return "\n\n".join("\n".join(s) for s in sections)
