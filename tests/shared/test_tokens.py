"""Token verification keeps its keys prepared, never a token's validity."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.errors import Unauthenticated
from shared.tokens import TokenVerifier, issue_token

SECRET = "k3y-for-tests-0123456789abcdefghijklmnop"


def test_each_key_is_prepared_once_and_every_token_is_still_checked():
    verifier = TokenVerifier(secret=SECRET)
    good = issue_token(SECRET, sub="a", roles=["admin"], region="*")
    for _ in range(3):
        assert verifier.verify(good).sub == "a"
    prepare = verifier._jwt._jws.get_algorithm_by_name("HS256").prepare_key
    assert prepare.cache_info().misses == 1 and prepare.cache_info().hits == 2
    forged = issue_token("another-" + SECRET, sub="a", roles=["admin"], region="*")
    with pytest.raises(Unauthenticated, match="signature"):
        verifier.verify(forged)
    expired = issue_token(SECRET, sub="a", roles=["admin"], region="*", ttl_seconds=-10)
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(expired)


def test_a_public_key_is_parsed_once():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = TokenVerifier(secret=None, public_key=public)
    claims = {"sub": "s", "roles": ["service"], "region": "*", "exp": int(time.time()) + 60}
    for _ in range(2):
        assert verifier.verify(jwt.encode(claims, key, algorithm="RS256")).sub == "s"
    prepare = verifier._jwt._jws.get_algorithm_by_name("RS256").prepare_key
    assert prepare.cache_info().misses == 1
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthenticated, match="signature"):
        verifier.verify(jwt.encode(claims, other, algorithm="RS256"))
