"""Rules: which event (and stage) tells which audience on which channel, as data."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.notifications.models import Rule, Template
from shared.errors import InvalidInput


def replace_rules(session: Session, rules: list[dict]) -> None:
    """Replace every rule; InvalidInput naming each rule that names no template, repeats
    another's event, stage, audience and channel, or cannot be kept as written."""
    problems, seen = [], set()
    for i, rule in enumerate(rules):
        key = (rule["event_type"], rule["stage"], rule["audience"], rule["channel"])
        if key in seen:
            problems.append({"field": f"rules.{i}", "message": "a second rule for this"})
        seen.add(key)
        if rule["stage"] is not None and rule["event_type"] != "grant.stage_changed":
            problems.append({"field": f"rules.{i}.stage", "message": "only for stage changes"})
        if rule["audience"] == "office_mailbox" and rule["channel"] != "email":
            problems.append({"field": f"rules.{i}.channel", "message": "mailboxes get email"})
        exists = session.scalar(
            select(Template.id).where(
                Template.key == rule["template_key"], Template.channel == rule["channel"]
            )
        )
        if exists is None:
            problems.append({"field": f"rules.{i}.template_key", "message": "no such template"})
    if problems:
        raise InvalidInput("Some rules cannot be kept.", errors=problems)
    session.execute(delete(Rule))
    session.add_all(Rule(**rule) for rule in rules)
