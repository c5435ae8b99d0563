"""`GET /metrics`: Prometheus text from every service's real app, with its gauges read from
its real PostgreSQL and Redis, and the request counters of every gunicorn worker summed."""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import timedelta

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from kube.catalogue import app_target
from kube.localinfra import free_port
from kube.localrun import gunicorn_command
from shared.config import load_settings
from shared.db import utcnow

from support import ROOT, wait_until

SERVICES = ("registry", "grants", "notifications")
NIK = "6472015507900003"
PHONE = "+6281234567890"
REGION = "6472011001"


def scrape(client, **headers) -> dict[str, dict[tuple, float]]:
    """The samples of a scrape: {sample name: {sorted label pairs: value}}."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return samples_of(response.get_data(as_text=True))


def samples_of(text: str) -> dict[str, dict[tuple, float]]:
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


@pytest.mark.parametrize("service", SERVICES)
def test_metrics_answer_in_prometheus_text_format_without_a_token(clients, service):
    samples = scrape(clients[service])
    assert value(samples, "kube_dependency_up", service=service, dependency="database") == 1
    assert value(samples, "kube_dependency_up", service=service, dependency="redis") == 1
    queue = load_settings(service).queue
    assert (("queue", queue), ("service", service)) in samples["kube_celery_queue_length"]
    for name in (
        "kube_outbox_unpublished_events",
        "kube_outbox_oldest_unpublished_age_seconds",
        "kube_dead_letters_pending",
        "kube_event_retries_pending",
    ):
        assert (("service", service),) in samples[name], name


@pytest.mark.parametrize("service", SERVICES)
def test_metrics_are_not_in_the_openapi_document(clients, service):
    document = clients[service].get("/openapi.json").json
    assert "/metrics" not in document["paths"]


def test_request_counters_grow_by_route_template_never_the_raw_path(clients, auth):
    group_id = uuid.uuid4()
    route = "/api/v1/groups/<uuid:group_id>"
    labels = dict(service="registry", method="GET", route=route, status="404")
    before = scrape(clients["registry"])
    for _ in range(2):
        answer = clients["registry"].get(f"/api/v1/groups/{group_id}", headers=auth())
        assert answer.status_code == 404
    clients["registry"].get(f"/no-such-page/{NIK}")
    after = scrape(clients["registry"])

    assert value(after, "kube_http_requests_total", **labels) == (
        value(before, "kube_http_requests_total", **labels) + 2
    )
    timed = dict(service="registry", method="GET", route=route)
    assert value(after, "kube_http_request_duration_seconds_count", **timed) >= 2
    assert value(after, "kube_http_request_duration_seconds_bucket", **timed, le="+Inf") >= 2
    unmatched = dict(service="registry", method="GET", route="unmatched", status="404")
    assert value(after, "kube_http_requests_total", **unmatched) >= 1
    text = clients["registry"].get("/metrics").get_data(as_text=True)
    assert str(group_id) not in text and NIK not in text


def test_an_unpublished_outbox_event_shows_with_its_age(apps, clients):
    context = apps["grants"].extensions["kube"]
    before = scrape(clients["grants"])
    with context.db.transaction() as session:
        session.add(
            context.tables.outbox(
                id=uuid.uuid4(),
                event_type="grant.stage_changed",
                envelope={"payload": {}},
                created_at=utcnow() - timedelta(minutes=10),
            )
        )
    after = scrape(clients["grants"])

    assert value(after, "kube_outbox_unpublished_events", service="grants") == (
        value(before, "kube_outbox_unpublished_events", service="grants") + 1
    )
    age = value(after, "kube_outbox_oldest_unpublished_age_seconds", service="grants")
    assert age >= 600


def test_a_dead_letter_shows_and_no_personal_data_or_region_appears(apps, clients, auth):
    consumer = apps["notifications"].extensions["kube"].consumer
    before = scrape(clients["notifications"])
    envelope = {
        "id": str(uuid.uuid4()),
        "type": "member.added",
        "payload": {"group": {"region_code": REGION}, "nik": NIK, "phone": PHONE},
    }
    consumer.dead_letter(envelope, RuntimeError(f"bad phone {PHONE}"), attempts=3)
    # Requests whose paths and queries carry personal data and a region.
    clients["notifications"].get(f"/api/v1/recipients?phone={PHONE}", headers=auth())
    clients["registry"].get(f"/api/v1/members?nik={NIK}", headers=auth())
    clients["registry"].get(f"/api/v1/groups?region_code={REGION}", headers=auth())

    after = scrape(clients["notifications"])
    assert value(after, "kube_dead_letters_pending", service="notifications") == (
        value(before, "kube_dead_letters_pending", service="notifications") + 1
    )
    for service in SERVICES:
        text = clients[service].get("/metrics").get_data(as_text=True)
        assert NIK not in text and PHONE not in text and PHONE[3:] not in text
        label_values = {
            v for series in samples_of(text).values() for labels in series for _, v in labels
        }
        assert not [v for v in label_values if REGION[:4] in v or v == "64"], label_values


def test_a_consumers_event_lag_shows_per_producer(apps, clients):
    context = apps["grants"].extensions["kube"]
    with context.db.transaction() as session:
        session.merge(
            context.tables.cursors(
                producer="registry",
                unsettled=3,
                checked_at=utcnow() - timedelta(seconds=90),
                error="ConnectionError: registry unreachable",
            )
        )
    samples = scrape(clients["grants"])
    labels = dict(service="grants", producer="registry")
    assert value(samples, "kube_event_feed_unsettled", **labels) == 3
    assert value(samples, "kube_event_feed_checked_age_seconds", **labels) >= 90
    assert value(samples, "kube_event_feed_failing", **labels) == 1


def test_a_redis_outage_still_scrapes_with_redis_reported_down(platform_env):
    from services.notifications import create_app

    app = create_app(load_settings("notifications", redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    try:
        samples = scrape(app.test_client())
    finally:
        app.extensions["kube"].db.dispose()
    up = dict(service="notifications")
    assert value(samples, "kube_dependency_up", **up, dependency="redis") == 0
    assert value(samples, "kube_dependency_up", **up, dependency="database") == 1
    assert "kube_celery_queue_length" not in samples
    assert (("service", "notifications"),) in samples["kube_outbox_unpublished_events"]


def test_a_database_outage_still_scrapes_with_the_database_reported_down(platform_env):
    from services.grants import create_app

    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    app = create_app(load_settings("grants", database_url=dead))
    try:
        samples = scrape(app.test_client())
    finally:
        app.extensions["kube"].db.dispose()
    assert value(samples, "kube_dependency_up", service="grants", dependency="database") == 0
    assert value(samples, "kube_dependency_up", service="grants", dependency="redis") == 1
    assert "kube_outbox_unpublished_events" not in samples


def test_a_metrics_token_when_set_is_required_as_a_bearer_token(platform_env):
    from services.grants import create_app

    secret = "metrics-" + uuid.uuid4().hex
    app = create_app(load_settings("grants", metrics_token=secret))
    client = app.test_client()
    try:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 401
        assert wrong.mimetype == "application/problem+json"
        samples = scrape(client, Authorization=f"Bearer {secret}")
        assert value(samples, "kube_dependency_up", service="grants", dependency="redis") == 1
    finally:
        app.extensions["kube"].db.dispose()


@pytest.mark.e2e
def test_every_gunicorn_worker_counts_into_one_scrape(platform_env, tmp_path):
    """Under gunicorn with two workers, any worker's scrape sums every worker's requests."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # Left by an earlier run: gunicorn clears it at start, or its counts would add up.
    (metrics_dir / "counter_1.db").write_bytes(b"stale")
    env = {**os.environ, **platform_env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    argv = gunicorn_command(app_target("notifications"), f"127.0.0.1:{port}", workers=2)
    counted = dict(service="notifications", method="GET", route="/readyz", status="200")
    sent = 0

    def both_workers_answered() -> bool:
        nonlocal sent
        # A new connection each time, so either worker may take it.
        answer = requests.get(f"{url}/readyz", timeout=10, headers={"Connection": "close"})
        assert answer.status_code == 200
        sent += 1
        return len(list(metrics_dir.glob("counter_*.db"))) == 2

    with open(tmp_path / "gunicorn.log", "w") as log:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: _answers(f"{url}/healthz"), timeout=60, interval=0.3)
            wait_until(both_workers_answered, timeout=60, interval=0)
            for _ in range(6):
                response = requests.get(f"{url}/metrics", timeout=10)
                assert response.status_code == 200
                samples = samples_of(response.text)
                assert value(samples, "kube_http_requests_total", **counted) == sent
        finally:
            process.terminate()
            process.wait(20)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
