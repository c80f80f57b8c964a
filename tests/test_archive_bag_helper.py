"""The bag-making helper process does not outlive the worker that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import wait_for

ROOT = Path(__file__).resolve().parent.parent

WORKER = textwrap.dedent("""
    import sys, tempfile
    from pathlib import Path
    from gateway.adapters.archive import bag
    bag.make_bag(Path(tempfile.mkdtemp()), {"a.txt": b"a"}, {"External-Identifier": "X"})
    print(*bag._pool._processes, flush=True)  # the helper's pid
    sys.stdin.read()  # stay alive, as a worker does, until killed
""")


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in {"Z", "X"}  # exited (a zombie waits for whoever adopted it to reap it)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_a_killed_worker_leaves_no_bag_helper_behind():
    worker = subprocess.Popen([sys.executable, "-c", WORKER], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        helper = int(worker.stdout.readline())
        assert not _gone(helper)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        wait_for(lambda: _gone(helper), timeout=30, what=f"the bag helper {helper} to exit")
    finally:
        worker.kill()
