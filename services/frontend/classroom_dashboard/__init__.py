"""The classroom dashboard: a Flask app that shows teachers what the inference workers wrote to Redis."""

from __future__ import annotations

import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from classroom_dashboard import config


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app; settings come from the environment (see config.py) unless `test_config` is given."""
    app = Flask(__name__)
    if test_config is None:
        app.config.from_mapping(config.from_env())
    else:
        app.config.from_mapping(config.from_env({"DASHBOARD_ENV": "development", **_redis_env()}))
        app.config.from_mapping(test_config)

    from classroom_dashboard import (
        admin,
        api,
        auth,
        classes,
        db,
        enrolment,
        manage,
        security,
        templating,
    )
    from classroom_dashboard.health import init_app as init_health
    from classroom_dashboard.security_log import ensure_handler as ensure_security_log

    hops = app.config.get("TRUSTED_PROXY_HOPS", 0)
    if hops:  # 0: X-Forwarded-* is whatever the client wrote, so it is ignored
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    ensure_security_log()
    db.init_app(app)
    security.init_app(app)
    templating.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(classes.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(manage.bp)
    app.register_blueprint(enrolment.bp)
    app.register_blueprint(admin.bp)
    init_health(app)
    return app


def _redis_env() -> dict:
    return {"REDIS_URL": os.environ["REDIS_URL"]} if os.environ.get("REDIS_URL") else {}
