"""The registry's calls: groups, members, visits, memberships and bulk imports."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from kube_client.errors import WaitTimeout
from kube_client.transport import DEFAULT_PAGE_SIZE, Transport, if_match

SERVICE = "registry"
GROUPS = "/api/v1/groups"
IMPORTS = "/api/v1/imports"
IMPORT_FINISHED = frozenset({"done", "failed"})
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Registry:
    """The group registry: `client.registry`."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    # Groups

    def create_group(
        self,
        *,
        name: str,
        region_code: str,
        address: str | None = None,
        business_type: str | None = None,
        founded_on: str | None = None,
        bank_account: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Register a group (it starts in `draft`); answers the group as stored."""
        body = {
            "name": name,
            "region_code": region_code,
            "address": address,
            "business_type": business_type,
            "founded_on": founded_on,
            "bank_account": bank_account,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return self._http.json(
            SERVICE, "POST", GROUPS, json=body, idempotency_key=idempotency_key or True
        )

    def get_group(self, group_id: str) -> dict[str, Any]:
        """Read a group with its officers, member count, last visit and `version`."""
        return self._http.json(SERVICE, "GET", f"{GROUPS}/{group_id}")

    def update_group(
        self, group_id: str, version: int | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Change the fields given (None clears a nullable one); `version` is the one you read,
        or, when omitted, the group is read first and its current version is used."""
        return self._http.json(
            SERVICE,
            "PATCH",
            f"{GROUPS}/{group_id}",
            json=changes,
            headers={"If-Match": self._etag(f"{GROUPS}/{group_id}", version)},
        )

    def change_group_status(
        self,
        group_id: str,
        status: str,
        reason: str | None = None,
        version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Take a status action: `status` is the action (`activate`, `suspend`, `dissolve`)
        or the status it leads to (`active`, `suspended`, `dissolved`).

        The registry requires a reason (3 characters or more); without one the client says
        which action was taken. The route takes no If-Match: a given `version` is sent as
        If-Match all the same, and nothing is read when it is omitted."""
        action = STATUS_ACTIONS.get(status, status)
        headers = {} if version is None else {"If-Match": if_match(version)}
        return self._http.json(
            SERVICE,
            "POST",
            f"{GROUPS}/{group_id}/status",
            json={"action": action, "reason": reason or f"{action} (kube-client)"},
            headers=headers,
            idempotency_key=idempotency_key or True,
        )

    def iter_groups(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every group in the caller's region matching the filters (`region`, `status`,
        `business_type`, `q`), fetched a page at a time."""
        return self._http.pages(SERVICE, GROUPS, filters)

    def register_group(
        self,
        group: dict[str, Any],
        members: list[dict[str, Any]],
        activate: bool = True,
        *,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Create the group, add each member, then (by default) activate it; answers the group
        as it ends up. A failure stops there and raises: what was made stays (in `draft`)."""
        created = self.create_group(**group)
        for member in members:
            self.add_member(created["id"], **member)
        if activate:
            return self.change_group_status(
                created["id"], "activate", reason or "Registered with its members (kube-client)"
            )
        return self.get_group(created["id"])

    # Members

    def add_member(
        self, group_id: str, *, idempotency_key: str | None = None, **member_fields: Any
    ) -> dict[str, Any]:
        """Add a head of family (`nik`, `kk_number`, `name`, `phone`, `role`, ...)."""
        return self._http.json(
            SERVICE,
            "POST",
            f"{GROUPS}/{group_id}/members",
            json=member_fields,
            idempotency_key=idempotency_key or True,
        )

    def get_member(self, group_id: str, member_id: str) -> dict[str, Any]:
        """Read one member (NIK and No. KK in full for verifikator and admin only)."""
        return self._http.json(SERVICE, "GET", f"{GROUPS}/{group_id}/members/{member_id}")

    def update_member(
        self, group_id: str, member_id: str, version: int | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Change a member's fields given; If-Match as in `update_group`."""
        path = f"{GROUPS}/{group_id}/members/{member_id}"
        return self._http.json(
            SERVICE, "PATCH", path, json=changes, headers={"If-Match": self._etag(path, version)}
        )

    def remove_member(self, group_id: str, member_id: str) -> dict[str, Any]:
        """Remove a member from the group (the history stays)."""
        return self._http.json(SERVICE, "DELETE", f"{GROUPS}/{group_id}/members/{member_id}")

    def list_members(self, group_id: str, **params: Any) -> Iterator[dict[str, Any]]:
        """The group's current members in the order they joined, a page at a time."""
        return self._http.pages(SERVICE, f"{GROUPS}/{group_id}/members", params)

    def find_memberships(self, nik: str) -> list[dict[str, Any]]:
        """A person's memberships, current first. Sent as POST /members/search, so the NIK
        stays out of URLs (and proxy logs); a search changes nothing, so it is retried."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self._http.json(
                SERVICE,
                "POST",
                "/api/v1/members/search",
                params={"page": page, "page_size": DEFAULT_PAGE_SIZE},
                json={"nik": nik},
                idempotent=True,
            )
            found.extend(body["items"])
            if not body["items"] or page * int(body["page_size"]) >= int(body["total"]):
                return found
            page += 1

    # Mentoring visits

    def record_visit(
        self, group_id: str, *, idempotency_key: str | None = None, **visit_fields: Any
    ) -> dict[str, Any]:
        """Record a mentoring visit (`visited_on`, `topics`, `notes`, `monthly_revenue`)."""
        return self._http.json(
            SERVICE,
            "POST",
            f"{GROUPS}/{group_id}/visits",
            json=visit_fields,
            idempotency_key=idempotency_key or True,
        )

    def iter_visits(self, group_id: str) -> Iterator[dict[str, Any]]:
        """The group's mentoring visits, newest first."""
        return self._http.pages(SERVICE, f"{GROUPS}/{group_id}/visits")

    # Reports (each answers `rows`, one per region or business type, and their `total`)

    def report_groups(
        self, *, level: str = "province", region: str | None = None
    ) -> dict[str, Any]:
        """Groups by status and their current members, per region at `level` (`province`,
        `regency` or `district`), within `region` if given."""
        return self._report("groups", level=level, region=region)

    def report_business_types(self, *, region: str | None = None) -> dict[str, Any]:
        """Groups and current members per business type (lower case), most common first."""
        return self._report("business-types", region=region)

    def report_visits(
        self, *, level: str = "province", region: str | None = None
    ) -> dict[str, Any]:
        """Mentoring per region: groups, visits, groups visited, visits per group, groups
        not visited in the last `window_days` (90) up to `as_of`."""
        return self._report("visits", level=level, region=region)

    def report_revenue(
        self, *, level: str = "province", region: str | None = None
    ) -> dict[str, Any]:
        """Median monthly revenue (rupiah) at visits before and after each group's first
        grant was paid, per region."""
        return self._report("revenue", level=level, region=region)

    def _report(self, name: str, **params: Any) -> dict[str, Any]:
        params = {k: v for k, v in params.items() if v is not None}
        return self._http.json(SERVICE, "GET", f"/api/v1/reports/{name}", params=params)

    # Imports

    def import_file(
        self,
        path_or_bytes: str | os.PathLike[str] | bytes | BinaryIO,
        filename: str | None = None,
        wait: bool = True,
        timeout: float = 300,
        *,
        poll_interval: float = 1.0,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Upload a CSV or XLSX of groups and members; with `wait`, poll the import until it
        is `done` or `failed` (at most `timeout` seconds, else WaitTimeout) and answer it.

        A failed import is answered, not raised: see its `error` and `row_errors`."""
        if isinstance(path_or_bytes, bytes | bytearray):
            content: bytes | BinaryIO = bytes(path_or_bytes)
            name = filename or "import.csv"
            job = self._upload(content, name, idempotency_key)
        elif isinstance(path_or_bytes, str | os.PathLike):
            path = Path(path_or_bytes)
            with path.open("rb") as file:
                job = self._upload(file, filename or path.name, idempotency_key)
        else:
            name = filename or Path(getattr(path_or_bytes, "name", "import.csv")).name
            job = self._upload(path_or_bytes, name, idempotency_key)
        if not wait:
            return job
        return self.wait_for_import(job["id"], timeout=timeout, poll_interval=poll_interval)

    def wait_for_import(
        self, import_id: str, timeout: float = 300, poll_interval: float = 1.0
    ) -> dict[str, Any]:
        """Poll an import until it is `done` or `failed`; WaitTimeout after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        interval = poll_interval
        while True:
            job = self.get_import(import_id)
            if job["status"] in IMPORT_FINISHED:
                return job
            if time.monotonic() + interval > deadline:
                raise WaitTimeout(
                    f"Import {import_id} still {job['status']} after {timeout:g}s "
                    f"({job.get('processed_rows')}/{job.get('total_rows')} rows)."
                )
            time.sleep(interval)
            # A big file takes minutes: ask less often as it goes, up to every 5 seconds.
            interval = min(interval * 1.5, max(poll_interval, 5.0))

    def get_import(self, import_id: str) -> dict[str, Any]:
        """Read an import's status, progress and row errors."""
        return self._http.json(SERVICE, "GET", f"{IMPORTS}/{import_id}")

    def iter_imports(self) -> Iterator[dict[str, Any]]:
        """The imports made within the caller's region, newest first."""
        return self._http.pages(SERVICE, IMPORTS)

    def _upload(
        self, content: bytes | BinaryIO, filename: str, idempotency_key: str | None
    ) -> dict[str, Any]:
        kind = XLSX if filename.lower().endswith(".xlsx") else "text/csv"
        return self._http.json(
            SERVICE,
            "POST",
            IMPORTS,
            files={"file": (filename, content, kind)},
            idempotency_key=idempotency_key or True,
            # The body may be large; the default timeout is for small JSON calls.
            timeout=max(self._http.timeout, 300.0),
        )

    def _etag(self, path: str, version: int | None) -> str:
        if version is not None:
            return if_match(version)
        return self._http.etag(SERVICE, path)


# Either the action or the status it leads to may be named.
STATUS_ACTIONS = {"active": "activate", "suspended": "suspend", "dissolved": "dissolve"}
