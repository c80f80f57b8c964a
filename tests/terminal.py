"""Run the `gateway` command the way an operator does: in a terminal (a pseudo-terminal), to see what it draws."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Screen:
    returncode: int
    text: str  # stdout and stderr as they met on the terminal


def in_terminal(*args: str, env: dict[str, str], timeout: float = 60) -> Screen:
    """`python -m gateway *args` with a pseudo-terminal as its stdin, stdout and stderr, 100 columns wide."""
    primary, secondary = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gateway", *args], cwd=ROOT,
                            env={**os.environ, **env, "COLUMNS": "100"}, stdin=secondary, stdout=secondary,
                            stderr=secondary)
    os.close(secondary)
    screen = b""
    with contextlib.suppress(OSError):  # EIO once the command has exited and closed its end
        while chunk := os.read(primary, 4096):
            screen += chunk
    os.close(primary)
    return Screen(proc.wait(timeout), screen.decode(errors="replace"))
