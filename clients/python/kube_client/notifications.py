"""The notification service's calls: messages, broadcasts and opt-outs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from kube_client.transport import Transport

SERVICE = "notifications"
MESSAGES = "/api/v1/messages"
BROADCASTS = "/api/v1/broadcasts"
REPORTS = "/api/v1/reports"

Level = Literal["province", "regency", "district"]


def _when(value: datetime | str | None) -> str | None:
    """A time as the services read it (ISO 8601 with its zone); a string is sent as it is."""
    return value.isoformat() if isinstance(value, datetime) else value


class Notifications:
    """The notification service: `client.notifications`."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def iter_messages(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Messages in the caller's region (`group_id`, `grant_id`, `broadcast_id`, `status`,
        `channel`, `since`, `until`), a page at a time; recipients masked."""
        return self._http.pages(SERVICE, MESSAGES, filters)

    def get_message(self, message_id: str) -> dict[str, Any]:
        """Read one message with its delivery status."""
        return self._http.json(SERVICE, "GET", f"{MESSAGES}/{message_id}")

    def retry_message(
        self, message_id: str, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Send a failed message again (a new attempt; its history stays)."""
        return self._http.json(
            SERVICE,
            "POST",
            f"{MESSAGES}/{message_id}/retry",
            idempotency_key=idempotency_key or True,
        )

    def create_broadcast(
        self, *, idempotency_key: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Send a text to every member of a region's active groups or of the groups named
        (`text`, `region_code` or `group_ids`, `audience`)."""
        return self._http.json(
            SERVICE, "POST", BROADCASTS, json=fields, idempotency_key=idempotency_key or True
        )

    def get_broadcast(self, broadcast_id: str) -> dict[str, Any]:
        """Read a broadcast and its progress (`by_status`, `reached`, `total`)."""
        return self._http.json(SERVICE, "GET", f"{BROADCASTS}/{broadcast_id}")

    def add_opt_out(
        self, phone: str, *, idempotency_key: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Stop SMS to a number (critical messages, such as a disbursement, still go)."""
        return self._http.json(
            SERVICE,
            "POST",
            "/api/v1/opt-outs",
            json={"phone": phone, **fields},
            idempotency_key=idempotency_key or True,
        )

    def report_messages(
        self,
        *,
        level: Level = "province",
        region: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        channel: Literal["sms", "email"] | None = None,
    ) -> dict[str, Any]:
        """Messages made in the period per region at `level` and channel: counts by status,
        `delivery_pct` and `confirmed_pct` (0-100, one decimal), and a `total`."""
        params = {"level": level, "region": region, "channel": channel}
        params.update(since=_when(since), until=_when(until))
        return self._http.json(SERVICE, "GET", f"{REPORTS}/messages", params=params)

    def report_reach(
        self,
        *,
        level: Level = "province",
        region: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> dict[str, Any]:
        """Members and groups messaged in the period per region, and how many were reached
        (a message sent or delivered) or confirmed (delivered), with a `total`."""
        params = {"level": level, "region": region, "since": _when(since), "until": _when(until)}
        return self._http.json(SERVICE, "GET", f"{REPORTS}/reach", params=params)

    def report_opt_outs(
        self, *, level: Level = "province", region: str | None = None
    ) -> dict[str, Any]:
        """Members who opted out of SMS per region (`opted_out`, `opted_out_pct` of members with
        a phone), with a `total`; never a number."""
        params = {"level": level, "region": region}
        return self._http.json(SERVICE, "GET", f"{REPORTS}/opt-outs", params=params)
