"""The Flask app every service is built on: docs, errors, auth, request ids, health."""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass
from types import ModuleType

import redis
from celery import Celery
from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask_smorest import Api

from shared.auth import TokenVerifier, init_auth
from shared.config import Settings
from shared.db import Database
from shared.errors import (
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    problem,
    register_error_handlers,
)
from shared.events.consumer import Consumer
from shared.events.outbox import Outbox, redis_prompt, wake_key
from shared.idempotency import init_idempotency
from shared.logs import configure_logging, correlation_id_var
from shared.tasks import celery_init_app

access_log = logging.getLogger("kube.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass
class ServiceContext:
    """What a service's handlers and tasks need: settings, database, events, queues."""

    settings: Settings
    db: Database
    outbox: Outbox
    consumer: Consumer
    celery: Celery
    redis: redis.Redis
    models: ModuleType


def kube() -> ServiceContext:
    """The current app's service context."""
    return current_app.extensions["kube"]


class KubeApi(Api):
    """flask-smorest's Api with errors rendered by our one problem+json handler."""

    def _register_error_handlers(self):
        register_error_handlers(self._app)


def create_service_app(
    settings: Settings,
    *,
    title: str,
    description: str,
    models: ModuleType,
    handlers: dict,
    blueprints: list,
    upload_endpoints: frozenset[str] = frozenset(),
) -> Flask:
    """Build a service's Flask app with everything the platform's services share."""
    configure_logging(settings.service, settings.log_level)
    if not (settings.jwt_secret or settings.jwt_public_key):
        # Otherwise the service would start and turn every caller away with a 401.
        raise RuntimeError("Set KUBE_JWT_SECRET (HS256) or KUBE_JWT_PUBLIC_KEY (RS256).")
    if settings.jwt_secret and len(settings.jwt_secret.encode()) < 32:
        logging.getLogger(__name__).warning("KUBE_JWT_SECRET is shorter than 32 bytes")
    app = Flask(f"services.{settings.service}")
    app.config.update(
        API_TITLE=title,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        API_SPEC_OPTIONS={
            "info": {"description": description},
            "security": [{"bearerAuth": []}],
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                }
            },
        },
        # The largest body any route takes; JSON routes are held to the smaller limit below.
        MAX_CONTENT_LENGTH=max(settings.max_body_bytes, settings.max_upload_bytes),
        KUBE_SETTINGS=settings,
    )

    db = Database(settings.database_url)
    redis_client = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=0.5, socket_timeout=1.0
    )
    outbox = Outbox(
        settings.service,
        models.OutboxEvent,
        db,
        prompt=redis_prompt(redis_client, wake_key(settings.queue_prefix, settings.service)),
    )
    consumer = Consumer(settings.service, db, models.ProcessedEvent, models.DeadLetter, handlers)
    celery_app = celery_init_app(app, settings)
    app.extensions["kube"] = ServiceContext(
        settings, db, outbox, consumer, celery_app, redis_client, models
    )

    api = KubeApi(app)
    app.register_blueprint(_health_blueprint())
    for blueprint in blueprints:
        api.register_blueprint(blueprint)

    verifier = TokenVerifier(
        secret=settings.jwt_secret,
        public_key=settings.jwt_public_key,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )
    public = {e for e in app.view_functions if e.split(".")[0] in ("health", "api-docs", "static")}
    _init_request_context(app, settings, upload_endpoints)
    init_auth(app, verifier, public)
    init_idempotency(app, db, models.IdempotencyKey)

    @app.teardown_appcontext
    def remove_session(_exc):
        db.session.remove()

    return app


def _init_request_context(app: Flask, settings: Settings, upload_endpoints: frozenset[str]):
    @app.before_request
    def start_request():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.request_token = correlation_id_var.set(g.request_id)
        g.started = time.perf_counter()
        if (
            request.content_length is not None
            and request.content_length > settings.max_body_bytes
            and request.endpoint not in upload_endpoints
        ):
            raise PayloadTooLarge(
                f"The request body is larger than {settings.max_body_bytes} bytes."
            )

    @app.after_request
    def finish_request(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        principal = g.get("principal")
        access_log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(
                    (time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1
                ),
                "user": principal.sub if principal else None,
                "request_id": g.get("request_id"),
            },
        )
        return response

    @app.teardown_request
    def reset_correlation(_exc):
        token = g.pop("request_token", None)
        if token is not None:
            correlation_id_var.reset(token)


def _health_blueprint() -> Blueprint:
    blueprint = Blueprint("health", __name__)

    @blueprint.get("/healthz")
    def healthz():
        """The process is up."""
        return jsonify(status="ok", service=kube().settings.service)

    @blueprint.get("/readyz")
    def readyz():
        """The service's database and Redis both answer."""
        context = kube()
        checks = {}
        try:
            context.db.ping()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            context.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        if all(v == "ok" for v in checks.values()):
            return jsonify(status="ready", checks=checks)
        failed = ", ".join(k for k, v in checks.items() if v != "ok")
        return problem(
            503, "Service Unavailable", f"Not ready: {failed} unreachable.", checks=checks
        )

    return blueprint


def etag(version: int) -> str:
    """The ETag of a resource at `version`."""
    return f'"{version}"'


def require_if_match(version: int) -> None:
    """Refuse a change unless If-Match names the current version (no lost updates)."""
    header = request.headers.get("If-Match")
    if not header:
        raise PreconditionRequired(
            "Send If-Match with the ETag of your last read, so no one else's change is lost."
        )
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    if "*" not in tags and etag(version) not in tags:
        raise PreconditionFailed(
            "The resource changed since you read it; read it again and retry.",
            current_etag=etag(version),
        )
