"""Flask app factory: blueprints, error handlers, body limit."""

from __future__ import annotations

import logging

from flask import Flask

from gateway.api import (
    callbacks,
    deliveries,
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
    signatures,
)
from gateway.bootstrap import Gateway, bootstrap


def create_app(gateway: Gateway | None = None) -> Flask:
    gateway = gateway or bootstrap()
    app = Flask("gateway")
    app.config["GATEWAY"] = gateway
    app.config["MAX_CONTENT_LENGTH"] = gateway.settings.api.max_body_bytes
    app.json.ensure_ascii = False  # Vietnamese stays readable in answers
    app.json.sort_keys = False
    errors.register(app)
    for blueprint in (intake.bp, one_stop.bp, payments.bp, deliveries.bp, notifications.bp, callbacks.bp, ops.bp,
                      signatures.bp, reports.bp, health.bp, metrics.bp, openapi.bp):
        app.register_blueprint(blueprint)
    logging.getLogger(__name__).info("gateway API ready (database %s)", gateway.engine.url.render_as_string())
    return app
