"""The Flask app every service is built on: docs, errors, auth, request ids, health."""

from __future__ import annotations

import io
import logging
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis
from flask import Blueprint, Flask, current_app, g, jsonify, request, send_from_directory
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from shared.api import REQUEST_ID_PATTERN, ContractApi
from shared.auth import TokenVerifier, init_auth
from shared.errors import StaleVersion, TooLarge, UnsupportedMediaType, VersionRequired
from shared.idempotency import fingerprint_keys, init_idempotency
from shared.logs import configure_logging, correlation_id_var
from shared.metrics import metrics_response, observe_request
from shared.problems import (
    ProblemSchema,
    handle_database_unreachable,
    problem,
    register_error_handlers,
)
from shared.service import ServiceContext
from shared.tokens import check_secret, revoked_key

access_log = logging.getLogger("kube.access")
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
_DOCS_ASSETS = "/docs/assets/"


def current_context() -> ServiceContext:
    """The service context of the app handling the current request."""
    return current_app.extensions["kube"]


class KubeApi(ContractApi):
    """flask-smorest's Api with errors rendered, and documented (`shared.api`), as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self):
        register_error_handlers(self._app)


def _swagger_ui_assets() -> Path | None:
    """Swagger UI's files from the installed `swagger_ui_bundle`, so /docs works offline."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return Path(swagger_ui_bundle.swagger_ui_path)


def create_service_app(
    context: ServiceContext,
    *,
    title: str,
    description: str,
    blueprints: list,
    upload_endpoints: frozenset[str] = frozenset(),
    streamed_upload_limits: dict[str, int] | None = None,
    public_endpoints: frozenset[str] = frozenset(),
    security_schemes: dict | None = None,
) -> Flask:
    """Build a service's Flask app around its context, with what every service shares.
    `public_endpoints` take no bearer token: each authenticates its caller itself (a
    provider's callback carries a shared secret). `streamed_upload_limits` names upload
    endpoints that stream their file rather than read it whole, each with its own limit."""
    settings = context.settings
    configure_logging(settings.service, settings.log_level)
    if not (settings.jwt_secret or settings.jwt_public_key):
        # Otherwise the service would start and turn every caller away with a 401.
        raise RuntimeError("Set KUBE_JWT_SECRET (HS256) or KUBE_JWT_PUBLIC_KEY (RS256).")
    if settings.jwt_secret:
        check_secret(settings.jwt_secret)
    if settings.jwt_public_key and not (settings.jwt_audience and settings.jwt_issuer):
        # An identity provider signs tokens for many applications: only ours may pass.
        raise RuntimeError("With KUBE_JWT_PUBLIC_KEY, set KUBE_JWT_AUDIENCE and KUBE_JWT_ISSUER.")
    app = Flask(f"kube-{settings.service}")
    assets = _swagger_ui_assets()
    app.config.update(
        API_TITLE=title,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=_DOCS_ASSETS if assets else None,
        API_SPEC_OPTIONS={
            "info": {"description": description},
            "security": [{"bearerAuth": []}],
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    **(security_schemes or {}),
                }
            },
        },
        # The largest body any route takes; each request gets its own limit below.
        MAX_CONTENT_LENGTH=max(
            settings.max_body_bytes,
            settings.max_upload_bytes,
            *(streamed_upload_limits or {}).values(),
        ),
        KUBE_SETTINGS=settings,
        KUBE_STREAMED_UPLOAD_LIMITS=dict(streamed_upload_limits or {}),
    )
    app.extensions["kube"] = context

    api = KubeApi(app)
    app.register_blueprint(_health_blueprint(assets))
    for blueprint in blueprints:
        api.register_blueprint(blueprint)

    verifier = TokenVerifier(
        secret=settings.jwt_secret,
        public_key=settings.jwt_public_key,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        allow_hs256_with_public_key=settings.jwt_allow_hs256_with_public_key,
        max_ttl_seconds=settings.jwt_max_ttl_seconds,
    )
    public = {e for e in app.view_functions if e.split(".")[0] in ("health", "api-docs", "static")}
    public |= public_endpoints
    _init_request_context(app, context, upload_endpoints | set(streamed_upload_limits or {}))
    _init_unit_of_work(app, context)
    init_auth(app, verifier, public, _revocation_check(context))
    _init_media_types(app, upload_endpoints | set(streamed_upload_limits or {}))
    init_idempotency(
        app,
        context.db,
        context.tables.idempotency_keys,
        fingerprint_keys(settings.event_signing_keys),
    )

    @app.teardown_appcontext
    def remove_session(_exc):
        context.db.session.remove()

    return app


def _init_request_context(app: Flask, context: ServiceContext, upload_endpoints: frozenset[str]):
    settings = context.settings

    @app.before_request
    def start_request():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.request_token = correlation_id_var.set(g.request_id)
        g.started = time.perf_counter()
        if request.routing_exception is not None:
            return
        upload = request.endpoint in upload_endpoints
        streamed = current_app.config["KUBE_STREAMED_UPLOAD_LIMITS"].get(request.endpoint)
        limit = streamed or (settings.max_upload_bytes if upload else settings.max_body_bytes)
        # Also bounds a chunked body, whose length is only known while it is read.
        request.max_content_length = limit
        if request.content_length is not None and request.content_length > limit:
            raise TooLarge(f"The request body is larger than {limit} bytes.")
        # A streamed upload is not buffered: werkzeug's form parser spools it to disk and
        # answers 413 (RequestEntityTooLarge) as soon as a chunked body passes the limit.
        if (
            request.content_length is None
            and request.environ.get("wsgi.input_terminated")
            and not streamed
        ):
            _buffer_streamed_body(limit)

    @app.after_request
    def finish_request(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        response.headers["X-Content-Type-Options"] = "nosniff"
        if request.path.startswith("/api/"):
            # Answers are per caller and may hold personal data: no cache keeps them.
            response.headers.setdefault("Cache-Control", "no-store")
        principal = g.get("principal")
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        rule = request.url_rule
        observe_request(
            settings.service,
            request.method,
            rule.rule if rule is not None else None,
            response.status_code,
            seconds,
        )
        access_log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 1),
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


def _revocation_check(context: ServiceContext) -> Callable[[str], bool]:
    """Whether a token id is revoked (`kube revoke-token`). A token found not revoked is
    trusted for KUBE_REVOCATION_CHECK_SECONDS before Redis is asked again (a client sends the
    same token with every request, and the round trip cost more than a group read), so a
    revocation takes effect within that time. Redis down: the token is taken (revocation is
    an emergency brake, not the lock; tokens also expire within KUBE_JWT_MAX_TTL_SECONDS),
    and the failure is logged."""
    settings = context.settings
    trusted_until: dict[str, float] = {}

    def is_revoked(jti: str) -> bool:
        now = time.monotonic()
        if trusted_until.get(jti, 0.0) > now:
            return False
        try:
            revoked = bool(context.redis.exists(revoked_key(settings.queue_prefix, jti)))
        except redis.RedisError as exc:
            logging.getLogger(__name__).warning(
                "token revocation not checked", extra={"error": type(exc).__name__}
            )
            return False
        if not revoked and settings.revocation_check_seconds > 0:
            if len(trusted_until) >= _TRUSTED_TOKENS_KEPT:
                trusted_until.clear()
            trusted_until[jti] = now + settings.revocation_check_seconds
        return revoked

    return is_revoked


# Token ids a process remembers as not revoked; when full it forgets them all.
_TRUSTED_TOKENS_KEPT = 10_000


def _init_media_types(app: Flask, upload_endpoints: frozenset[str]) -> None:
    """A body in a format the route does not read is a 415 (after authentication)."""

    @app.before_request
    def check_media_type():
        if request.routing_exception is not None or request.method not in ("POST", "PUT", "PATCH"):
            return
        if not _has_body():
            return
        upload = request.endpoint in upload_endpoints
        expected = "multipart/form-data" if upload else "application/json"
        if not _is_media_type(expected):
            raise UnsupportedMediaType(
                f"This route reads {expected}; the body was sent as "
                f"{request.mimetype or 'no Content-Type'}."
            )


def commit_with_response(*, then: Callable[[], None] | None = None) -> None:
    """Ask for the request's changes to be committed once its answer is ready, in one
    transaction with its Idempotency-Key record (so a change is never kept without the answer
    a retry must get); `then` runs after that commit (e.g. queueing work that reads it)."""
    current_context().db.session.flush()
    g.kube_commit = True
    if then is not None:
        g.setdefault("kube_after_commit", []).append(then)


def _init_unit_of_work(app: Flask, context: ServiceContext) -> None:
    # Registered before the Idempotency-Key hook, so it runs after it (Flask runs
    # after_request hooks in reverse order) and commits the key's answer too.
    @app.after_request
    def commit_request(response):
        if not g.pop("kube_commit", False):
            return response
        session = context.db.session
        if response.status_code >= 400:
            _rollback_quietly(session)
            return response
        try:
            session.commit()
        except DBAPIError as exc:
            _rollback_quietly(session)
            return handle_database_unreachable(exc)
        except SQLAlchemyError as exc:
            # e.g. a session whose connection died earlier in the request: as unreachable.
            _rollback_quietly(session)
            return handle_database_unreachable(exc)
        for callback in g.pop("kube_after_commit", []):
            callback()
        return response


def _rollback_quietly(session) -> None:
    """Roll back; on a connection that is already gone there is nothing left to undo."""
    try:
        session.rollback()
    except SQLAlchemyError as exc:
        logging.getLogger(__name__).warning(
            "rollback on a lost connection", extra={"error": type(exc).__name__}
        )


def _buffer_streamed_body(limit: int) -> None:
    """Read a body of unknown length (chunked) up to `limit`: werkzeug would cut a longer one
    off silently at the limit, and the truncated JSON would answer 400 instead of 413."""
    stream = request.environ["wsgi.input"]
    body = stream.read(limit + 1)
    if len(body) > limit:
        # Read (and drop) up to as much again, so a client still sending can finish and read
        # the 413 instead of a connection reset; the work stays bounded by the limit.
        stream.read(limit)
        raise TooLarge(f"The request body is larger than {limit} bytes.")
    request.environ["wsgi.input"] = io.BytesIO(body)


def _has_body() -> bool:
    if request.content_length:
        return True
    return request.content_length is None and bool(request.headers.get("Transfer-Encoding"))


def _is_media_type(expected: str) -> bool:
    mimetype = request.mimetype
    if expected == "application/json":
        return request.is_json
    return mimetype == expected


def _health_blueprint(assets: Path | None) -> Blueprint:
    blueprint = Blueprint("health", __name__)

    @blueprint.get("/healthz")
    def healthz():
        """The process is up."""
        return jsonify(status="ok", service=current_context().settings.service)

    @blueprint.get("/readyz")
    def readyz():
        """The service's database and Redis both answer."""
        context = current_context()
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
        response = problem(
            503, "Service Unavailable", f"Not ready: {failed} unreachable.", checks=checks
        )
        response.headers["Retry-After"] = "5"
        return response

    @blueprint.get("/metrics")
    def metrics():
        """Prometheus metrics of this instance (KUBE_METRICS_TOKEN, when set, as a Bearer token)."""
        return metrics_response(current_context())

    if assets is not None:

        @blueprint.get(f"{_DOCS_ASSETS}<path:filename>")
        def docs_assets(filename: str):
            """Swagger UI's scripts and styles, served from the installed package."""
            return send_from_directory(assets, filename, max_age=86400)

    return blueprint


def etag(version: int) -> str:
    """The ETag of a resource at `version`."""
    return f'"{version}"'


def require_if_match(version: int) -> None:
    """Refuse a change unless If-Match names the current version (no lost updates)."""
    header = request.headers.get("If-Match")
    if not header:
        raise VersionRequired(
            "Send If-Match with the ETag of your last read, so no one else's change is lost."
        )
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    if "*" not in tags and etag(version) not in tags:
        raise StaleVersion(
            "The resource changed since you read it; read it again and retry.",
            current_etag=etag(version),
        )
