"""Start the test stacks' processes warm: forked from a process that has already imported the libraries, not
executed from scratch.

Most of a cold `python -m gateway worker` is imports (pyHanko, SQLAlchemy, zeep, Flask, pydantic: about a
second of CPU), and a run of the suite starts some two hundred such processes on a two-core machine. A warm
starter is a small process of the test process's own that imports once and then forks a child per request; the
child sets its environment, working folder and output files, runs `python -m <module> <args>` in itself
(`runpy`, as the interpreter does) and exits with its code. The child is the same program as the cold one:
only what was imported before its environment was set differs, so a tier preloads only modules that read no
environment at import. prometheus_client does (its multiprocess mode is chosen at import, from
PROMETHEUS_MULTIPROC_DIR, which `gateway serve` sets itself), so the gateway's own modules, which make their
metrics at import, are preloaded only in the tier that workers and the CLI use, never for `serve`.

GATEWAY_TEST_COLD_START=1 starts every process the ordinary way, to compare or to rule this out.

The starter is the children's parent: it reaps them and answers the test process's `poll` with the exit code
(and the child's CPU time, for GATEWAY_TEST_PROCESS_CPU=FILE, a line of JSON per process). Signals go from the
test process to the child directly. Run as a script, this module is the starter (`python -m tests.warm_start
MODULE...`), speaking JSON lines on its stdin and stdout.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COLD = os.environ.get("GATEWAY_TEST_COLD_START") == "1"
CPU_LOG = os.environ.get("GATEWAY_TEST_PROCESS_CPU")

# Libraries only: safe before any environment is set (none reads it at import).
LIBRARIES = ["sqlalchemy", "sqlalchemy.dialects.postgresql", "sqlalchemy.dialects.sqlite", "psycopg", "kombu",
             "kombu.transport.pyamqp", "kombu.transport.filesystem", "flask", "pydantic", "pydantic_settings",
             "requests", "zeep", "lxml.etree", "cryptography.x509", "asn1crypto.cms", "pyhanko.sign",
             "pyhanko.sign.validation", "pyhanko_certvalidator", "click", "tenacity", "gunicorn.app.base",
             "alembic.config", "alembic.command", "waitress", "aiosmtpd.controller",
             "mocks.server"]  # the mocks read no environment either
# And the gateway itself, for the processes that do not choose prometheus_client's mode (workers, the CLI).
GATEWAY = [*LIBRARIES, "gateway.cli", "gateway.bootstrap", "gateway.app", "gateway.jobs.worker"]


# The starter's side ------------------------------------------------------------------------------------------

def _run_child(request: dict[str, Any], channel: tuple[int, int]) -> None:
    """In the forked child: become `python -m MODULE ARGS` with the request's environment, then exit."""
    code = 1
    try:
        for fd in channel:
            os.close(fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if request["stderr"] else out
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
        module, *args = request["argv"]
        sys.argv = [module, *args]
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exit_:
            if exit_.code is None or isinstance(exit_.code, int):
                code = exit_.code or 0
            else:
                print(exit_.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:
            code = 128 + signal.SIGINT
        except BaseException:  # noqa: BLE001 - printed as the interpreter would, then the exit code says it
            import traceback

            traceback.print_exc()
            code = 1
        # What the interpreter does on its way out: wait for non-daemon threads, run atexit, flush.
        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    finally:
        os._exit(code)


def serve(preload: list[str]) -> None:
    for name in preload:
        importlib.import_module(name)
    # The channel moves off fds 0 and 1, so that no child inherits it there.
    requests_in, answers_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)
    reader = os.fdopen(requests_in, "r")
    children: dict[int, dict[str, Any]] = {}

    def answer(value: dict[str, Any]) -> None:
        os.write(answers_out, (json.dumps(value) + "\n").encode())

    answer({"ready": True})
    for line in reader:
        request = json.loads(line)
        if request["op"] == "spawn":
            pid = os.fork()
            if pid == 0:
                _run_child(request, (requests_in, answers_out))
            children[pid] = {"returncode": None, "cpu": None, "started": time.monotonic()}
            answer({"pid": pid})
        elif request["op"] == "poll":
            child = children[request["pid"]]
            if child["returncode"] is None:
                pid, status, usage = os.wait4(request["pid"], os.WNOHANG)
                if pid:
                    child.update(returncode=os.waitstatus_to_exitcode(status), cpu=usage.ru_utime + usage.ru_stime,
                                 alive=time.monotonic() - child.pop("started"))
            answer(child)
    # The test process has gone: its children are stopped by its fixtures, or by the kernel's SIGTERM below.
    for pid, child in children.items():
        if child["returncode"] is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


# The test process's side -------------------------------------------------------------------------------------

class WarmStarter:
    """One starter process; `spawn` gives a child that behaves like a `subprocess.Popen` for our uses."""

    def __init__(self, preload: list[str]) -> None:
        self._proc = subprocess.Popen([sys.executable, "-m", "tests.warm_start", *preload], cwd=ROOT,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self._lock = threading.Lock()
        ready = self._proc.stdout.readline()  # type: ignore[union-attr]
        if not ready:
            raise RuntimeError(f"the warm starter ({' '.join(preload[-1:])}) did not start")

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._proc.stdin.write(json.dumps(request) + "\n")  # type: ignore[union-attr]
            answer = self._proc.stdout.readline()  # type: ignore[union-attr]
        if not answer:
            raise RuntimeError("the warm starter has gone")
        return json.loads(answer)

    def spawn(self, argv: list[str], env: dict[str, str], stdout: Path, stderr: Path | None = None) -> WarmProcess:
        answer = self.ask({"op": "spawn", "argv": argv, "env": env, "cwd": str(ROOT), "stdout": str(stdout),
                           "stderr": str(stderr) if stderr else None})
        return WarmProcess(self, answer["pid"], argv)

    def close(self) -> None:
        self._proc.stdin.close()  # type: ignore[union-attr]
        try:
            self._proc.wait(15)
        except subprocess.TimeoutExpired:
            self._proc.kill()


class WarmProcess:
    """A forked child: poll, wait, terminate, kill and send_signal as on a Popen."""

    def __init__(self, starter: WarmStarter, pid: int, argv: list[str]) -> None:
        self._starter = starter
        self.pid = pid
        self.args = argv
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            answer = self._starter.ask({"op": "poll", "pid": self.pid})
            if answer["returncode"] is not None:
                self.returncode = answer["returncode"]
                record_cpu(self.args, answer["cpu"], answer.get("alive"))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.002
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)  # type: ignore[arg-type]
            time.sleep(pause)  # polling a child's exit, as Popen.wait does
            pause = min(pause * 2, 0.05)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def record_cpu(argv: list[str], cpu: float | None, alive: float | None = None) -> None:
    """For GATEWAY_TEST_PROCESS_CPU: what each process started by a test cost, by kind, and how long it lived
    (docs/testing.md)."""
    if CPU_LOG and cpu is not None:
        kind = " ".join(argv[:2]) if argv[0] == "gateway" else argv[0]
        with open(CPU_LOG, "a") as log:
            log.write(json.dumps({"kind": kind, "cpu": round(cpu, 3), "alive": alive and round(alive, 1),
                                  "warm": True}) + "\n")


_starters: dict[str, WarmStarter] = {}


def starter(tier: str) -> WarmStarter | None:
    """The test process's starter for a tier ("libraries" or "gateway"), made on first use; None when cold."""
    if COLD:
        return None
    if tier not in _starters:
        if not _starters:
            atexit.register(close_starters)
        _starters[tier] = WarmStarter(GATEWAY if tier == "gateway" else LIBRARIES)
    return _starters[tier]


def close_starters() -> None:
    for s in _starters.values():
        s.close()
    _starters.clear()


if __name__ == "__main__":
    serve(sys.argv[1:])
