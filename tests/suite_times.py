"""What each test costs, for GATEWAY_TEST_TIMES=FILE: a line of JSON per test (its process, wall time, and the CPU
of the test process itself), and, run as `python -m tests.suite_times FILE`, the sums per file and per process.
The order of conftest's LONGEST_FIRST comes from these sums (docs/testing.md)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterator

import pytest

TIMES = os.environ.get("GATEWAY_TEST_TIMES")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    cpu, wall = time.process_time(), time.monotonic()
    yield
    if TIMES:
        with open(TIMES, "a") as out:
            out.write(json.dumps({"test": item.nodeid, "process": os.environ.get("PYTEST_XDIST_WORKER", "main"),
                                  "wall": round(time.monotonic() - wall, 3),
                                  "cpu": round(time.process_time() - cpu, 3), "ended": round(time.time(), 2)}) + "\n")


def summarise(path: str) -> None:
    by_file: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    by_process: dict[str, float] = defaultdict(float)
    with open(path) as lines:
        rows = [json.loads(line) for line in lines]
    for row in rows:
        sums = by_file[row["test"].split("::")[0]]
        sums[0] += row["wall"]
        sums[1] += row["cpu"]
        sums[2] += 1
        by_process[row["process"]] += row["wall"]
    print(f"{'file':50} {'wall s':>7} {'cpu s':>6} {'tests':>5}")
    for name, (wall, cpu, n) in sorted(by_file.items(), key=lambda kv: -kv[1][0]):
        print(f"{name:50} {wall:7.1f} {cpu:6.1f} {n:5d}")
    print("busy per process:", ", ".join(f"{p} {w:.0f} s" for p, w in sorted(by_process.items())))


if __name__ == "__main__":
    summarise(sys.argv[1])
