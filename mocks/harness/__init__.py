"""The one harness every mock stands on: request log, faults, reset, settings and the `_mock/*` endpoints.

A mock module holds only its partner's protocol; everything here is the same for all of them:
- `log`: the request log; `faults`: arming faults and taking them; `replies`: what a fault does to a reply,
  a refusal without a valid token or session (`guarded`), a 401's challenge (`challenged`);
- `config`: settings over `_mock/config`; `state`: the base of a mock instance and a TTL credential store;
- `endpoints`: the `_mock/*` routes, and the shapes of a mock's own (state, expire, an action on one record);
- `incoming`/`outgoing`: reading a request (body, Bearer token, a secret compared in constant time), sending
  a callback;
- `vn_time`: now in Vietnam (UTC+07:00), which every Vietnamese partner writes in its own format.
"""

from mocks.harness.config import ConfigError, MockConfig
from mocks.harness.endpoints import (
    MockParts,
    add_action_endpoint,
    add_combined_mock_endpoints,
    add_config_endpoints,
    add_expire_endpoint,
    add_mock_endpoints,
    add_standard_endpoints,
    add_state_endpoints,
)
from mocks.harness.faults import (
    CALLBACK_MODES,
    DEFAULT_SECONDS,
    DRIFT_MODES,
    FAULT_MODES,
    PROTOCOL_MODES,
    Fault,
    FaultInjector,
    arm_from_json,
)
from mocks.harness.incoming import bearer_token, json_object, raw_body, raw_body_masked, same_secret
from mocks.harness.log import MASK, RequestLog, masked
from mocks.harness.outgoing import Delivery, deliver, send_copies
from mocks.harness.replies import (
    APPLYING_MODES,
    ConnectionDropped,
    Outcome,
    Payload,
    challenged,
    dropped_response,
    finish,
    guarded,
    json_reply,
    replaced_outcome,
)
from mocks.harness.state import CredentialStore, MockState
from mocks.harness.vn_time import VN_TZ, vn_now

__all__ = [
    "APPLYING_MODES", "CALLBACK_MODES", "DEFAULT_SECONDS", "DRIFT_MODES", "FAULT_MODES", "MASK", "PROTOCOL_MODES",
    "VN_TZ", "ConfigError", "ConnectionDropped", "CredentialStore", "Delivery", "Fault", "FaultInjector", "MockConfig",
    "MockParts", "MockState", "Outcome", "Payload", "RequestLog", "add_action_endpoint",
    "add_combined_mock_endpoints", "add_config_endpoints", "add_expire_endpoint", "add_mock_endpoints",
    "add_standard_endpoints", "add_state_endpoints", "arm_from_json", "bearer_token", "challenged", "deliver",
    "dropped_response", "finish", "guarded", "json_object", "json_reply", "masked", "raw_body", "raw_body_masked",
    "replaced_outcome", "same_secret", "send_copies", "vn_now",
]  # fmt: skip
