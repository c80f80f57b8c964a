"""Run the `gateway` command the way an operator does: in a terminal (a pseudo-terminal), to see what it draws."""

from __future__ import annotations

import os
import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Screen:
    returncode: int
    text: str  # stdout and stderr as they met on the terminal


def in_terminal(*args: str, env: dict[str, str], timeout: float = 60) -> Screen:
    """`python -m gateway *args` with a pseudo-terminal as its stdout and stderr, 100 columns wide. Started as the
    stacks' processes are (warm, tests/warm_start.py): the child opens the terminal by its name."""
    from .conftest import launch

    primary, secondary = os.openpty()
    terminal = Path(os.ttyname(secondary))
    screen = b""
    try:
        # The test keeps its end of the terminal open until the command has exited, so that the command may open
        # the terminal whenever it starts; so reading stops on the command's exit, not on the terminal's end.
        proc = launch(["gateway", *args], {**env, "COLUMNS": "100"}, terminal, terminal)
        deadline = time.monotonic() + timeout
        while True:
            if select.select([primary], [], [], 0.05)[0]:
                screen += os.read(primary, 4096)
            elif proc.poll() is not None:
                break  # exited, and all it wrote has been read
            elif time.monotonic() > deadline:
                proc.kill()
                raise subprocess.TimeoutExpired(["gateway", *args], timeout)
    finally:
        os.close(secondary)
        os.close(primary)
    return Screen(proc.returncode, screen.decode(errors="replace"))
