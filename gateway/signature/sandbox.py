"""Verification in separate processes, each with a memory cap and a time limit per file.

A PDF is hostile input: a decompression bomb, objects nested a million deep, a cross-reference table that
sends the parser in circles. pyHanko has its own decoding budget, but a parser bug or a file it did not
foresee must not take the API process down with it. So each file is verified by a worker process that
the API keeps warm (pyHanko takes a second to import): its address space is capped with RLIMIT_AS, and a
worker that overruns its time is killed and replaced. The verdict comes back as plain data.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import resource
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from .pdf_verifier import UnreadablePdf

log = logging.getLogger(__name__)

STARTUP_SECONDS = 60.0  # importing pyHanko on a busy machine


# What the verifiers run, imported once in the fork server: each verifier process is then a fork of it, not
# a fresh interpreter importing pyHanko again (a second of CPU per process, per worker, per replacement).
PRELOAD = ["gateway.signature.pdf_verifier", "gateway.signature.ltv"]


def _context() -> Any:
    """Processes forked from a fork server: a clean single-threaded process, not the threaded server itself."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


@dataclass(frozen=True)
class SandboxLimits:
    processes: int = 2
    time_limit_seconds: float = 10.0
    memory_limit_mb: int = 768
    wait_seconds: float = 30.0  # how long a request waits for a free worker before "busy"


class VerificationRefused(Exception):
    """The file could not be verified; `code` is the API error code, `status` its HTTP status."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class SandboxBusy(Exception):
    """Every worker stayed busy for longer than the wait: the caller should try again shortly."""


def _serve(conn: Connection, build: Any, memory_limit_mb: int) -> None:
    """The worker's loop: receive a PDF, answer ("report", dict) or ("refused", code, message)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    verifier = build()
    limit = memory_limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send(("ready",))
    while True:
        try:
            pdf = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            conn.send(("report", verifier.verify(pdf)))
        except UnreadablePdf as exc:
            conn.send(("refused", exc.code, str(exc)))
        except MemoryError:
            conn.send(("refused", "pdf_too_complex", f"verifying the file needs more than {memory_limit_mb} MB"))
            return  # a process that ran out of memory is not trusted with the next file
        except RecursionError:
            conn.send(("refused", "malformed_pdf", "the PDF's objects are nested too deeply"))
        except Exception as exc:  # noqa: BLE001 - whatever else a hostile file provokes is the file's fault
            conn.send(("refused", "malformed_pdf", f"the PDF cannot be verified: {type(exc).__name__}: {exc}"))


class _Worker:
    def __init__(self, ctx: Any, build: Any, limits: SandboxLimits) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, build, limits.memory_limit_mb), daemon=True,
                                   name="signature-verifier")
        self.process.start()
        child.close()
        self.ready = False

    def wait_ready(self) -> None:
        if self.ready:
            return
        if not self.conn.poll(STARTUP_SECONDS):
            raise RuntimeError("the signature verifier did not start")
        message = self.conn.recv()
        assert message == ("ready",), message
        self.ready = True

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class VerifierSandbox:
    """A pool of warm verifier processes; `verify` is safe to call from many request threads."""

    def __init__(self, build: Any, limits: SandboxLimits) -> None:
        # `build` makes the verifier inside the child: a picklable callable (settings travel, not pyHanko objects).
        self.build = build
        self.limits = limits
        self._ctx = _context()
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._started = False
        self.replaced = 0  # workers killed or lost and replaced: a figure for operators

    def _start(self) -> None:
        with self._lock:
            if not self._started:
                for _ in range(self.limits.processes):
                    self._idle.put(_Worker(self._ctx, self.build, self.limits))
                self._started = True

    def verify(self, pdf: bytes) -> dict[str, Any]:
        """The report of one PDF; VerificationRefused for a file that cannot be verified, SandboxBusy if no
        worker is free in time. A worker that dies under a file gets one more try in another worker (it may
        have been killed from outside); a file that kills two is refused."""
        self._start()
        for _ in range(2):
            try:
                worker = self._idle.get(timeout=self.limits.wait_seconds)
            except queue.Empty:
                raise SandboxBusy("every signature verifier is busy") from None
            healthy = False
            try:
                answer = self._ask(worker, pdf)
                if answer is None:
                    continue
                healthy = answer[0] == "report" or (answer[1] != "pdf_too_complex" and worker.process.is_alive())
                if answer[0] == "refused":
                    raise VerificationRefused(answer[1], answer[2])
                return answer[1]
            finally:
                self._give_back(worker, healthy)
        raise VerificationRefused("pdf_too_complex", "the verifier stopped while reading the file, twice "
                                                     "(memory or parser limit)")

    def _ask(self, worker: _Worker, pdf: bytes) -> tuple | None:
        """The worker's answer, or None if it died (before or while reading the file)."""
        try:
            worker.wait_ready()
            worker.conn.send_bytes(pdf)
            if not worker.conn.poll(self.limits.time_limit_seconds):
                raise VerificationRefused("pdf_too_complex",
                                          f"verifying the file took longer than {self.limits.time_limit_seconds:g} s")
            return worker.conn.recv()
        except (RuntimeError, OSError, EOFError) as exc:
            log.warning("signature verifier %s lost: %s", worker.process.pid, exc or type(exc).__name__)
            return None

    def _give_back(self, worker: _Worker, healthy: bool) -> None:
        if healthy and worker.process.is_alive():
            self._idle.put(worker)
            return
        worker.stop()
        self.replaced += 1
        log.warning("signature verifier %s replaced", worker.process.pid)
        self._idle.put(_Worker(self._ctx, self.build, self.limits))

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                return

