"""KubeClient: one object for the platform's three services."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from kube_client.grants import Grants
from kube_client.notifications import Notifications
from kube_client.registry import Registry
from kube_client.transport import Transport


class KubeClient:
    """The KUBE platform's registry, grants and notifications APIs for an internal app.

    Base URLs are given without `/api/v1`; a service left out cannot be called. Pass a
    fixed `token`, or a `token_provider` called before every request (so it can refresh)."""

    def __init__(
        self,
        registry: str | None = None,
        grants: str | None = None,
        notifications: str | None = None,
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
        self.transport = Transport(
            {"registry": registry, "grants": grants, "notifications": notifications},
            token=token,
            token_provider=token_provider,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
            session=session,
            user_agent=user_agent,
            sleep=sleep,
        )
        self.registry = Registry(self.transport)
        self.grants = Grants(self.transport)
        self.notifications = Notifications(self.transport)

    def request(
        self,
        service: str,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        *,
        files: Mapping[str, Any] | None = None,
        idempotency_key: str | bool | None = None,
        timeout: float | None = None,
    ) -> requests.Response:
        """Any other call, with the same token, errors and retries. `idempotent=None` retries
        GET/PUT/DELETE and calls with an Idempotency-Key (`idempotency_key=True` makes one)."""
        return self.transport.request(
            service,
            method,
            path,
            params=params,
            json=json,
            headers=headers,
            idempotent=idempotent,
            files=files,
            idempotency_key=idempotency_key,
            timeout=timeout,
        )

    def copy(self) -> KubeClient:
        """A client for the same services with the same token and retry settings, on an HTTP
        session of its own: for calls made at the same time from several threads (a
        requests.Session is not made to be shared between threads). Close it when done."""
        clone = object.__new__(KubeClient)
        clone.transport = self.transport.with_session(requests.Session())
        clone.registry = Registry(clone.transport)
        clone.grants = Grants(clone.transport)
        clone.notifications = Notifications(clone.transport)
        return clone

    def close(self) -> None:
        """Close the HTTP session's connections."""
        self.transport.session.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
