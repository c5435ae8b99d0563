"""Every route needs a valid bearer token; tokens carry roles and a region scope."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kube.cli import main
from shared.auth import Principal, TokenVerifier, issue_token

from support import JWT_SECRET


def protected_routes(app):
    """Every (method, path) of the app except health checks and docs."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in ("health", "api-docs", "static"):
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<uuid:{argument}>", str(uuid.uuid4()))
            path = path.replace(f"<{argument}>", "1")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, path


def bad_tokens():
    now = int(time.time())
    claims = {"sub": "x", "roles": ["admin"], "region": ""}
    return {
        "missing": None,
        "not bearer": "Basic dXNlcjpwYXNz",
        "malformed": "Bearer not.a.token",
        "expired": "Bearer " + jwt.encode({**claims, "exp": now - 10}, JWT_SECRET),
        "wrong signature": "Bearer "
        + jwt.encode({**claims, "exp": now + 60}, "another-secret-of-sufficient-length!!"),
        "unsigned": "Bearer " + jwt.encode({**claims, "exp": now + 60}, None, algorithm="none"),
        "roles not a list": "Bearer "
        + jwt.encode({**claims, "roles": "admin", "exp": now + 60}, JWT_SECRET),
    }


@pytest.mark.parametrize("service", ["registry", "grants", "notifications"])
def test_every_route_rejects_missing_expired_or_badly_signed_tokens(apps, service):
    client = apps[service].test_client()
    routes = list(protected_routes(apps[service]))
    assert routes
    for method, path in routes:
        for case, header in bad_tokens().items():
            headers = {"Authorization": header} if header else {}
            response = client.open(path, method=method, headers=headers, json={})
            assert response.status_code == 401, (method, path, case, response.json)
            assert response.mimetype == "application/problem+json"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_rs256_tokens_are_checked_against_the_public_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = TokenVerifier(secret=None, public_key=public)
    claims = {
        "sub": "officer-7",
        "roles": ["verifikator"],
        "region": "6472",
        "exp": int(time.time()) + 60,
    }
    principal = verifier.verify(jwt.encode(claims, key, algorithm="RS256"))
    assert principal == Principal("officer-7", frozenset({"verifikator"}), "6472")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Exception, match="signature"):
        verifier.verify(jwt.encode(claims, other, algorithm="RS256"))
    with pytest.raises(Exception, match="not accepted"):
        verifier.verify(jwt.encode(claims, "x" * 32, algorithm="HS256"))


def test_kube_token_prints_a_token_the_services_accept(monkeypatch):
    monkeypatch.setenv("KUBE_JWT_SECRET", JWT_SECRET)
    result = CliRunner().invoke(main, ["token", "--role", "verifikator", "--region", "6472"])
    assert result.exit_code == 0, result.output
    principal = TokenVerifier(secret=JWT_SECRET).verify(result.output.strip())
    assert principal.roles == {"verifikator"} and principal.region == "6472"


def test_kube_token_refuses_an_unknown_role(monkeypatch):
    monkeypatch.setenv("KUBE_JWT_SECRET", JWT_SECRET)
    result = CliRunner().invoke(main, ["token", "--role", "superuser"])
    assert result.exit_code != 0


def test_a_token_with_a_malformed_region_is_rejected():
    token = issue_token(JWT_SECRET, sub="x", roles=["admin"], region="64x")
    with pytest.raises(Exception, match="region"):
        TokenVerifier(secret=JWT_SECRET).verify(token)
