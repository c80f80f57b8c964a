"""Schemathesis fuzzes every operation of /openapi.json against a real `gateway serve`, once per role's
key, and no generated request may get a 5xx. Bounded: a fixed number of examples per operation and a
fixed seed, so a CI run takes the same minute every time (and a failure can be replayed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = 12
KEYS = ["dev-portal-key", "dev-one-stop-key", "dev-national-portal-key", "dev-ops-key"]


def schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is a test dependency (pip install -e '.[test]')"
    return found


@pytest.mark.parametrize("key", KEYS)
def test_no_generated_request_gets_a_5xx(gw, key):
    if gw.name != "embedded":
        pytest.skip("the same code answers on both stacks; fuzzing once keeps CI within its time")
    run = subprocess.run(
        [schemathesis(), "run", f"{gw.api_url}/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", str(EXAMPLES), "--seed", "20261124", "--request-timeout", "20",
         "--header", f"Authorization: Bearer {key}", "--suppress-health-check", "all"],
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
