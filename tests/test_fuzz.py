"""Schemathesis fuzzes every operation of /openapi.json against a real `gateway serve`, with each role's key
that may call it, and no generated request may get a 5xx. Bounded: a fixed number of examples per operation and
a fixed seed, so a CI run takes the same minute every time (and a failure can be replayed).

A key is not fuzzed against the operations its roles may not call: the role check comes before anything reads
the request (gateway/api/auth.py), so those answer 403 whatever is generated, and tests/test_access.py holds
them to it. Fuzzing them too cost three quarters of the generated requests and of this file's CPU.
The operations open to everyone go with the ops key."""

from __future__ import annotations

import re
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


def operations_for(gw, key: str) -> list[str]:
    """The operationIds (as gateway/api/openapi.py makes them) that `key`'s roles may call; for the ops key, the
    operations open to everyone too."""
    roles = gw.gateway.keys.caller(key).roles
    ids = []
    for rule in gw.app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("console."):
            continue
        required = getattr(gw.app.view_functions[rule.endpoint], "required_roles", ())
        if roles.intersection(required) or (not required and key == "dev-ops-key"):
            ids.append(rule.endpoint.replace(".", "_"))
    return ids


@pytest.mark.parametrize("key", KEYS)
def test_no_generated_request_gets_a_5xx(gw, key):
    if gw.name != "embedded":
        pytest.skip("the same code answers on both stacks; fuzzing once keeps CI within its time")
    operations = operations_for(gw, key)
    assert operations, f"{key} may call nothing"
    run = subprocess.run(
        [schemathesis(), "run", f"{gw.api_url}/openapi.json", "--checks", "not_a_server_error",
         "--include-operation-id-regex", "^(" + "|".join(map(re.escape, operations)) + ")$",
         "--max-examples", str(EXAMPLES), "--seed", "20261124", "--request-timeout", "20",
         "--header", f"Authorization: Bearer {key}", "--suppress-health-check", "all"],
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
