"""Optional sampling profiles of the gateway processes with py-spy, and a short text summary of each.

Only samples of the thread holding the GIL count (py-spy --gil), so the shares say where each process
spends its Python CPU; waiting on PostgreSQL, RabbitMQ or HTTP (GIL released) is left out. Three views:
"self" groups by the innermost function; "project" by the innermost frame in gateway/ or mocks/ (library
time charged to the project code that called it); "library" by the package that project frame called;
"entry" by the outermost project frame past the plumbing (the route's view in the API, the job handler,
claiming or recording in a worker), which is what the cost per request kind in docs/performance.md is
made of. Each recording also leaves a flame graph (SVG) beside its collapsed stacks.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from _flamegraph import write_svg

PROJECT_PACKAGES = ("gateway", "mocks")
LIB_PREFIX = re.compile(r"^.*/(?:site-packages|lib/python3\.\d+)/")
# Project modules that only pass a request or a job on: the entry view looks past them.
PLUMBING = ("gateway/cli.py", "gateway/app.py", "gateway/api/auth.py", "gateway/jobs/worker.py",
            "gateway/jobs/runner.py", "gateway/adapters/base.py", "mocks/__main__.py")


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


@dataclass
class Recording:
    name: str
    output: Path
    proc: subprocess.Popen


def start(name: str, pid: int, out_dir: Path, *, subprocesses: bool = False, rate: int = 50) -> Recording | None:
    exe = py_spy()
    if exe is None:
        return None
    output = out_dir / f"pyspy-{name}.txt"
    argv = [exe, "record", "--pid", str(pid), "--format", "raw", "--nonblocking", "--gil", "--rate", str(rate),
            "-o", str(output)]
    if subprocesses:
        argv.append("--subprocesses")
    log = open(out_dir / f"pyspy-{name}.log", "w")  # noqa: SIM115 - the child holds it; closed on exit
    return Recording(name, output, subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))


def stop(recording: Recording, timeout: float = 30) -> None:
    if recording.proc.poll() is None:
        recording.proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    try:
        recording.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        recording.proc.kill()
        recording.proc.wait(5)


def _path(frame: str) -> str:
    """'run (gateway/jobs/runner.py:40)' -> 'gateway/jobs/runner.py'; absolute paths lose their prefix."""
    where = frame.partition(" (")[2].rstrip(")").rsplit(":", 1)[0]
    return LIB_PREFIX.sub("", where)


def _function(frame: str) -> str:
    path = _path(frame)
    name = frame.partition(" (")[0]
    return f"{name} ({path})" if path else name


def _is_project(frame: str) -> bool:
    return _path(frame).split("/", 1)[0] in PROJECT_PACKAGES


def _library(frame: str) -> str:
    path = _path(frame)
    return path.split("/", 1)[0].removesuffix(".py") if "/" in path else f"stdlib {path.removesuffix('.py')}"


def _entry(frames: list[str]) -> str:
    mine = [f for f in frames if _is_project(f)]
    past = [f for f in mine if _path(f) not in PLUMBING]
    if past:
        return _function(past[0])
    return _function(mine[-1]) if mine else "(outside the project)"


def _parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def summarize(recording: Recording, top: int = 8) -> dict[str, object]:
    if not recording.output.exists():
        return {"name": recording.name, "error": f"no profile written (see pyspy-{recording.name}.log)"}
    stacks = _parse(recording.output)
    total = sum(n for _, n in stacks) or 1
    leaf: Counter[str] = Counter()
    project: Counter[str] = Counter()
    library: Counter[str] = Counter()
    entry: Counter[str] = Counter()
    for frames, n in stacks:
        entry[_entry(frames)] += n
        leaf[_function(frames[-1])] += n
        mine = [i for i, f in enumerate(frames) if _is_project(f)]
        project[_function(frames[mine[-1]]) if mine else "(outside the project)"] += n
        callee = frames[mine[-1] + 1] if mine and mine[-1] + 1 < len(frames) else None
        library[_library(callee) if callee else "(project code itself)"] += n
    def share(c: Counter[str], top: int = top) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in c.most_common(top)]

    svg = write_svg(stacks, recording.output.with_suffix(".svg"), f"py-spy --gil: {recording.name}")
    return {"name": recording.name, "samples": total, "file": str(recording.output), "svg": str(svg),
            "self": share(leaf), "project": share(project), "library": share(library),
            "entry": share(entry, top=16)}


@contextmanager
def recording(enabled: bool, roots: dict[str, list[int]], out_dir: Path, results: list[dict[str, object]],
              mock_names: list[str] | None = None) -> Iterator[None]:
    """py-spy the API (gunicorn master and its workers), each gateway worker and each mock process (named
    by `mock_names`, in order) while the block runs; their summaries are appended to `results` afterwards."""
    recordings: list[Recording | None] = []
    if enabled:
        if py_spy() is None:
            print("--profile: py-spy not found (pip install -e '.[bench]'); running without profiles", flush=True)
        recordings.append(start("api", roots["api"][0], out_dir, subprocesses=True))
        recordings += [start(f"worker-{n}", pid, out_dir) for n, pid in enumerate(roots["workers"])]
        names = mock_names or [f"mocks-{n}" for n in range(len(roots["mocks"]))]
        recordings += [start(f"mock-{name}", pid, out_dir) for name, pid in zip(names, roots["mocks"], strict=False)]
    try:
        yield
    finally:
        for rec in filter(None, recordings):
            stop(rec)
        results += [summarize(rec) for rec in recordings if rec is not None]


def print_summary(profiles: list[dict[str, object]]) -> None:
    for prof in profiles:
        if "error" in prof:
            print(f"profile {prof['name']}: {prof['error']}")
            continue
        print(f"\nprofile {prof['name']} ({prof['samples']:,} GIL samples; flame graph {prof['svg']}):")
        for view in ("entry", "project", "library", "self"):
            print(f"  by {view}: " + "; ".join(f"{k} {v}%" for k, v in prof[view]))  # type: ignore[attr-defined]
