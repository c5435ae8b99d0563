"""The walk-through `make run` prints: its steps follow the shipped regional route from
`submitted` to `closed`, each taken by a role the route admits, and its curl script is valid
bash that sends If-Match on every change. (.ci/smoke.py runs it against `make run`.)"""

from __future__ import annotations

import json
import subprocess
from datetime import date

import jwt

from kube.walkthrough import PEOPLE, curl_script, role_tokens, steps

from support import JWT_SECRET, ROOT

GRANT = {"id": "0b4c2f4e-9d1c-4a57-9a70-1c1f7e0f2a11", "amount": 10_000_000, "stage": "submitted"}
DOCUMENTS = ["ktp", "kk", "business_plan"]


def _regional_route() -> dict:
    versions = (ROOT / "services/grants/workflows").glob("regional-*.json")
    newest = max(versions, key=lambda path: int(path.stem.rsplit("-", 1)[1]))
    return json.loads(newest.read_text())


def test_the_steps_follow_the_regional_route_from_submitted_to_closed():
    route = {(t["from"], t["action"]): t for t in _regional_route()["transitions"]}
    stage = "submitted"
    for step in steps(GRANT, DOCUMENTS, date(2026, 11, 29)):
        transition = route.get((stage, step.action))
        assert transition is not None, f"no {step.action!r} from {stage!r}"
        assert step.role in transition["roles"], (step.role, transition["roles"])
        stage = transition["to"]
    assert stage == "closed"


def test_each_role_has_its_own_person_and_the_provinces_region():
    tokens = role_tokens(JWT_SECRET, hours=1)
    subs = set()
    for role, token in tokens.items():
        claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
        assert claims["roles"] == [role]
        assert claims["region"] == ("*" if role == "admin" else "64")
        subs.add(claims["sub"])
    assert len(subs) == len(PEOPLE) + 1  # separation of duties: no one takes two steps' roles


def test_the_curl_script_is_bash_and_sends_if_match_on_every_change(tmp_path):
    urls = {s: f"http://127.0.0.1:{p}" for s, p in (("grants", 5002), ("notifications", 5003))}
    script = curl_script(urls, role_tokens(JWT_SECRET, hours=1), GRANT, DOCUMENTS)
    path = tmp_path / "walkthrough.sh"
    path.write_text(script)
    subprocess.run(["bash", "-n", str(path)], check=True)
    changes = [line for line in script.splitlines() if "-X POST" in line]
    assert len(changes) == len(steps(GRANT, DOCUMENTS, date.today()))
    assert all("If-Match" in line for line in changes)
