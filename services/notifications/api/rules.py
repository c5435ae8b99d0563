"""/api/v1/rules and /api/v1/templates: who hears what, and in which words."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from sqlalchemy import select

from services.notifications.models import Rule, Template
from services.notifications.rules import replace_rules
from services.notifications.schemas import (
    PreviewInput,
    PreviewSchema,
    RulesSchema,
    TemplateInput,
    TemplateQuerySchema,
    TemplateSchema,
)
from services.notifications.templates import (
    current_version,
    find_template,
    preview,
    save_version,
)
from shared.api import Blueprint
from shared.auth import current_principal
from shared.http import commit_with_response, current_context
from shared.pagination import page_of, paginate
from shared.tokens import READERS

rules_blp = Blueprint(
    "rules",
    __name__,
    url_prefix="/api/v1/rules",
    description="Which event tells which audience on which channel, with which template.",
)
templates_blp = Blueprint(
    "templates",
    __name__,
    url_prefix="/api/v1/templates",
    description="Message templates (Jinja2), one per key, channel and language; versioned.",
)

RULE_FIELDS = ("event_type", "stage", "audience", "channel", "template_key", "critical", "enabled")


def rules_view() -> dict:
    session = current_context().db.session
    rules = session.scalars(select(Rule).order_by(Rule.id))
    return {"rules": [{k: getattr(r, k) for k in RULE_FIELDS} for r in rules]}


@rules_blp.route("")
class Rules(MethodView):
    @rules_blp.response(200, RulesSchema)
    @rules_blp.operation("list_rules", roles=READERS)
    def get(self):
        """The rules, as data."""
        return rules_view()

    @rules_blp.arguments(RulesSchema)
    @rules_blp.response(200, RulesSchema)
    @rules_blp.operation(
        "replace_rules",
        roles=("admin",),
        nationwide="The message rules are every region's",
    )
    def put(self, data):
        """Replace every rule (events from now on follow the new ones). Each names an existing
        template, and no event and stage has two rules for one audience and channel."""
        replace_rules(current_context().db.session, data["rules"])
        commit_with_response()
        return rules_view()


def template_view(template: Template) -> dict:
    version = current_version(current_context().db.session, template)
    return {
        "id": template.id,
        "key": template.key,
        "channel": template.channel,
        "language": template.language,
        "version": template.version,
        "subject": version.subject,
        "body": version.body,
        "updated_at": template.updated_at,
    }


@templates_blp.route("")
class Templates(MethodView):
    @templates_blp.arguments(TemplateQuerySchema, location="query")
    @templates_blp.response(200, page_of(TemplateSchema))
    @templates_blp.operation("list_templates", roles=READERS)
    def get(self, args):
        """List templates with their current text (filters: key, channel, language)."""
        statement = select(Template).order_by(Template.key, Template.channel, Template.language)
        for key in ("key", "channel", "language"):
            if args.get(key):
                statement = statement.where(getattr(Template, key) == args[key])
        page = paginate(current_context().db.session, statement, args["page"], args["page_size"])
        return {**page, "items": [template_view(t) for t in page["items"]]}


@templates_blp.route("/<uuid:template_id>")
class TemplateById(MethodView):
    @templates_blp.response(200, TemplateSchema)
    @templates_blp.operation("get_template", roles=READERS)
    def get(self, template_id: uuid.UUID):
        """Read a template's current version."""
        return template_view(find_template(current_context().db.session, template_id))

    @templates_blp.arguments(TemplateInput)
    @templates_blp.response(200, TemplateSchema)
    @templates_blp.operation(
        "update_template",
        roles=("admin",),
        nationwide="A template is every region's",
    )
    def put(self, data, template_id: uuid.UUID):
        """Save a new version of a template; one that does not render with the sample data is
        refused (422) now, not when a message is due."""
        session = current_context().db.session
        template = find_template(session, template_id)
        session.refresh(template, with_for_update=True)
        save_version(
            session, template, data["body"], data["subject"], actor=current_principal().sub
        )
        commit_with_response()
        return template_view(template)


@templates_blp.route("/<uuid:template_id>/preview")
class TemplatePreview(MethodView):
    @templates_blp.arguments(PreviewInput)
    @templates_blp.response(200, PreviewSchema)
    @templates_blp.operation("preview_template", roles=READERS)
    def post(self, data, template_id: uuid.UUID):
        """Render a template (or a draft of it) with sample or given data, and say how the SMS
        goes: GSM-7 or UCS-2, its length and its number of parts."""
        session = current_context().db.session
        template = find_template(session, template_id)
        version = current_version(session, template)
        body = data["body"] or version.body
        subject = data["subject"] if data["body"] else version.subject
        return preview(body, subject, template.channel, template.language, data["data"])
