"""Horizontal scale: the same load with 1, 2 and 4 worker processes, each on a fresh stack; prints the curve.

    python bench/scale.py [--workers 1,2,4] [load.py options, e.g. --mix events --no-notifications]

Each worker count runs bench/load.py's levels (same rates, same mix); the curve is the best sustained
end-to-end rate per count, with the API's p99 at each rate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # noqa: E402 - the bench's own modules, beside this file
from _raw_broker import measure as raw_broker  # noqa: E402
from _stack import AMQP_URL  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    own = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    own.add_argument("--workers", default="1,2,4", help="worker process counts (default 1,2,4)")
    mine, rest = own.parse_known_args(argv)
    counts = [int(x) for x in mine.workers.split(",")]
    args = load.parse_args(rest)
    if not load.services_reachable():
        return 2
    load.interruptible()
    log_root = Path(tempfile.mkdtemp(prefix="gwscale-"))
    raw = raw_broker(AMQP_URL, f"gwbench_raw_{os.getpid()}", args.raw_messages, 2)
    print(f"logs: {log_root}\nraw broker: publish+consume {raw.rate:,.0f} msgs/s", flush=True)
    runs = {}
    try:
        for count in counts:
            log_dir = log_root / f"workers-{count}"
            log_dir.mkdir()
            print(f"\n##### {count} worker process(es) #####", flush=True)
            runs[count] = load.benchmark(args, log_dir, gateway_workers=count)
            runs[count].pop("reconciliation_lines")
    except KeyboardInterrupt:
        print("interrupted; everything was torn down", file=sys.stderr)
        return 130
    rates = sorted({lv["rate"] for r in runs.values() for lv in r["levels"]})
    print(f"\ncurve ({args.mix} mix{'' if not args.no_notifications else ', no notifications'}): status events/s end "
          "to end per offered rate; * = saturated at that rate")
    print(f"{'workers':>8} " + "".join(f"{r:>10,.0f}" for r in rates) + f"{'best':>10}{'reconciled':>12}")
    for count, result in runs.items():
        by_rate = {lv["rate"]: lv for lv in result["levels"]}
        cells = "".join(f"{'-' if r not in by_rate else _cell(by_rate[r]):>10}" for r in rates)
        print(f"{count:>8} {cells}{result['best_sustained_e2e_events_per_s']:>10,.0f}"
              f"{'OK' if result['reconciliation']['ok'] else 'FAILED':>12}")
    print("\nAPI p99 (ms) of the steps' requests per offered rate")
    for count, result in runs.items():
        by_rate = {lv["rate"]: lv["routes"]["events (batch)"]["p99"] for lv in result["levels"]}
        print(f"{count:>8} " + "".join(f"{by_rate.get(r) or '-':>10}" for r in rates))
    (log_root / "scale.json").write_text(json.dumps(runs, indent=1) + "\n")
    print(f"figures as JSON: {log_root / 'scale.json'}")
    return 0 if all(r["reconciliation"]["ok"] for r in runs.values()) else 1


def _cell(level: dict) -> str:
    e2e = level["events_per_s_e2e"]
    return ("-" if e2e is None else f"{e2e:,.0f}") + ("*" if level["saturated"] else "")


if __name__ == "__main__":
    sys.exit(main())
