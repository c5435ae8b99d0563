"""What a service contributes, and the start-up checks on it (no server needed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import MetaData

from shared.events.store import EventTables
from shared.service import Service

from support import DATA_KEY, LOOKUP_KEY, ROOT


def _handler(session, payload, envelope):
    pass


def _service(**fields) -> Service:
    tables = EventTables(*[object] * 6)
    return Service(
        name="example",
        default_port=5999,
        metadata=MetaData(),
        tables=tables,
        migrations=Path("."),
        **fields,
    )


def test_a_subscription_without_a_handler_stops_start_up():
    with pytest.raises(RuntimeError, match=r"subscribes to \['group.updated'\] but has no handler"):
        _service(subscribes_to=("group.updated",), handlers={})


def test_a_handler_without_a_subscription_stops_start_up():
    with pytest.raises(RuntimeError, match=r"handlers for \['member.added'\] but does not"):
        _service(subscribes_to=(), handlers={"member.added": _handler})


def test_a_subscription_to_an_undeclared_event_type_stops_start_up():
    with pytest.raises(RuntimeError, match="undeclared event types"):
        _service(subscribes_to=("grant.approved",), handlers={"grant.approved": _handler})


def test_matching_handlers_and_subscriptions_start():
    service = _service(subscribes_to=("group.updated",), handlers={"group.updated": _handler})
    assert service.handlers["group.updated"] is _handler


def test_the_shared_library_names_no_service():
    # `registry=` is prometheus_client's keyword for a collector registry, not the service.
    named = re.compile(r"\b(registry|grants|notifications)\b(?!=)")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / "shared").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if named.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize("service", ["registry", "grants", "notifications"])
def test_a_worker_builds_its_context_without_any_web_code(service):
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",  # never connected to here
        "KUBE_JWT_SECRET": "x" * 32,
        # The registry refuses to start without its data keys.
        "KUBE_DATA_KEYS": DATA_KEY,
        "KUBE_LOOKUP_KEY": LOOKUP_KEY,
    }
    code = (
        f"import sys, services.{service}.worker as w; "
        "from shared.service import task_context; "
        f"assert task_context('{service}').tables.outbox is not None; "
        "web = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('flask', 'flask_smorest', 'werkzeug', 'webargs', 'apispec')); "
        "print(web)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
