"""HTTP for every call: base URLs, the token, errors, Idempotency-Key, retries and pages."""

from __future__ import annotations

import copy
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO

import requests
from urllib3.exceptions import NewConnectionError

from kube_client.errors import KubeClientError, ProblemError, TransportError

__version__ = "0.1.0"

SERVICES = ("registry", "grants", "notifications")
# Safe to send twice by HTTP's own rules; anything else is retried only under an
# Idempotency-Key (the service then acts once however many copies arrive).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({503})
# The services cap page_size at 100; the biggest page means the fewest round trips.
DEFAULT_PAGE_SIZE = 100

Files = Mapping[str, tuple[str, bytes | BinaryIO, str]]


class Transport:
    """Sends one logical call, with its retries, to one of the platform's services."""

    def __init__(
        self,
        base_urls: Mapping[str, str | None],
        *,
        token: str | None = None,
        token_provider: Callable[[], str] | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        max_retry_after: float = 30.0,
        session: requests.Session | None = None,
        user_agent: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if token is not None and token_provider is not None:
            raise ValueError("Pass token or token_provider, not both.")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more.")
        self.base_urls = {s: (u.rstrip("/") if u else None) for s, u in base_urls.items()}
        self.token_provider: Callable[[], str] | None = (
            token_provider if token is None else (lambda: token)
        )
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.session = session if session is not None else requests.Session()
        self.user_agent = user_agent or f"kube-client/{__version__}"
        self.sleep = sleep

    def with_session(self, session: requests.Session) -> Transport:
        """The same transport on another HTTP session."""
        other = copy.copy(self)
        other.session = session
        return other

    def url(self, service: str, path: str) -> str:
        if service not in self.base_urls:
            raise ValueError(f"Unknown service {service!r}; one of {', '.join(SERVICES)}.")
        base = self.base_urls[service]
        if not base:
            raise ValueError(f"No base URL given for the {service} service.")
        return base + (path if path.startswith("/") else "/" + path)

    def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        files: Files | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        idempotency_key: str | bool | None = None,
        timeout: float | None = None,
    ) -> requests.Response:
        """Send the call, retrying what is safe to retry; raise ProblemError for a 4xx/5xx
        answer and TransportError when no answer came."""
        method = method.upper()
        sent_headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        sent_headers.update(headers or {})
        if idempotency_key is True:
            idempotency_key = str(uuid.uuid4())
        if idempotency_key:
            # One key per logical call, the same on each of its retries.
            sent_headers["Idempotency-Key"] = str(idempotency_key)
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS or "Idempotency-Key" in sent_headers
        url = self.url(service, path)
        attempt = 0
        while True:
            if self.token_provider is not None:
                # Asked on every attempt, so a provider can hand out a refreshed token.
                sent_headers["Authorization"] = f"Bearer {self.token_provider()}"
            try:
                response = self.session.request(
                    method,
                    url,
                    params=_query(params),
                    json=json,
                    files=_rewound(files),
                    headers=sent_headers,
                    timeout=self.timeout if timeout is None else timeout,
                )
            except requests.RequestException as exc:
                if not _transient(exc) or attempt >= self.max_retries:
                    raise TransportError(f"{method} {url}: {exc}") from exc
                if not idempotent and not _never_sent(exc):
                    # The request may have reached the service: sending it again could act twice.
                    raise TransportError(f"{method} {url}: {exc}") from exc
                self.sleep(self._backoff(attempt))
                attempt += 1
                continue
            if response.status_code in RETRY_STATUSES and idempotent and attempt < self.max_retries:
                self.sleep(self._delay(attempt, response))
                attempt += 1
                continue
            if response.status_code >= 400:
                raise ProblemError.from_response(response)
            return response

    def json(self, service: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """`request`, then the answer's body: a JSON object, as every service answers."""
        response = self.request(service, method, path, **kwargs)
        try:
            body = response.json()
        except ValueError as exc:
            raise KubeClientError(f"{method} {path}: the answer is not JSON") from exc
        if not isinstance(body, dict):
            raise KubeClientError(f"{method} {path}: the answer is not a JSON object")
        return body

    def etag(self, service: str, path: str) -> str:
        """The current ETag of a resource, read for a change that needs If-Match."""
        response = self.request(service, "GET", path)
        tag = response.headers.get("ETag")
        if tag:
            return tag
        version = response.json().get("version")
        if version is None:
            raise ValueError(f"{path} answered neither an ETag nor a version to send as If-Match.")
        return if_match(int(version))

    def pages(
        self, service: str, path: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, each page fetched when the one before is used up."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        query.setdefault("page_size", DEFAULT_PAGE_SIZE)
        page = int(query.pop("page", 1))
        while True:
            body = self.json(service, "GET", path, params={**query, "page": page})
            items = body.get("items", [])
            yield from items
            size = int(body.get("page_size") or query["page_size"])
            if not items or page * size >= int(body.get("total", 0)):
                return
            page += 1

    def _backoff(self, attempt: int) -> float:
        # Exponential, capped, with jitter so many clients recovering together spread out.
        ceiling: float = min(self.max_backoff, self.backoff * 2.0**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _delay(self, attempt: int, response: requests.Response) -> float:
        """How long to wait before retrying a 503: its Retry-After (capped), else the backoff."""
        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        if retry_after is None:
            return self._backoff(attempt)
        return min(retry_after, self.max_retry_after)


def if_match(version: int) -> str:
    """The If-Match value for a resource at `version` (its ETag is the version, quoted)."""
    return f'"{int(version)}"'


def _query(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    # Booleans as the services parse them; None means "not given".
    return {
        k: ("true" if v is True else "false" if v is False else v)
        for k, v in params.items()
        if v is not None
    }


def _rewound(files: Files | None) -> Files | None:
    """The upload parts, each file object back at its start (a retry sends the whole file)."""
    if files:
        for _, content, _ in files.values():
            if hasattr(content, "seek"):
                content.seek(0)
    return files


def _transient(exc: requests.RequestException) -> bool:
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection was never made, so the request cannot have reached a server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
