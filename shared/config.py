"""Configuration read from environment variables; every variable is listed in the README."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_str(name: str, default: str) -> str:
    return _env(name, default)


def env_int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


def _float(name: str, default: float) -> float:
    return float(_env(name, str(default)))


def sqlalchemy_url(url: str) -> str:
    """Use the psycopg 3 driver for plain `postgresql://` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def database_url_for(service: str) -> str | None:
    """The service's own database: `<SERVICE>_DATABASE_URL`, else `DATABASE_URL`."""
    return _env(f"{service.upper()}_DATABASE_URL") or _env("DATABASE_URL")


@dataclass(frozen=True)
class Settings:
    service: str
    database_url: str
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_prefix: str = "kube"
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_allow_hs256_with_public_key: bool = False
    jwt_max_ttl_seconds: int = 12 * 3600
    # How long a process trusts that a token was not revoked before asking Redis again.
    revocation_check_seconds: float = 1.0
    # A token for reading other services' feeds where no HS256 secret is held (RS256 only).
    service_token: str | None = None
    max_body_bytes: int = 2 * 1024 * 1024
    max_upload_bytes: int = 20 * 1024 * 1024
    # An upload that streams to disk and the database, never whole into memory (imports).
    max_import_bytes: int = 200 * 1024 * 1024
    task_max_retries: int = 5
    retry_backoff_seconds: float = 2.0
    retry_backoff_max_seconds: float = 300.0
    group_min_members: int = 5
    group_max_members: int = 20
    relay_batch_size: int = 200
    relay_poll_seconds: float = 2.0
    event_retention_days: int = 30
    # Event signing: the first key signs, every key verifies (rotation).
    event_signing_keys: tuple[str, ...] = ()
    catch_up_grace_seconds: float = 30.0
    # Personal data at rest (shared/encryption.py): `id:base64` data keys, newest first (the first
    # encrypts, every one decrypts), and the lookup (HMAC) key, base64.
    data_keys: tuple[str, ...] = ()
    lookup_key: str | None = None
    # When set, `GET /metrics` answers only a caller sending it as a Bearer token.
    metrics_token: str | None = None
    log_level: str = "INFO"

    @property
    def queue(self) -> str:
        return queue_name(self.queue_prefix, self.service)


def service_url(service: str) -> str | None:
    """Where another service's API answers (`<SERVICE>_URL`), for reading its event feed."""
    return _env(f"{service.upper()}_URL")


def catch_up_every_seconds() -> float:
    """How often consumers read their producers' feeds (KUBE_CATCH_UP_EVERY_SECONDS)."""
    return _float("KUBE_CATCH_UP_EVERY_SECONDS", 10.0)


def queue_name(prefix: str, service: str) -> str:
    """The Celery queue a service's worker consumes."""
    return f"{prefix}.{service}"


def _public_key() -> str | None:
    path = _env("KUBE_JWT_PUBLIC_KEY_FILE")
    if path:
        return Path(path).read_text()
    return _env("KUBE_JWT_PUBLIC_KEY")


def _signing_keys() -> tuple[str, ...]:
    """KUBE_EVENT_SIGNING_KEYS (comma-separated, newest first), else one derived from
    KUBE_JWT_SECRET."""
    from shared.events.signing import derived_key

    listed = [k.strip() for k in (_env("KUBE_EVENT_SIGNING_KEYS") or "").split(",") if k.strip()]
    if listed:
        return tuple(listed)
    secret = _env("KUBE_JWT_SECRET")
    return (derived_key(secret),) if secret else ()


def _secret(name: str) -> str | None:
    """A secret from `<NAME>_FILE` (a mounted secret file) or else `<NAME>`."""
    path = _env(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip() or None
        except OSError as exc:
            raise RuntimeError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    return _env(name)


def _data_keys() -> tuple[str, ...]:
    """KUBE_DATA_KEYS (or the file KUBE_DATA_KEYS_FILE): comma- or line-separated entries."""
    text = _secret("KUBE_DATA_KEYS") or ""
    return tuple(k.strip() for k in re.split(r"[,\s]+", text) if k.strip())


def load_settings(service: str, **overrides) -> Settings:
    """Build a service's settings from the environment, then apply explicit overrides."""
    if not service.isidentifier():
        raise ValueError(f"not a service name: {service!r}")
    database_url = overrides.pop("database_url", None) or database_url_for(service)
    if not database_url:
        raise RuntimeError(
            f"{service.upper()}_DATABASE_URL is not set (or DATABASE_URL); "
            "`make run` and the `kube` command set it for the local platform"
        )
    values = dict(
        service=service,
        database_url=sqlalchemy_url(database_url),
        redis_url=_env("REDIS_URL", "redis://127.0.0.1:6379/0"),
        queue_prefix=_env("KUBE_QUEUE_PREFIX", "kube"),
        jwt_secret=_env("KUBE_JWT_SECRET"),
        jwt_public_key=_public_key(),
        jwt_audience=_env("KUBE_JWT_AUDIENCE"),
        jwt_issuer=_env("KUBE_JWT_ISSUER"),
        jwt_allow_hs256_with_public_key=_env("KUBE_JWT_ALLOW_HS256", "false").lower()
        in ("1", "true", "yes"),
        jwt_max_ttl_seconds=env_int("KUBE_JWT_MAX_TTL_SECONDS", 12 * 3600),
        revocation_check_seconds=_float("KUBE_REVOCATION_CHECK_SECONDS", 1.0),
        service_token=_env("KUBE_SERVICE_TOKEN"),
        max_body_bytes=env_int("KUBE_MAX_BODY_BYTES", 2 * 1024 * 1024),
        max_upload_bytes=env_int("KUBE_MAX_UPLOAD_BYTES", 20 * 1024 * 1024),
        max_import_bytes=env_int("KUBE_MAX_IMPORT_BYTES", 200 * 1024 * 1024),
        task_max_retries=env_int("KUBE_TASK_MAX_RETRIES", 5),
        retry_backoff_seconds=_float("KUBE_RETRY_BACKOFF_SECONDS", 2.0),
        retry_backoff_max_seconds=_float("KUBE_RETRY_BACKOFF_MAX_SECONDS", 300.0),
        group_min_members=env_int("KUBE_GROUP_MIN_MEMBERS", 5),
        group_max_members=env_int("KUBE_GROUP_MAX_MEMBERS", 20),
        relay_batch_size=env_int("KUBE_RELAY_BATCH_SIZE", 200),
        relay_poll_seconds=_float("KUBE_RELAY_POLL_SECONDS", 2.0),
        event_retention_days=env_int("KUBE_EVENT_RETENTION_DAYS", 30),
        event_signing_keys=_signing_keys(),
        catch_up_grace_seconds=_float("KUBE_CATCH_UP_GRACE_SECONDS", 30.0),
        data_keys=_data_keys(),
        lookup_key=_secret("KUBE_LOOKUP_KEY"),
        metrics_token=_secret("KUBE_METRICS_TOKEN"),
        log_level=_env("LOG_LEVEL", "INFO").upper(),
    )
    values.update(overrides)
    return Settings(**values)
