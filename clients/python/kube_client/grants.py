"""The grant service's calls: programmes, applications and their workflow, decrees, batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kube_client.transport import Transport, if_match

SERVICE = "grants"
PROGRAMS = "/api/v1/programs"
GRANTS = "/api/v1/grants"
BATCHES = "/api/v1/disbursement-batches"
REPORTS = "/api/v1/reports"


class Grants:
    """The grant service: `client.grants`."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    # Programmes

    def iter_programs(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """The programmes the caller's region takes part in (`fiscal_year`, `funding_source`,
        `status`), a page at a time."""
        return self._http.pages(SERVICE, PROGRAMS, filters)

    def create_program(
        self, *, idempotency_key: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Create a programme (`name`, `fiscal_year`, `funding_source`, `total_budget`, ...)."""
        return self._http.json(
            SERVICE, "POST", PROGRAMS, json=fields, idempotency_key=idempotency_key or True
        )

    def get_program(self, program_id: str) -> dict[str, Any]:
        """Read a programme."""
        return self._http.json(SERVICE, "GET", f"{PROGRAMS}/{program_id}")

    def update_program(
        self, program_id: str, version: int | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Change a programme's fields given; `version` as read, or read first when omitted."""
        path = f"{PROGRAMS}/{program_id}"
        return self._http.json(
            SERVICE, "PATCH", path, json=changes, headers={"If-Match": self._etag(path, version)}
        )

    def get_program_budget(self, program_id: str) -> dict[str, Any]:
        """The programme's budget: total, reserved, disbursed, available (whole rupiah)."""
        return self._http.json(SERVICE, "GET", f"{PROGRAMS}/{program_id}/budget")

    # Applications

    def create_grant(
        self,
        *,
        group_id: str,
        program_id: str,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Make an application in `draft` (`business_plan` is required; `amount`,
        `requested_items`, `documents` optional)."""
        body = {"group_id": group_id, "program_id": program_id, **fields}
        return self._http.json(
            SERVICE, "POST", GRANTS, json=body, idempotency_key=idempotency_key or True
        )

    def get_grant(self, grant_id: str) -> dict[str, Any]:
        """Read an application with its `next_actions`, `due_at`, `overdue` and `version`."""
        return self._http.json(SERVICE, "GET", f"{GRANTS}/{grant_id}")

    def update_grant(
        self, grant_id: str, version: int | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Correct a draft's fields given; `version` as read, or read first when omitted."""
        path = f"{GRANTS}/{grant_id}"
        return self._http.json(
            SERVICE, "PATCH", path, json=changes, headers={"If-Match": self._etag(path, version)}
        )

    def iter_grants(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Applications in the caller's region (`stage`, `program_id`, `group_id`, `region`,
        `overdue`), a page at a time."""
        return self._http.pages(SERVICE, GRANTS, filters)

    def transition(
        self,
        grant_id: str,
        action: str,
        comment: str | None = None,
        data: dict[str, Any] | None = None,
        version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Take a workflow action (`submit`, `verify`, `approve`, ...) with its comment and
        data; `version` is the one you read, or the application is read first when omitted.
        Answers the application after the step."""
        body: dict[str, Any] = {"action": action}
        if comment is not None:
            body["comment"] = comment
        if data is not None:
            body["data"] = data
        path = f"{GRANTS}/{grant_id}"
        return self._http.json(
            SERVICE,
            "POST",
            f"{path}/transitions",
            json=body,
            headers={"If-Match": self._etag(path, version)},
            idempotency_key=idempotency_key or True,
        )

    def history(self, grant_id: str) -> list[dict[str, Any]]:
        """Every step of the application's audit trail, oldest first (all pages)."""
        return list(self._http.pages(SERVICE, f"{GRANTS}/{grant_id}/history"))

    # Decrees and disbursement

    def issue_decree(self, *, idempotency_key: str | None = None, **fields: Any) -> dict[str, Any]:
        """Approve many applications under one decree (`number`, `decree_date`, `signer`,
        `grant_ids`, `atomic`); answers `{"decree", "items"}` with an outcome per item."""
        return self._http.json(
            SERVICE,
            "POST",
            "/api/v1/decrees",
            json=fields,
            idempotency_key=idempotency_key or True,
        )

    def get_decree(self, decree_id: str) -> dict[str, Any]:
        """Read a decree."""
        return self._http.json(SERVICE, "GET", f"/api/v1/decrees/{decree_id}")

    def create_disbursement_batch(
        self, *, idempotency_key: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Collect approved applications of a programme (`program_id`, `grant_ids`) into one
        bank transfer; answers `{"batch", "items"}`."""
        return self._http.json(
            SERVICE, "POST", BATCHES, json=fields, idempotency_key=idempotency_key or True
        )

    def get_disbursement_batch(self, batch_id: str) -> dict[str, Any]:
        """Read a batch: its transfers by status and their total."""
        return self._http.json(SERVICE, "GET", f"{BATCHES}/{batch_id}")

    def get_transfer_file(self, batch_id: str) -> bytes:
        """The batch's bank transfer file: UTF-8 CSV bytes, CRLF line ends."""
        response = self._http.request(
            SERVICE, "GET", f"{BATCHES}/{batch_id}/transfer-file", headers={"Accept": "text/csv"}
        )
        return response.content

    def apply_bank_result(
        self,
        batch_id: str,
        content: bytes,
        filename: str = "result.csv",
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Upload the bank's result file (CSV: `reference,status,transfer_reference,
        transfer_date,reason`); answers `{"batch", "rows"}` with an outcome per row."""
        return self._http.json(
            SERVICE,
            "POST",
            f"{BATCHES}/{batch_id}/result",
            files={"file": (filename, content, "text/csv")},
            idempotency_key=idempotency_key or True,
        )

    # The grant service's copy of the registry's groups

    def get_group(self, group_id: str) -> dict[str, Any]:
        """The group as grants knows it (a projection of the registry's events)."""
        return self._http.json(SERVICE, "GET", f"/api/v1/groups/{group_id}")

    def iter_groups(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """The groups grants knows of (`status`), a page at a time."""
        return self._http.pages(SERVICE, "/api/v1/groups", filters)

    # Reports: figures within the caller's region, or a narrower `region` prefix inside it;
    # `level` ("province", "regency", "district") adds a row per region at that level.
    # Percentages are 0 to 100 with one decimal, None where their base is 0.

    def report_pipeline(
        self,
        *,
        level: str | None = None,
        region: str | None = None,
        program_id: str | None = None,
        fiscal_year: int | None = None,
    ) -> dict[str, Any]:
        """Applications and their amounts per stage (route order), region and programme."""
        return self._report(
            "pipeline", level=level, region=region, program_id=program_id, fiscal_year=fiscal_year
        )

    def report_stage_durations(
        self, *, level: str | None = None, region: str | None = None, program_id: str | None = None
    ) -> dict[str, Any]:
        """Median and 90th percentile working days spent per stage (completed stays)."""
        return self._report("stage-durations", level=level, region=region, program_id=program_id)

    def report_overdue(
        self, *, level: str | None = None, region: str | None = None, program_id: str | None = None
    ) -> dict[str, Any]:
        """Open applications past their stage's due time, per stage and region; the list
        itself is `iter_grants(overdue=True)`."""
        return self._report("overdue", level=level, region=region, program_id=program_id)

    def report_budgets(
        self, *, region: str | None = None, fiscal_year: int | None = None
    ) -> dict[str, Any]:
        """Per programme: total, reserved, disbursed, available, absorption, and the region's
        part."""
        return self._report("budgets", region=region, fiscal_year=fiscal_year)

    def report_usage_reports(
        self, *, level: str | None = None, region: str | None = None, program_id: str | None = None
    ) -> dict[str, Any]:
        """Disbursed applications whose usage report is in on time, late, overdue or not yet
        due, and the share on time."""
        return self._report("usage-reports", level=level, region=region, program_id=program_id)

    def report_decisions(
        self, *, level: str | None = None, region: str | None = None, program_id: str | None = None
    ) -> dict[str, Any]:
        """Approval, rejection and return rates from the applications' history."""
        return self._report("decisions", level=level, region=region, program_id=program_id)

    def _report(self, name: str, **params: Any) -> dict[str, Any]:
        given = {key: value for key, value in params.items() if value is not None}
        return self._http.json(SERVICE, "GET", f"{REPORTS}/{name}", params=given)

    def _etag(self, path: str, version: int | None) -> str:
        if version is not None:
            return if_match(version)
        return self._http.etag(SERVICE, path)
