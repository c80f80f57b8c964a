"""Memory: the resident set (RSS) of the API and worker processes while 100,000 status events go through.

    python bench/memory.py [--events 100000] [--rate 800] [--every 10000] [load.py options]

Runs bench/load.py's stack and load at one steady rate, and reads each process's VmRSS from /proc every
`--every` accepted events. Flat means: after the first checkpoint (imports, pools and caches warm), no
process keeps growing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # noqa: E402 - the bench's own modules, beside this file
from _cpu import descendants, process_table  # noqa: E402
from _mixed import MixedLoad  # noqa: E402
from _reconcile import reconcile  # noqa: E402
from _stack import Stack  # noqa: E402


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def processes(stack: Stack) -> dict[str, int]:
    """Each gunicorn worker (not the master: it only forks) and each gateway worker, by a stable name."""
    table = process_table()
    out = {}
    for root in stack.root_pids()["api"]:
        children = sorted(p for p in descendants(table, [root]) if table[p].ppid == root)
        out |= {f"api-{n}": pid for n, pid in enumerate(children)}
    out |= {f"worker-{n}": pid for n, pid in enumerate(stack.root_pids()["workers"])}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--rate", type=float, default=800, help="status events/s (default 800)")
    p.add_argument("--every", type=int, default=10_000, help="events between two readings (default 10,000)")
    own, rest = p.parse_known_args(argv)
    args = load.parse_args(rest + ["--rates", str(own.rate)])
    if not load.services_reachable():
        return 2
    load.interruptible()
    log_dir = Path(tempfile.mkdtemp(prefix="gwmemory-"))
    mix = load.make_mix(args)
    notifications = not args.no_notifications
    options = load.stack_options(args.gateway_workers, api_workers=args.api_workers, notifications=notifications,
                                 archive=not args.no_archive)
    readings: list[tuple[int, float, dict[str, float]]] = []
    started = time.monotonic()
    with Stack(options, log_dir) as stack:
        print(f"logs: {log_dir}; {args.mix} mix at {own.rate:g} status events/s until {own.events:,} events",
              flush=True)
        stack.start()
        driver = MixedLoad(stack.api_url, stack.mock, mix, threads=args.client_threads)
        try:
            if not mix.filings:
                needed = int(1.05 * own.events / len(mix.steps)) + 50
                print(f"filing {needed:,} dossiers beforehand ...", flush=True)
                driver.prefile(needed)
            names = processes(stack)
            readings.append((0, 0.0, {name: rss_mb(pid) for name, pid in names.items()}))
            while driver.ledger.events < own.events:
                driver.run(own.rate, own.every / own.rate)
                load.wait_drained(stack, driver, args.drain_limit)
                readings.append((driver.ledger.events, time.monotonic() - started,
                                 {name: rss_mb(pid) for name, pid in names.items()}))
                print(f"  {driver.ledger.events:>8,} events: " + ", ".join(
                    f"{k} {v:.0f} MB" for k, v in readings[-1][2].items()), flush=True)
            driver.finish()
            load.wait_drained(stack, driver, args.drain_limit)
            rec = reconcile(stack.mock, stack.db_url, driver.ledger, notifications)
        finally:
            driver.close()
    names_seen = list(readings[0][2])
    print(f"\nRSS (MB) per process after N status events ({os.cpu_count()} cores; API = gunicorn workers)")
    print(f"{'events':>8} " + "".join(f"{n:>10}" for n in names_seen))
    for events, _, rss in readings:
        print(f"{events:>8,} " + "".join(f"{rss.get(n, 0):>10.1f}" for n in names_seen))
    first, last = readings[1][2], readings[-1][2]
    growth = {n: last[n] - first[n] for n in names_seen}
    print("growth from the first checkpoint to the last: " + ", ".join(f"{n} {g:+.1f} MB" for n, g in growth.items()))
    print("reconciliation:", "OK" if rec.ok else "FAILED")
    print("\n".join(rec.lines()))
    return 0 if rec.ok else 1


if __name__ == "__main__":
    sys.exit(main())
