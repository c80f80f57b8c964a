"""Reading a JSON request body into a pydantic model, with a precise 4xx for each way it can be wrong."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel

from .errors import ApiError

M = TypeVar("M", bound=BaseModel)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def unstorable(value: Any) -> str | None:
    """What in decoded JSON no store can hold, or None: PostgreSQL text takes no NUL, and no UTF-8 encoder
    takes an unpaired surrogate (JSON lets both through as \\u escapes). Refused here, not at commit."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "a NUL character (\\u0000)"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "an unpaired surrogate (\\ud800-\\udfff)"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def json_object() -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = request.get_data(cache=True)  # the size limit (413) applies here
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "the body is not UTF-8") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                                            f"column {exc.colno}") from None
    except ValueError as exc:  # NaN / Infinity, or a number too long to convert
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    if (what := unstorable(data)) is not None:
        raise ApiError(400, "invalid_json", f"the body contains {what}")
    return data


def parse(model: type[M], data: dict[str, Any] | None = None) -> M:
    return model.model_validate(json_object() if data is None else data)
