"""The OpenAPI 3.1 document, built from the routes themselves and the pydantic models that validate them.

A view declares what it takes with @documented(body=Model, query={...}); roles come from @require; its
docstring's first line is the summary and the rest the description (docs/api.md is rendered from this).
Nothing is written twice: a new route shows up by itself, with its security and its body schema.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

bp = Blueprint("openapi", __name__)

_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}}}}}


def documented(*, body: type[BaseModel] | dict[str, Any] | None = None,
               query: dict[str, dict[str, Any]] | None = None, created: bool = False,
               media: dict[str, Any] | None = None) -> Callable:
    """Attach what the OpenAPI document should say about a view (read by build()); `media` is a request
    body that is not JSON (a PDF), as OpenAPI content by media type."""

    def mark(view: Callable) -> Callable:
        view.openapi = {"body": body, "query": query or {}, "created": created,  # type: ignore[attr-defined]
                        "media": media}
        return view

    return mark


def _models(app: Flask) -> list[type[BaseModel]]:
    bodies = [getattr(view, "openapi", {}).get("body") for view in app.view_functions.values()]
    found = {m for m in bodies if isinstance(m, type) and issubclass(m, BaseModel)}
    return sorted(found, key=lambda m: m.__name__)


def _summary_and_description(view: Callable, endpoint: str) -> tuple[str, str]:
    """A view's docstring: its first line is the summary, the rest (unwrapped paragraphs) the description."""
    summary, _, rest = inspect.cleandoc(view.__doc__ or endpoint).partition("\n")
    paragraphs = [" ".join(p.split()) for p in rest.strip().split("\n\n") if p.strip()]
    return summary.strip(), "\n\n".join(paragraphs)


def build(app: Flask) -> dict[str, Any]:
    models = _models(app)
    refs, defs = models_json_schema([(m, "validation") for m in models],
                                    ref_template="#/components/schemas/{model}")
    schemas = {**defs.get("$defs", {}), "Error": _ERROR}
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or rule.endpoint.startswith("console."):  # HTML pages for people, not an API
            continue
        view = app.view_functions[rule.endpoint]
        summary, description = _summary_and_description(view, rule.endpoint)
        doc = getattr(view, "openapi", {})
        roles = getattr(view, "required_roles", ())
        path = _PARAM.sub(lambda m: "{" + m.group(2) + "}", rule.rule)
        params = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": "integer" if conv == "int" else "string"}}
                  for conv, name in _PARAM.findall(rule.rule)]
        params += [{"name": name, "in": "query", "required": spec.get("required", False),
                    "schema": {k: v for k, v in spec.items() if k != "required"}}
                   for name, spec in doc.get("query", {}).items()]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            op: dict[str, Any] = {
                "operationId": rule.endpoint.replace(".", "_"),
                "summary": summary,
                "responses": {"200" if not doc.get("created") else "201": {"description": "OK"},
                              "4XX": {"description": "refused", "content": {
                                  "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            }
            if doc.get("created"):
                op["responses"]["200"] = {"description": "the same request again: the stored result"}
            if params:
                op["parameters"] = params
            if roles:
                op["security"] = [{"apiKey": []}]
            said = ([f"Roles: {', '.join(roles)}."] if roles else []) + ([description] if description else [])
            if said:
                op["description"] = "\n\n".join(said)
            body = doc.get("body")
            if body is not None and method != "GET":
                schema = refs[(body, "validation")] if isinstance(body, type) else body
                op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
            if doc.get("media"):
                op["requestBody"] = {"required": True, "content": doc["media"]}
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Vietnam public-services integration gateway", "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}}},
    }


@bp.get("/openapi.json")
def openapi_json() -> ResponseReturnValue:
    """This document.

    OpenAPI 3.1, built from the routes, their roles and the pydantic models that validate the bodies; the
    console's HTML pages are left out.
    """
    return jsonify(build(current_app))
