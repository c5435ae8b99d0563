"""`kube walkthrough`: one demo application taken from submission to closure through the
Python client (clients/python), each step by the person whose role takes it, printing what
each step did and the SMS and emails the group received. `make run` prints how to start it,
the tokens it uses, and the same steps as curl commands (.local/walkthrough.sh)."""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from shared.timezones import zone_of
from shared.tokens import issue_token

PROVINCE = "64"  # the demo's province, Kalimantan Timur (services/*/demo.py)
# One person per role, as the demo data's own (services/grants/demo.py): separation of
# duties holds, since no one approves what they verified.
PEOPLE = {
    "pendamping": "demo-pendamping",
    "verifikator": "demo-verifikator",
    "kepala_dinas": "demo-kepala-dinas",
    "bendahara": "demo-bendahara",
    "auditor": "demo-auditor",
}
TOKEN_HOURS = 8
# How long the walk-through waits for the group's messages after the last step.
MESSAGES_WAIT_SECONDS = 30


def role_tokens(secret: str, *, hours: int = TOKEN_HOURS) -> dict[str, str]:
    """A token per role for the demo's province, and a nationwide admin's."""
    tokens = {
        role: issue_token(secret, sub=sub, roles=[role], region=PROVINCE, ttl_seconds=hours * 3600)
        for role, sub in PEOPLE.items()
    }
    tokens["admin"] = issue_token(
        secret, sub="local-admin", roles=["admin"], region="*", ttl_seconds=hours * 3600
    )
    return tokens


@dataclass(frozen=True)
class Step:
    """One action on the application: who takes it, and the data it needs."""

    role: str
    action: str
    data: dict
    comment: str | None = None


def steps(grant: dict, documents: list[str], today: date) -> list[Step]:
    """The regional route from `submitted` to `closed` (docs/grants.md, "The routes")."""
    amount = grant["amount"]
    stamp = f"{today:%Y%m%d}"
    return [
        Step(
            "verifikator",
            "verify",
            {
                "checklist": dict.fromkeys(documents, True),
                "minutes_number": f"BA-901/VERVAL/DINSOS/{today.year}",
            },
        ),
        Step(
            "kepala_dinas",
            "approve",
            {"decree_number": f"400.9/0901/DINSOS/{today.year}", "decree_date": today.isoformat()},
        ),
        Step(
            "bendahara",
            "disburse",
            {
                "transfer_reference": f"TRF{stamp}90001",
                "transfer_date": today.isoformat(),
                "amount": amount,
            },
        ),
        Step(
            "pendamping",
            "report",
            {"spent_amount": amount, "report_date": today.isoformat(), "receipts": 3},
        ),
        Step("verifikator", "accept_report", {}),
        Step(
            "pendamping",
            "monitor",
            {
                "business_status": "running",
                "visit_date": today.isoformat(),
                "findings": "Usaha berjalan; pembukuan kelompok rapi.",
            },
        ),
        Step("kepala_dinas", "close", {}, comment="Program selesai sesuai rencana."),
    ]


def _client(urls: Mapping[str, str], token: str):
    from kube_client import KubeClient

    return KubeClient(
        registry=urls["registry"],
        grants=urls["grants"],
        notifications=urls["notifications"],
        token=token,
    )


def find_submitted_grant(urls: Mapping[str, str], tokens: Mapping[str, str]) -> dict | None:
    """The demo's regional application waiting at `submitted`, if there is one."""
    auditor = _client(urls, tokens["auditor"])
    for grant in auditor.grants.iter_grants(stage="submitted", region=PROVINCE):
        if grant["workflow"]["key"] == "regional":
            return grant
    return None


def route_documents(urls: Mapping[str, str], tokens: Mapping[str, str], key: str) -> list[str]:
    """The documents the verifier's checklist must tick on the route `key`."""
    admin = _client(urls, tokens["admin"])
    for workflow in admin.request("grants", "GET", "/api/v1/workflows").json():
        if workflow["key"] == key and workflow["latest"]:
            return list(workflow["definition"]["documents"])
    raise LookupError(f"no route {key!r} in the grant service")


def run(urls: Mapping[str, str], secret: str, *, out=print) -> dict:
    """Take the demo's submitted application to `closed`; the final application."""
    tokens = role_tokens(secret, hours=1)
    grant = find_submitted_grant(urls, tokens)
    if grant is None:
        raise LookupError(
            "No regional application is waiting at `submitted` in the demo data (has the "
            "walk-through run already? `make run` seeds a new one on an empty database)."
        )
    documents = route_documents(urls, tokens, "regional")
    today = datetime.now(zone_of(PROVINCE)).date()
    started = datetime.now().astimezone()
    out(f"Application {grant['id']} of {grant['group_name']}: {grant['stage']}")
    for step in steps(grant, documents, today):
        person = _client(urls, tokens[step.role])
        grant = person.grants.transition(
            grant["id"], step.action, comment=step.comment, data=step.data
        )
        out(f"  {step.role:<13} {step.action:<14} -> {grant['stage']}")
    _show_messages(urls, tokens, grant, started, out)
    return grant


def _show_messages(urls, tokens, grant: dict, since: datetime, out) -> None:
    """The messages the application's steps caused, once delivered (bounded wait)."""
    reader = _client(urls, tokens["auditor"])
    deadline = time.monotonic() + MESSAGES_WAIT_SECONDS
    while True:
        messages = [
            m
            for m in reader.notifications.iter_messages(grant_id=grant["id"])
            if m["created_at"] >= since.isoformat()
        ]
        # Wait for what is due now or soon; a message held longer (quiet hours, where they
        # are on) is shown as queued with the time it is due.
        soon = (datetime.now().astimezone() + timedelta(seconds=MESSAGES_WAIT_SECONDS)).isoformat()
        pending = [
            m
            for m in messages
            if m["status"] == "sending"
            or (m["status"] == "queued" and (m.get("send_after") or "") <= soon)
        ]
        if (messages and not pending) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    out(f"Messages to the group about it ({len(messages)}):")
    for message in sorted(messages, key=lambda m: m["created_at"]):
        text = (message.get("subject") or message["body"]).splitlines()[0][:70]
        status = message["status"]
        if status == "queued" and message.get("send_after"):
            status = f"queued, due {message['send_after'][:16]}"
        out(f"  {message['channel']:<5} {status:<9} {message['recipient']:<18} {text}")


def curl_script(urls: Mapping[str, str], tokens: Mapping[str, str], grant: dict, documents) -> str:
    """The walk-through as curl commands (bash), for .local/walkthrough.sh."""
    today = datetime.now(zone_of(PROVINCE)).date()
    base = urls["grants"]
    lines = [
        "#!/usr/bin/env bash",
        "# The demo's submitted application taken to `closed` with curl, one role per step.",
        "# Each change sends If-Match with the version read just before it.",
        "set -euo pipefail",
        *(f"{role.upper()}={shlex.quote(token)}" for role, token in tokens.items()),
        f"GRANT={grant['id']}",
        f"API={base}/api/v1",
        'version() { curl -sf -H "Authorization: Bearer $1" "$API/grants/$GRANT" '
        "| python3 -c 'import json, sys; print(json.load(sys.stdin)[\"version\"])'; }",
    ]
    for step in steps(grant, documents, today):
        body = {"action": step.action, "comment": step.comment, "data": step.data}
        token = f"${step.role.upper()}"
        lines += [
            f"echo '== {step.role}: {step.action}'",
            f'curl -s --fail-with-body -X POST "$API/grants/$GRANT/transitions" '
            f'-H "Authorization: Bearer {token}" -H "Content-Type: application/json" '
            f'-H "If-Match: \\"$(version {token})\\"" '
            f"-d {shlex.quote(_json(body))} "
            f"| python3 -c {shlex.quote(_SHOW_STAGE)}",
        ]
    lines += [
        "echo '== the messages about it'",
        f'curl -sf -H "Authorization: Bearer $AUDITOR" '
        f'"{urls["notifications"]}/api/v1/messages?grant_id=$GRANT&page_size=100" '
        "| python3 -c 'import json, sys; "
        '[print("  ", m["channel"], m["status"], m["recipient"]) '
        'for m in json.load(sys.stdin)["items"]]\'',
    ]
    return "\n".join(lines) + "\n"


# Prints the stage an action reached, or the problem that refused it.
_SHOW_STAGE = (
    "import json, sys; answer = json.load(sys.stdin); "
    "print('   stage:', answer['stage']) if 'stage' in answer "
    "else sys.exit('   refused: ' + answer.get('title', '') + ': ' + answer.get('detail', ''))"
)


def _json(value) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def announce(urls: Mapping[str, str], secret: str, local: Path) -> str:
    """What `make run` prints after the demo data: the tokens per role, and how to walk one
    application to closure (kube walkthrough, or the curl script it writes)."""
    tokens = role_tokens(secret)
    (local / "tokens.env").write_text(
        "".join(f"export KUBE_TOKEN_{r.upper()}={shlex.quote(t)}\n" for r, t in tokens.items())
    )
    (local / "tokens.env").chmod(0o600)
    lines = [f"Tokens ({TOKEN_HOURS} hours; also in .local/tokens.env as KUBE_TOKEN_<ROLE>):"]
    lines += [f"  {role:<13} {token}" for role, token in tokens.items()]
    grant = find_submitted_grant(urls, tokens)
    if grant is None:
        lines.append("No demo application waits at `submitted`: no walk-through this time.")
        return "\n".join(lines)
    script = local / "walkthrough.sh"
    script.write_text(curl_script(urls, tokens, grant, route_documents(urls, tokens, "regional")))
    script.chmod(0o700)
    lines += [
        "",
        f"Walk-through: {grant['group_name']}'s application ({grant['id']}) is waiting at "
        "`submitted`. Take it to `closed`",
        "  with the Python client:  .venv/bin/kube walkthrough   (in another terminal)",
        "  or with curl:            bash .local/walkthrough.sh",
        "Each step is taken by its own role (verify, approve, disburse, report, accept_report, "
        "monitor, close);",
        "the SMS and emails it causes appear in .local/sms/sent.jsonl and .local/mail/.",
    ]
    return "\n".join(lines)
