"""The dashboard's settings, all from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

# Known example values; a deployment using one signs its sessions with a public secret.
EXAMPLE_SECRETS = frozenset({"change-me", "secret", "dev", "changeme", "dashboard"})


class SettingsError(RuntimeError):
    """A setting is missing or unusable; the app refuses to start."""


@dataclass(frozen=True)
class Settings:
    registry_url: str
    grants_url: str
    notifications_url: str
    secret_key: str
    cookie_secure: bool = False
    api_timeout: float = 15.0
    session_hours: int = 8

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read the settings; refuse a missing, short or example session secret."""
        env = dict(os.environ if env is None else env)
        secret = env.get("DASHBOARD_SECRET_KEY", "")
        if not secret:
            raise SettingsError("DASHBOARD_SECRET_KEY is not set (e.g. `openssl rand -hex 32`).")
        if len(secret) < 32 or secret.lower() in EXAMPLE_SECRETS:
            raise SettingsError("DASHBOARD_SECRET_KEY must be 32 or more random characters.")
        return cls(
            registry_url=env.get("REGISTRY_URL") or "http://127.0.0.1:5001",
            grants_url=env.get("GRANTS_URL") or "http://127.0.0.1:5002",
            notifications_url=env.get("NOTIFICATIONS_URL") or "http://127.0.0.1:5003",
            secret_key=secret,
            cookie_secure=_flag(env.get("DASHBOARD_COOKIE_SECURE", "false")),
            api_timeout=float(env.get("DASHBOARD_API_TIMEOUT_SECONDS") or 15),
            session_hours=int(env.get("DASHBOARD_SESSION_HOURS") or 8),
        )


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}
