"""The one harness every mock stands on: request log, faults, reset, settings and the `_mock/*` endpoints.

A mock module holds only its partner's protocol; everything here is the same for all of them:
- `log`: the request log; `faults`: arming faults and taking them; `replies`: what a fault does to a reply;
- `config`: settings over `_mock/config`; `state`: the base of a mock instance and a TTL credential store;
- `endpoints`: the `_mock/*` routes; `incoming`/`outgoing`: reading a request, sending a callback.
"""

from mocks.harness.config import ConfigError, MockConfig
from mocks.harness.endpoints import (
    MockParts,
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
from mocks.harness.incoming import bearer_token, json_object, raw_body, raw_body_masked
from mocks.harness.log import MASK, RequestLog, masked
from mocks.harness.outgoing import Delivery, deliver, send_copies
from mocks.harness.replies import (
    APPLYING_MODES,
    ConnectionDropped,
    Outcome,
    Payload,
    dropped_response,
    finish,
    json_reply,
    replaced_outcome,
)
from mocks.harness.state import CredentialStore, MockState

__all__ = [
    "APPLYING_MODES", "CALLBACK_MODES", "DEFAULT_SECONDS", "FAULT_MODES", "MASK", "PROTOCOL_MODES", "ConfigError",
    "ConnectionDropped", "DRIFT_MODES",
    "CredentialStore", "Delivery", "Fault", "FaultInjector", "MockConfig", "MockParts", "MockState", "Outcome",
    "Payload", "RequestLog", "add_combined_mock_endpoints", "add_config_endpoints", "add_expire_endpoint",
    "add_mock_endpoints", "add_standard_endpoints", "add_state_endpoints", "arm_from_json", "bearer_token", "deliver",
    "dropped_response", "finish", "json_object", "json_reply", "masked", "raw_body", "raw_body_masked",
    "replaced_outcome", "send_copies",
]  # fmt: skip
