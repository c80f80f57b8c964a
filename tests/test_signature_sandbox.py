"""The sandbox's own guarantees, proven with a verifier that misbehaves on purpose: it eats memory, spins
forever, or dies. Whatever a file provokes in pyHanko, the caller gets an answer and the next file is served."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from gateway.signature.sandbox import SandboxLimits, VerificationRefused, VerifierSandbox


class Hostile:
    """Stands in for PdfVerifier inside the worker process."""

    def verify(self, pdf: bytes) -> dict[str, Any]:
        if pdf == b"eat":
            hoard = bytearray(4 * 1024**3)  # far above the cap: the allocation fails under RLIMIT_AS
            return {"size": len(hoard)}
        if pdf == b"spin":
            while True:
                pass
        if pdf == b"die":
            os._exit(3)  # a crash in C code looks like this from outside
        return {"pid": os.getpid(), "echo": pdf.decode()}


@pytest.fixture
def sandbox():
    box = VerifierSandbox(Hostile, SandboxLimits(processes=2, time_limit_seconds=2, memory_limit_mb=512))
    yield box
    box.close()


@pytest.mark.parametrize(("pdf", "message", "replaced"), [
    (b"eat", "more than 512 MB", 1),
    (b"spin", "took longer than 2 s", 1),
    (b"die", "stopped while reading the file, twice", 2),  # a crash gets a second worker, then is refused
], ids=["memory", "time", "crash"])
def test_a_hostile_file_is_refused_and_its_worker_replaced(sandbox, pdf, message, replaced):
    assert sandbox.verify(b"warm")["echo"] == "warm"
    with pytest.raises(VerificationRefused, match=message) as caught:
        sandbox.verify(pdf)
    assert caught.value.code == "pdf_too_complex"
    assert sandbox.replaced == replaced
    # Both workers serve again, the replacement included.
    answers = [sandbox.verify(b"next") for _ in range(4)]
    assert all(a["echo"] == "next" for a in answers)


def test_many_callers_share_the_workers(sandbox):
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: sandbox.verify(str(n).encode()), range(64)))
    assert [a["echo"] for a in answers] == [str(n) for n in range(64)]
    assert len({a["pid"] for a in answers}) <= 2


def test_a_worker_killed_while_idle_is_replaced_without_failing_the_caller(sandbox):
    first = sandbox.verify(b"a")["pid"]
    os.kill(first, 9)
    # Whichever worker the next calls get, none fails: a dead one is replaced and the file retried.
    assert all(sandbox.verify(b"b")["echo"] == "b" for _ in range(4))
