"""Access: API keys added and revoked at run time and stored only as hashes, per-key rate limits, and
partners' callbacks accepted only from their networks (both stacks, and Redis for the shared limit)."""

from __future__ import annotations

import hashlib
import socket
import uuid

import pytest
from sqlalchemy import select

from gateway.services.access.rate_limit import LocalBuckets, RedisWindow
from gateway.store.tables import api_keys

from .conftest import dossier_body, wait_for

OPS = {"Authorization": "Bearer dev-ops-key"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_name() -> str:
    return f"tinh-{uuid.uuid4().hex[:8]}"


def add_key(gw, **body):  # noqa: ANN001, ANN201
    return gw.client.post("/ops/api-keys", json=body, headers=OPS)


def test_a_key_added_by_ops_works_at_once_and_only_its_hash_is_kept(gw):
    name = new_name()
    r = add_key(gw, name=name, roles=["one_stop"])
    assert r.status_code == 201, r.get_json()
    key = r.get_json()["key"]
    assert gw.client.get("/api/v1/one-stop/feed?limit=1", headers=bearer(key)).status_code == 200
    assert gw.client.post("/api/v1/dossiers", json=dossier_body(), headers=bearer(key)).status_code == 403
    with gw.gateway.engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.name == name)).mappings().one()
    assert row["key_sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(dict(row))
    listed = {k["name"]: k for k in gw.client.get("/ops/api-keys", headers=OPS).get_json()["keys"]}
    assert listed[name]["roles"] == ["one_stop"] and listed[name]["source"] == "database"
    assert key not in gw.client.get("/ops/api-keys", headers=OPS).get_data(as_text=True)
    assert listed["dev-ops"]["source"] == "settings"


def test_a_revoked_key_is_refused(gw):
    name = new_name()
    key = add_key(gw, name=name, roles=["portal"]).get_json()["key"]
    assert gw.client.get("/api/v1/lookup?code=X", headers=bearer(key)).status_code in (400, 404)
    assert gw.client.delete(f"/ops/api-keys/{name}", headers=OPS).status_code == 200
    r = gw.client.get("/api/v1/lookup?code=X", headers=bearer(key))
    assert (r.status_code, r.get_json()["error"]["message"]) == (401, "unknown or revoked API key")
    assert gw.client.delete(f"/ops/api-keys/{name}", headers=OPS).status_code == 404
    assert add_key(gw, name=name, roles=["portal"]).status_code == 409  # a revoked name stays taken


def test_keys_from_the_cli_reach_a_running_api_without_a_restart(gw):
    name = new_name()
    added = gw.gateway_cli("keys", "add", name, "--role", "ops")
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert gw.client.get("/ops/api-keys", headers=bearer(key)).status_code == 200
    assert gw.gateway_cli("keys", "revoke", name).returncode == 0
    # Another process revoked it: this API process stops accepting it within auth.key_cache_seconds.
    wait_for(lambda: gw.client.get("/ops/api-keys", headers=bearer(key)).status_code == 401, timeout=15)
    assert gw.gateway_cli("keys", "revoke", name).returncode == 1


@pytest.mark.parametrize(("body", "status"), [
    ({"name": "x", "roles": ["superuser"]}, 422),
    ({"name": "x", "roles": []}, 422),
    ({"name": "Has Spaces", "roles": ["ops"]}, 422),
    ({"name": "x", "roles": ["ops"], "rate_per_minute": 0}, 422),
    ({"name": "x", "roles": ["ops"], "admin": True}, 422),
    ({"name": "dev-ops", "roles": ["ops"]}, 409),
])
def test_bad_key_requests_are_refused(gw, body, status):
    r = add_key(gw, **body)
    assert r.status_code == status, r.get_json()


def test_only_ops_manages_keys(gw):
    r = gw.client.post("/ops/api-keys", json={"name": new_name(), "roles": ["ops"]},
                       headers=bearer("dev-one-stop-key"))
    assert r.status_code == 403


def test_a_key_over_its_rate_gets_429_with_retry_after(gw):
    key = add_key(gw, name=new_name(), roles=["one_stop"], rate_per_minute=3).get_json()["key"]
    codes = [gw.client.get("/api/v1/one-stop/feed?limit=1", headers=bearer(key)).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    r = gw.client.get("/api/v1/one-stop/feed?limit=1", headers=bearer(key))
    assert (r.status_code, r.get_json()["error"]["code"]) == (429, "rate_limited")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # Other keys are not held back by it.
    assert gw.client.get("/api/v1/one-stop/feed?limit=1", headers=bearer("dev-one-stop-key")).status_code == 200


def test_local_buckets_count_each_key_apart():
    buckets = LocalBuckets()
    assert [buckets.wait_needed("a", 2) for _ in range(2)] == [0.0, 0.0]
    assert 0 < buckets.wait_needed("a", 2) <= 60  # a moving minute: the first of the two leaves it
    assert buckets.wait_needed("b", 2) == 0.0


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
def test_a_redis_window_is_shared_by_every_process():
    name = new_name()
    first, second = RedisWindow("redis://127.0.0.1:6379/0"), RedisWindow("redis://127.0.0.1:6379/0")
    assert first.wait_needed(name, 2) == 0.0 and second.wait_needed(name, 2) == 0.0
    assert 0 < first.wait_needed(name, 2) <= 60  # the third request, whichever process sees it


def test_with_redis_down_requests_are_served():
    assert RedisWindow("redis://127.0.0.1:1/0").wait_needed(new_name(), 1) == 0.0


@pytest.mark.parametrize(("path", "body", "headers"), [
    ("/api/v1/callbacks/national-portal/dossiers", {}, bearer("dev-national-portal-key")),
    ("/api/v1/callbacks/payments/national_platform", {"MaLoi": "00"}, {}),
    ("/api/v1/callbacks/postal/vnpost", {"orderNumber": "x"}, {}),
], ids=["national-portal", "payment", "postal"])
def test_callbacks_from_outside_the_partners_networks_are_refused(gw, path, body, headers):
    outside = gw.client.post(path, json=body, headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert (outside.status_code, outside.get_json()["error"]["code"]) == (403, "source_not_allowed")
    inside = gw.client.post(path, json=body, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert inside.status_code != 403  # refused for its content, if at all, not for where it came from
