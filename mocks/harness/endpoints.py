"""The `_mock/*` endpoints every mock has (requests, faults, reset, config) and the shapes of its own extras."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from flask import Blueprint, Response, jsonify, request

from mocks.harness.config import ConfigError
from mocks.harness.faults import FaultInjector, arm_from_json
from mocks.harness.incoming import json_object
from mocks.harness.log import RequestLog


def add_mock_endpoints(
    blueprint: Blueprint, log: RequestLog, faults: FaultInjector, reset_callback: Callable[[], None]
) -> None:
    """Add `_mock/requests`, `_mock/faults` and `_mock/reset` to a mock's blueprint."""

    @blueprint.get("/_mock/requests")
    def mock_requests() -> Response | tuple[Response, int]:
        try:
            since = int(request.args.get("since", "0"))
        except ValueError:
            return jsonify({"error": "since must be an integer"}), 400
        return jsonify({"total": log.total(), "requests": log.records(since)})

    @blueprint.get("/_mock/faults")
    def mock_faults_list() -> Response:
        return jsonify({"faults": faults.armed()})

    @blueprint.post("/_mock/faults")
    def mock_faults_arm() -> Response | tuple[Response, int]:
        try:
            fault = arm_from_json(faults, request.get_json(force=True, silent=True))
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify({"armed": fault.to_json(), "faults": faults.armed()})

    @blueprint.delete("/_mock/faults")
    def mock_faults_clear() -> Response:
        faults.clear()
        return jsonify({"faults": []})

    @blueprint.post("/_mock/reset")
    def mock_reset() -> Response:
        log.clear()
        faults.clear()
        reset_callback()
        return jsonify({"status": "reset"})


@dataclass(frozen=True)
class MockParts:
    """One member of a mock that speaks for several providers (SMS): its log, faults and reset."""

    log: RequestLog
    faults: FaultInjector
    reset: Callable[[], None]


def add_combined_mock_endpoints(blueprint: Blueprint, members: dict[str, MockParts]) -> None:
    """`_mock/requests`, `_mock/faults` and `_mock/reset` at the top of a multi-provider mock.

    Requests of every member, oldest first, each marked with its `provider`; a fault names a
    `provider` or is armed on each member; reset resets them all. `?provider=` narrows reads and clears.
    """

    def chosen() -> dict[str, MockParts] | tuple[Response, int]:
        name = request.args.get("provider")
        if name is None:
            return members
        if name not in members:
            return jsonify({"error": f"provider must be one of {', '.join(members)}"}), 400
        return {name: members[name]}

    @blueprint.get("/_mock/requests")
    def combined_requests() -> Response | tuple[Response, int]:
        picked = chosen()
        if isinstance(picked, tuple):
            return picked
        try:
            since = int(request.args.get("since", "0"))
        except ValueError:
            return jsonify({"error": "since must be an integer"}), 400
        merged = sorted(
            ({"provider": name} | record for name, part in picked.items() for record in part.log.records()),
            key=lambda r: (r["at"], r["provider"], r["index"]),
        )
        return jsonify({"total": len(merged), "requests": merged[max(since, 0) :]})

    @blueprint.get("/_mock/faults")
    def combined_faults() -> Response | tuple[Response, int]:
        picked = chosen()
        if isinstance(picked, tuple):
            return picked
        return jsonify({"faults": [{"provider": n} | f for n, part in picked.items() for f in part.faults.armed()]})

    @blueprint.post("/_mock/faults")
    def combined_faults_arm() -> Response | tuple[Response, int]:
        body = request.get_json(force=True, silent=True)
        if isinstance(body, dict) and "provider" in body:
            name = body["provider"]
            if name not in members:
                return jsonify({"error": f"provider must be one of {', '.join(members)}"}), 400
            targets, body = {name: members[name]}, {k: v for k, v in body.items() if k != "provider"}
        else:
            targets = members
        try:
            # Checked once before arming any, so a bad body arms none.
            arm_from_json(FaultInjector(), body)
            armed = {name: arm_from_json(part.faults, body).to_json() for name, part in targets.items()}
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify({"armed": [{"provider": n} | f for n, f in armed.items()]})

    @blueprint.delete("/_mock/faults")
    def combined_faults_clear() -> Response | tuple[Response, int]:
        picked = chosen()
        if isinstance(picked, tuple):
            return picked
        for part in picked.values():
            part.faults.clear()
        return jsonify({"faults": []})

    @blueprint.post("/_mock/reset")
    def combined_reset() -> Response:
        for part in members.values():
            part.log.clear()
            part.faults.clear()
            part.reset()
        return jsonify({"status": "reset", "providers": list(members)})


def add_config_endpoints(bp: Blueprint, state: Any) -> None:
    """GET and POST `_mock/config` for a mock whose state has `lock` and a MockConfig `config`."""

    @bp.get("/_mock/config")
    def mock_config() -> Response:
        with state.lock:
            return jsonify(asdict(state.config))

    @bp.post("/_mock/config")
    def mock_config_update() -> Response | tuple[Response, int]:
        try:
            with state.lock:
                state.config.update(request.get_json(force=True, silent=True))
                return jsonify(asdict(state.config))
        except ConfigError as exc:
            return jsonify({"error": str(exc)}), 400


def add_standard_endpoints(bp: Blueprint, state: Any) -> None:
    """`_mock/requests`, `_mock/faults`, `_mock/reset` and `_mock/config` for a MockState."""
    add_mock_endpoints(bp, state.log, state.faults, state.reset)
    add_config_endpoints(bp, state)


def add_state_endpoints(bp: Blueprint, name: str, snapshot: Callable[..., Any], missing: str, *keys: str) -> None:
    """GET `_mock/state` (`{name: every record}`) and GET `_mock/state/<key>[/<key>...]` (one record).

    `snapshot()` gives every record and `snapshot(*keys)` one, or None: then 404 with the message `missing`.
    """

    @bp.get("/_mock/state")
    def mock_state() -> Response:
        return jsonify({name: snapshot()})

    @bp.get("/_mock/state/" + "/".join(f"<{key}>" for key in keys))
    def mock_state_one(**given: str) -> Response | tuple[Response, int]:
        found = snapshot(*(given[key] for key in keys))
        return not_found(missing) if found is None else jsonify(found)


def add_action_endpoint(bp: Blueprint, rule: str, act: Callable[..., Any], missing: str) -> None:
    """POST `rule` (e.g. `/_mock/advance/<order_number>`): a test control that acts on one record.

    `act(body, **keys)` gets the JSON body ({} without one) and the rule's keys; it answers a payload (or a
    payload and a status), None when there is no such record (404 with the message `missing`), or raises
    ValueError for a bad body (400 with its message).
    """

    @bp.post(rule, endpoint=rule)
    def mock_action(**keys: str) -> Response | tuple[Response, int]:
        try:
            answer = act(json_object() or {}, **keys)
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        if answer is None:
            return not_found(missing)
        return (jsonify(answer[0]), answer[1]) if isinstance(answer, tuple) else jsonify(answer)


def not_found(missing: str) -> tuple[Response, int]:
    """The 404 of a `_mock/*` call naming a record the mock does not have."""
    return jsonify({"error": "not_found", "message": missing}), 404


def add_expire_endpoint(bp: Blueprint, rule: str, expire: Callable[[], None]) -> None:
    """POST `rule` (e.g. `/_mock/expire-tokens`) drops every credential the mock issued."""

    @bp.post(rule)
    def mock_expire() -> Response:
        expire()
        return jsonify({"status": "expired"})
