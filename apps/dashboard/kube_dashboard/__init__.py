"""The province dashboard: a Flask app on the platform's APIs, called through kube-client.

It owns no database. The signed-in user's bearer token is kept in the session cookie and
sent with every API call, so each figure is limited exactly as the APIs limit that token."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask, g, request
from flask_wtf.csrf import CSRFProtect

from kube_dashboard.settings import Settings

csrf = CSRFProtect()
log = logging.getLogger("kube_dashboard")

# Everything the pages load comes from the app itself: no CDN, no other host.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the dashboard; settings from the environment unless given."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="kube_dashboard",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        # A CSRF token lives as long as the session; a form left open all day still works.
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.extensions["kube_dashboard"] = settings
    csrf.init_app(app)

    from kube_dashboard import errors, signin, views

    app.register_blueprint(signin.blueprint)
    app.register_blueprint(views.blueprint)
    errors.register(app)
    app.context_processor(views.template_helpers)

    @app.after_request
    def secure_headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not request.path.startswith("/static/"):
            # Pages hold one user's figures: never kept by a shared cache or the back button.
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.teardown_request
    def close_client(_exc):
        client = g.pop("kube_client", None)
        if client is not None:
            client.close()

    return app
