"""Every route needs a valid bearer token; tokens carry roles and a region scope."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kube.cli import main
from shared.auth import Principal, TokenVerifier, issue_token
from shared.errors import Unauthenticated

from support import JWT_SECRET, wait_until


def protected_routes(app):
    """Every (method, path) of the app except health checks and docs."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in ("health", "api-docs", "static"):
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<uuid:{argument}>", str(uuid.uuid4()))
            path = path.replace(f"<int:{argument}>", "2026")
            path = path.replace(f"<string:{argument}>", "regional")
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
    result = CliRunner().invoke(
        main, ["token", "--sub", "tester", "--role", "verifikator", "--region", "6472"]
    )
    assert result.exit_code == 0, result.output
    principal = TokenVerifier(secret=JWT_SECRET).verify(result.output.strip())
    assert principal.roles == {"verifikator"} and principal.region == "6472"


def test_kube_token_refuses_an_unknown_role(monkeypatch):
    monkeypatch.setenv("KUBE_JWT_SECRET", JWT_SECRET)
    result = CliRunner().invoke(
        main, ["token", "--sub", "tester", "--role", "superuser", "--region", "64"]
    )
    assert result.exit_code != 0


def test_a_token_with_a_malformed_region_is_rejected():
    token = issue_token(JWT_SECRET, sub="x", roles=["admin"], region="64x")
    with pytest.raises(Exception, match="region"):
        TokenVerifier(secret=JWT_SECRET).verify(token)


def _public_pem(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_hs256_is_off_where_a_public_key_is_configured_unless_allowed():
    public = _public_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    forged = issue_token(JWT_SECRET, sub="intruder", roles=["admin"], region="*")
    with pytest.raises(Unauthenticated, match="HS256"):
        TokenVerifier(secret=JWT_SECRET, public_key=public).verify(forged)
    allowed = TokenVerifier(secret=JWT_SECRET, public_key=public, allow_hs256_with_public_key=True)
    assert allowed.verify(forged).sub == "intruder"


@pytest.mark.parametrize(
    "secret", ["change-me-in-production", "short-but-random-7f3a", "a" * 64, "secret"]
)
def test_a_service_refuses_to_start_with_a_guessable_secret(secret):
    from shared.tokens import check_secret

    with pytest.raises(RuntimeError, match="KUBE_JWT_SECRET"):
        check_secret(secret)
    check_secret(JWT_SECRET)


def test_a_header_alg_that_is_not_a_string_is_401_not_500(clients):
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    header = part({"alg": ["HS256", "none"], "typ": "JWT"})
    claims = part({"sub": "x", "roles": ["admin"], "exp": int(time.time()) + 60})
    token = f"{header}.{claims}.c2lnbmF0dXJl"
    response = clients["registry"].get(
        "/api/v1/groups", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401


def test_a_sub_longer_than_the_tables_keep_is_401_not_500(clients, token):
    long_sub = token("pendamping", region="6472", sub="x" * 101)
    response = clients["registry"].post(
        "/api/v1/groups",
        json={"name": "KUBE Panjang", "region_code": "6472011001"},
        headers={"Authorization": f"Bearer {long_sub}", "Idempotency-Key": "k1"},
    )
    assert response.status_code == 401


def test_a_token_living_longer_than_the_cap_is_401(clients, token):
    forever = token("admin", ttl_seconds=10 * 365 * 24 * 3600)
    response = clients["registry"].get(
        "/api/v1/groups", headers={"Authorization": f"Bearer {forever}"}
    )
    assert response.status_code == 401 and "lives longer" in response.json["detail"]


def test_kube_token_needs_a_sub_and_caps_the_lifetime(monkeypatch):
    monkeypatch.setenv("KUBE_JWT_SECRET", JWT_SECRET)
    assert CliRunner().invoke(main, ["token", "--role", "admin", "--region", "*"]).exit_code != 0
    too_long = CliRunner().invoke(
        main,
        ["token", "--sub", "ops", "--role", "admin", "--region", "*", "--ttl", str(30 * 86400)],
    )
    assert too_long.exit_code != 0 and "KUBE_JWT_MAX_TTL_SECONDS" in too_long.output


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"roles": ["admin"]}, "no `region`"),
        ({"roles": [], "region": "6472"}, "non-empty list"),
        ({"roles": ["superuser"], "region": "6472"}, "unknown roles"),
        ({"roles": ["verifikator"], "region": "*"}, "Only admin and service"),
        ({"roles": ["verifikator"], "region": ""}, "region-code prefix"),
    ],
)
def test_a_token_must_carry_a_region_and_known_roles(clients, claims, why):
    """A token without a region read every region; now it reads nothing."""
    now = int(time.time())
    token = jwt.encode({"sub": "x", "iat": now, "exp": now + 60, **claims}, JWT_SECRET)
    response = clients["registry"].get(
        "/api/v1/groups", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert why in response.json["detail"]


def test_nationwide_is_the_explicit_star_for_admin_and_service():
    verifier = TokenVerifier(secret=JWT_SECRET)
    for role in ("admin", "service"):
        principal = verifier.verify(issue_token(JWT_SECRET, sub="x", roles=[role], region="*"))
        assert principal.scope.nationwide


def test_rs256_needs_an_audience_and_an_issuer_to_start(platform_env):
    from services.grants import create_app
    from shared.config import load_settings

    public = _public_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(RuntimeError, match="KUBE_JWT_AUDIENCE and KUBE_JWT_ISSUER"):
        create_app(load_settings("grants", jwt_secret=None, jwt_public_key=public))


def test_a_revoked_token_is_refused_everywhere(clients, apps, token, platform_env):
    revoked = token("admin", sub="leaked")
    jti = jwt.decode(revoked, options={"verify_signature": False})["jti"]
    headers = {"Authorization": f"Bearer {revoked}"}
    assert clients["registry"].get("/api/v1/groups", headers=headers).status_code == 200
    revoked_at = time.monotonic()
    result = CliRunner().invoke(main, ["revoke-token", jti])
    assert result.exit_code == 0, result.output
    for service in ("grants", "notifications"):
        response = clients[service].get("/api/v1/dead-letters", headers=headers)
        assert response.status_code == 401 and "revoked" in response.json["detail"]

    # The registry saw the token a moment ago and trusts that for
    # KUBE_REVOCATION_CHECK_SECONDS (1 s); then it refuses the token too, and it never took it
    # after that second.
    def registry_answer():
        return clients["registry"].get("/api/v1/dead-letters", headers=headers)

    refused = wait_until(lambda: (r := registry_answer()).status_code == 401 and r, timeout=10)
    assert "revoked" in refused.json["detail"]
    trusted = time.monotonic() - revoked_at
    assert registry_answer().status_code == 401, f"refused after {trusted:.2f} s, then taken"
    assert (
        clients["registry"]
        .get("/api/v1/groups", headers={"Authorization": f"Bearer {token('admin', sub='leaked')}"})
        .status_code
        == 200
    )  # another token of the same user still works


def test_a_remembered_token_still_expires_and_a_changed_one_is_checked_again():
    verifier = TokenVerifier(secret=JWT_SECRET)
    token = issue_token(
        JWT_SECRET, sub="officer", roles=["verifikator"], region="64", ttl_seconds=2
    )
    assert verifier.verify(token).sub == "officer"
    # Same text: answered from memory; a flipped signature byte is not the same text.
    assert verifier.verify(token).region == "64"
    head, payload, signature = token.split(".")
    tampered = (
        f"{head}.{payload}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"
    )
    with pytest.raises(Unauthenticated):
        verifier.verify(tampered)
    # Once its `exp` has passed, the remembered token has expired like any other.
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(token)


def test_a_regional_admin_may_not_change_what_every_region_shares(clients, auth):
    regional = auth("admin", region="64")
    answers = {
        "grants leave days": clients["grants"].put(
            "/api/v1/calendar/2027",
            json={"days": [{"day": "2027-12-24", "description": "Cuti bersama Natal"}]},
            headers=regional,
        ),
        "message rules": clients["notifications"].put(
            "/api/v1/rules", json={"rules": []}, headers=regional
        ),
    }
    for what, answer in answers.items():
        assert answer.status_code == 403, what
        assert 'it needs a nationwide token (region "*")' in answer.json["detail"], what
