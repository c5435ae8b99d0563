"""JWT bearer tokens: who is calling, with which roles, for which region. No web code, so a
worker can sign the token it reads another service's feed with."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

import jwt

from shared.errors import Unauthenticated
from shared.scope import RegionScope

ROLES = (
    "pendamping",
    "verifikator",
    "kepala_dinas",
    "bendahara",
    "admin",
    "auditor",
    "service",
)
# A scope is a Kemendagri code prefix: "" (all), province, regency, district or village.
_REGION_SCOPE = re.compile(r"^(\d{2}|\d{4}|\d{6}|\d{10})$")
# The explicit value of the `region` claim for every region; only these roles may hold it.
NATIONWIDE = "*"
NATIONWIDE_ROLES = frozenset({"admin", "service"})
# Every staff role and internal service reads what its region holds: routes that admit them
# all say so explicitly (`roles=READERS`), so each route names who may call it.
READERS = ROLES


@dataclass(frozen=True)
class Principal:
    sub: str
    roles: frozenset[str]
    region: str
    jti: str | None = None

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def scope(self) -> RegionScope:
        """The caller's region scope, through which every query they make is filtered."""
        return RegionScope(self.region)


# Secrets seen in examples and defaults; a deployment using one is open to anyone.
KNOWN_WEAK_SECRETS = frozenset(
    {"change-me-in-production", "changeme", "change-me", "secret", "kube", "password", "test"}
)
MIN_SECRET_BYTES = 32
# The longest a token may live (a sub is at most this long, as the tables keep it).
MAX_SUB_LENGTH = 100
# How many verified tokens a process remembers (a few KB each at most); when full, it
# forgets them all and verifies again.
VERIFIED_TOKENS_KEPT = 10_000


def check_secret(secret: str) -> None:
    """Refuse an HS256 secret anyone could guess: short, or a known example value."""
    if secret.strip().lower() in KNOWN_WEAK_SECRETS or len(set(secret)) < 8:
        raise RuntimeError("KUBE_JWT_SECRET is a known example value; set 32+ random bytes.")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise RuntimeError(
            f"KUBE_JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes; set 32+ random bytes "
            "(e.g. `openssl rand -hex 32`)."
        )


class TokenVerifier:
    """Checks HS256 tokens against a shared secret and RS256 against a public key. Where a
    public key is configured, HS256 is off unless explicitly allowed: one leaked or guessed
    shared secret must not mint tokens beside the identity provider's."""

    def __init__(
        self,
        *,
        secret: str | None,
        public_key: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        allow_hs256_with_public_key: bool = False,
        max_ttl_seconds: int | None = None,
    ):
        self.keys = {}
        if secret and (not public_key or allow_hs256_with_public_key):
            self.keys["HS256"] = secret
        if public_key:
            self.keys["RS256"] = public_key
        self.audience = audience
        self.issuer = issuer
        self.max_ttl_seconds = max_ttl_seconds
        # Tokens already verified, by their exact text: (principal, exp). A token's signature
        # and claims cannot change, so only its expiry is checked again; a client sends the
        # same token with every request, and the signature check costs more than the read.
        self._verified: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        """Decode a token into a Principal or raise Unauthenticated saying why."""
        known = self._verified.get(token)
        if known is not None:
            principal, expires = known
            if time.time() < expires:
                return principal
            self._verified.pop(token, None)
        principal, claims = self._decode(token)
        if "nbf" not in claims and isinstance(claims["exp"], int | float):
            if len(self._verified) >= VERIFIED_TOKENS_KEPT:
                self._verified.clear()
            self._verified[token] = (principal, claims["exp"])
        return principal

    def _decode(self, token: str) -> tuple[Principal, dict]:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("The bearer token is malformed.") from exc
        if not isinstance(algorithm, str):
            raise Unauthenticated("The bearer token's `alg` must be a string.")
        key = self.keys.get(algorithm)
        if key is None:
            raise Unauthenticated(f"Tokens signed with {algorithm!r} are not accepted.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("The bearer token has expired.") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthenticated("The bearer token's signature is invalid.") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"The bearer token is invalid: {exc}.") from exc
        sub = claims["sub"]
        if not isinstance(sub, str) or not 1 <= len(sub) <= MAX_SUB_LENGTH:
            raise Unauthenticated(
                f"The token's `sub` must be a string of 1 to {MAX_SUB_LENGTH} characters."
            )
        if self.max_ttl_seconds is not None:
            issued = claims.get("iat")
            if not isinstance(issued, int | float) or claims["exp"] - issued > self.max_ttl_seconds:
                raise Unauthenticated(
                    f"The token lives longer than {self.max_ttl_seconds} s (or has no `iat`)."
                )
        jti = claims.get("jti")
        principal = Principal(
            sub=sub,
            roles=_roles_of(claims.get("roles")),
            region=_region_of(claims),
            jti=jti if isinstance(jti, str) and len(jti) <= 128 else None,
        )
        return principal, claims


def _roles_of(roles: object) -> frozenset[str]:
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        raise Unauthenticated("The token's `roles` claim must be a non-empty list of roles.")
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise Unauthenticated(f"The token names unknown roles: {', '.join(unknown)[:200]}.")
    return frozenset(roles)


def _region_of(claims: dict) -> str:
    """The caller's region-code prefix ("" inside the platform for nationwide)."""
    if "region" not in claims:
        raise Unauthenticated(
            "The token carries no `region` claim (a region-code prefix, or "
            f"{NATIONWIDE!r} for nationwide admin and service tokens)."
        )
    region = claims["region"]
    if region == NATIONWIDE:
        if not NATIONWIDE_ROLES & set(claims["roles"]):
            raise Unauthenticated("Only admin and service tokens may be nationwide.")
        return ""
    if not isinstance(region, str) or not _REGION_SCOPE.match(region):
        raise Unauthenticated(
            f"The token's `region` claim must be a region-code prefix or {NATIONWIDE!r}."
        )
    return region


def issue_token(
    secret: str,
    *,
    sub: str,
    roles: list[str],
    region: str,
    ttl_seconds: int = 8 * 3600,
    algorithm: str = "HS256",
    **claims,
) -> str:
    """Sign a token for local use and tests (production tokens come from an identity provider);
    `region` is a region-code prefix, or "*" (nationwide, admin and service only)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles: {', '.join(sorted(unknown))}")
    now = int(time.time())
    payload = {
        "sub": sub,
        "roles": roles,
        "region": region,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(payload, secret, algorithm=algorithm)


def revoked_key(queue_prefix: str, jti: str) -> str:
    """The Redis key that marks a token id as revoked (kept as long as a token can live)."""
    return f"{queue_prefix}:revoked-jti:{jti}"
