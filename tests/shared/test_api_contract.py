"""Every route of every service, fuzzed from its own OpenAPI document (schemathesis, in
process), by callers of several roles and regions: whatever a client sends, no 5xx, and
every response conforms to the document. New routes are fuzzed as soon as they exist."""

from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from shared.auth import issue_token

from support import JWT_SECRET

SERVICES = ("registry", "grants", "notifications")
# Callers of several roles and reaches: nationwide, a province, a city.
CALLERS = {
    "admin_nationwide": ("admin", "*"),
    "verifikator_province": ("verifikator", "64"),
    "pendamping_city": ("pendamping", "6472"),
    "auditor_city": ("auditor", "6472"),
}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
# Enough examples per operation and caller to reach the validation paths; the suite runs on
# every change, so it stays small (raise it locally with KUBE_FUZZ_EXAMPLES=200).
EXAMPLES = settings(
    max_examples=int(os.environ.get("KUBE_FUZZ_EXAMPLES", "10")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_answers_as_documented(apps, service, caller):
    role, region = CALLERS[caller]
    token = issue_token(JWT_SECRET, sub=f"fuzz-{role}", roles=[role], region=region)
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_wsgi("/openapi.json", apps[service])
    failures, statuses = [], Counter()
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @EXAMPLES
        def answers_as_documented(case):
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses[response.status_code] += 1

        try:
            answers_as_documented()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    # The fuzzer reached the routes, not only their validation.
    assert sum(statuses.values()) >= 10 * len(list(schema.get_all_operations())) // 2, statuses
    print(service, caller, dict(sorted(statuses.items())))
