"""JWT bearer authentication of HTTP requests: every route but the public ones needs a valid
token; `require_roles` guards what a role may do."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, g, request

from shared.errors import NotPermitted, Unauthenticated
from shared.tokens import ROLES, Principal, TokenVerifier, issue_token

__all__ = [
    "ROLES",
    "Principal",
    "TokenVerifier",
    "current_principal",
    "init_auth",
    "issue_token",
    "require_roles",
]


def init_auth(
    app: Flask,
    verifier: TokenVerifier,
    public_endpoints: set[str],
    is_revoked: Callable[[str], bool] = lambda _jti: False,
) -> None:
    """Require a valid bearer token, not revoked, on every endpoint except the public ones."""

    @app.before_request
    def authenticate():
        # Unknown routes and wrong methods answer 404/405, not 401.
        if request.routing_exception is not None or request.endpoint in public_endpoints:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise Unauthenticated("A bearer token is required.")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("The Authorization header must be `Bearer <token>`.")
        principal = verifier.verify(token.strip())
        if principal.jti and is_revoked(principal.jti):
            raise Unauthenticated("The bearer token has been revoked.")
        g.principal = principal
        return None


def current_principal() -> Principal:
    return g.principal


def require_roles(*roles: str) -> Principal:
    """The caller, if they hold one of `roles`; otherwise a 403."""
    principal = current_principal()
    if not principal.has_role(*roles):
        raise NotPermitted(f"This action needs one of the roles: {', '.join(roles)}.")
    return principal
