"""Idempotency-Key on mutating POSTs: a client that retries after a dropped connection gets
the first answer again instead of acting twice."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import re

from flask import Flask, Response, g, request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from shared.db import Database
from shared.errors import Conflict, InvalidInput, Malformed
from shared.problems import handle_database_unreachable, handle_domain_error, problem

log = logging.getLogger(__name__)
HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_REPLAYED_HEADERS = ("Content-Type", "ETag", "Location")


def fingerprint_keys(signing_keys: tuple[str, ...]) -> tuple[bytes, ...]:
    """The keys fingerprints are made with, one derived from each event signing key (newest
    first), so a rotation of those keys keeps the fingerprints already stored."""
    return tuple(
        hmac.new(k.encode(), b"kube idempotency fingerprint", hashlib.sha256).digest()
        for k in signing_keys
    )


def _fingerprints(keys: tuple[bytes, ...]) -> list[str]:
    """What makes two requests the same request: method, path, query and content, and the
    caller's rights (so a replay never gives one token's answer to another with other
    roles or another region, even under the same `sub`), as a keyed hash (HMAC-SHA256)
    under each key, the newest first. Keyed, because a body may hold nothing but a NIK
    (`POST /members/search`): a plain hash of it could be matched by anyone holding the
    table by trying NIKs."""
    principal = g.principal
    rights = f"{','.join(sorted(principal.roles))}@{principal.region or '*'}"
    parts: list[bytes | str] = [request.method, request.full_path, rights]
    if request.mimetype == "multipart/form-data":
        # A retried upload gets a new multipart boundary; compare the fields and files instead.
        parts += [f"{k}={v}" for k, v in sorted(request.form.items(multi=True))]
        for name, upload in sorted(request.files.items(multi=True)):
            parts += [name, upload.filename or "", upload.stream.read()]
            upload.stream.seek(0)
    else:
        parts.append(request.get_data(cache=True))
    digests = [hmac.new(key, digestmod=hashlib.sha256) for key in keys]
    for part in parts:
        chunk = part if isinstance(part, bytes) else part.encode()
        for digest in digests:
            digest.update(chunk)
            digest.update(b"\0")
    return [digest.hexdigest() for digest in digests]


def init_idempotency(app: Flask, db: Database, model: type, keys: tuple[bytes, ...]) -> None:
    """Honour Idempotency-Key on POST (register after authentication); `keys` make the
    requests' fingerprints (`fingerprint_keys`)."""
    if not keys:
        raise ValueError("Idempotency fingerprints need at least one key.")

    @app.before_request
    def replay_or_reserve():
        key = request.headers.get(HEADER)
        principal = g.get("principal")
        if request.method != "POST" or key is None or principal is None:
            return None
        if not _KEY.match(key):
            raise Malformed(f"{HEADER} must be 1 to 200 visible ASCII characters.")
        fingerprints = _fingerprints(keys)
        earlier = db.session.get(model, (key, principal.sub))
        if earlier is not None:
            if earlier.fingerprint not in fingerprints:
                raise InvalidInput.field(HEADER, "This key was used for a different request.")
            if earlier.status_code is None:
                raise Conflict(f"A request with this {HEADER} is still being processed.")
            response = Response(earlier.body, status=earlier.status_code, headers=earlier.headers)
            response.headers["Idempotent-Replayed"] = "true"
            return response
        # Added to the request's session: it commits together with the handler's change, so a
        # change without its key (or a key without its change) cannot happen.
        db.session.add(model(key=key, subject=principal.sub, fingerprint=fingerprints[0]))
        g.idempotency_key = (key, principal.sub)
        return None

    @app.after_request
    def remember(response: Response) -> Response:
        identity = g.pop("idempotency_key", None)
        if identity is None or not 200 <= response.status_code < 300:
            return response
        # The request's own session: the answer commits with the change (the unit of work
        # commits after this hook), so a retry never finds a change without its answer.
        session = db.session
        try:
            row = session.get(model, identity)
            if row is not None:
                row.status_code = response.status_code
                row.body = response.get_data(as_text=True)
                row.headers = {
                    h: response.headers[h] for h in _REPLAYED_HEADERS if h in response.headers
                }
                if not g.get("kube_commit"):
                    session.commit()  # a POST that changed nothing else still keeps its answer
        except SQLAlchemyError as exc:
            # The connection died before the change committed: nothing is kept, and the
            # client may retry with the same key.
            g.kube_commit = False
            with contextlib.suppress(SQLAlchemyError):  # gone with its connection
                session.rollback()
            return handle_database_unreachable(exc)
        return response

    @app.errorhandler(IntegrityError)
    def concurrent_duplicate(error: IntegrityError):
        constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
        if constraint == "idempotency_keys_pkey":
            return handle_domain_error(
                Conflict(f"A request with this {HEADER} is already running.")
            )
        log.exception("integrity error")
        return problem(500, "Internal Server Error", "An unexpected error occurred.")
