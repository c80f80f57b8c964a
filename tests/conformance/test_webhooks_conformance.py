"""The webhook push against the Standard Webhooks reference library (`standardwebhooks`): sign with ours and
verify with theirs, and the reverse, over generated messages; and the published test vector."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from gateway.adapters.webhooks.client import WebhookClient
from gateway.adapters.webhooks.standard_webhooks import sign, verify
from gateway.config import WebhookSettings

VECTOR = json.loads((Path(__file__).parent / "webhooks" / "vector.json").read_text())

secrets = st.binary(min_size=16, max_size=64).map(lambda key: "whsec_" + base64.b64encode(key).decode())
msg_ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="."), min_size=1,
                  max_size=40)
# Bodies as the pusher writes them: JSON, UTF-8, Vietnamese included.
bodies = st.dictionaries(st.text(max_size=10), st.one_of(st.integers(), st.text(max_size=30)), max_size=5).map(
    lambda d: json.dumps(d, ensure_ascii=False).encode())


def test_the_published_vector_signs_alike() -> None:
    ours = sign(VECTOR["secret"], VECTOR["msg_id"], VECTOR["timestamp"], VECTOR["body"].encode())
    theirs = Webhook(VECTOR["secret"]).sign(VECTOR["msg_id"], datetime.fromtimestamp(VECTOR["timestamp"], UTC),
                                            VECTOR["body"])
    assert ours == theirs == VECTOR["signature"]
    assert verify(VECTOR["secret"], VECTOR["msg_id"], str(VECTOR["timestamp"]), VECTOR["body"].encode(),
                  VECTOR["signature"], now=VECTOR["timestamp"])


@settings(max_examples=200, deadline=None)
@given(secret=secrets, msg_id=msg_ids, body=bodies)
def test_what_we_sign_the_reference_verifies(secret: str, msg_id: str, body: bytes) -> None:
    stamp = int(time.time())
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(stamp),
               "webhook-signature": sign(secret, msg_id, stamp, body)}
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    tampered = body + b" "
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)


@settings(max_examples=200, deadline=None)
@given(secret=secrets, other=secrets, msg_id=msg_ids, body=bodies)
def test_what_the_reference_signs_we_verify(secret: str, other: str, msg_id: str, body: bytes) -> None:
    now = time.time()
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(int(now), UTC), body.decode())
    assert verify(secret, msg_id, str(int(now)), body, signature, now=now)
    assert not verify(secret, msg_id + "x", str(int(now)), body, signature, now=now)
    if other != secret:
        assert not verify(other, msg_id, str(int(now)), body, signature, now=now)
    # Both refuse the same stale message (the specification's tolerance, 5 minutes).
    assert not verify(secret, msg_id, str(int(now) - 301), body, signature, now=now)


@responses.activate
def test_the_push_clients_request_passes_the_reference_verifier() -> None:
    settings_ = WebhookSettings(url="http://127.0.0.1:9/webhooks")
    responses.post(settings_.url, status=204)
    payload = {"items": [{"cursor": 1, "type": "dossier.created", "code": "000.00.17.H31-240725-0001",
                          "data": {"applicant_name": "Nguyễn Thị Hồng Nhung"}}]}
    WebhookClient(settings_).deliver("feed-1-1", payload)
    [call] = responses.calls
    headers = dict(call.request.headers)
    assert Webhook(settings_.secret).verify(call.request.body, headers) == payload
