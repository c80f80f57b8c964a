"""Flask app factory: blueprints, error handlers, body limit."""

from __future__ import annotations

import logging

from flask import Flask, g, request

from gateway import request_context
from gateway.api import (
    archive,
    callbacks,
    console,
    deliveries,
    documents,
    errors,
    health,
    intake,
    metrics,
    notifications,
    one_stop,
    openapi,
    ops,
    payments,
    reports,
    request_metrics,
    signatures,
)
from gateway.bootstrap import Gateway, bootstrap

BLUEPRINTS = (intake.bp, one_stop.bp, payments.bp, deliveries.bp, notifications.bp, callbacks.bp, ops.bp, console.bp,
              signatures.bp, reports.bp, archive.bp, documents.bp, health.bp, metrics.bp, openapi.bp)


def create_app(gateway: Gateway | None = None) -> Flask:
    gateway = gateway or bootstrap()
    app = Flask("gateway")
    app.config["GATEWAY"] = gateway
    app.config["MAX_CONTENT_LENGTH"] = gateway.settings.api.max_body_bytes
    # The ops console's session cookie: signed, not readable by scripts, never sent cross-site.
    app.secret_key = gateway.settings.api.session_secret
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_SECURE=gateway.settings.environment == "production")
    app.json.ensure_ascii = False  # Vietnamese stays readable in answers
    app.json.sort_keys = False
    errors.register(app)
    request_metrics.register(app)

    @app.before_request
    def _request_id() -> None:
        token = request_context.request_id.set(request_context.from_header(request.headers.get("X-Request-Id")))
        g.request_id_token = token

    @app.after_request
    def _answer_request_id(response):  # noqa: ANN001, ANN202
        response.headers["X-Request-Id"] = request_context.current() or ""
        return response

    @app.teardown_request
    def _forget_request_id(_exc: BaseException | None) -> None:
        if (token := g.pop("request_id_token", None)) is not None:
            request_context.request_id.reset(token)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    logging.getLogger(__name__).info("gateway API ready (database %s)", gateway.engine.url.render_as_string())
    return app


def route_map() -> Flask:
    """The routes with no gateway behind them (no database, no broker): enough to describe the API, as
    `gateway api-reference` does, and never to serve it."""
    app = Flask("gateway")
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app
