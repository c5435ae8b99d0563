"""The pages and their downloads; each is a few lines around one function of pages.py."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from kube_dashboard import i18n, pages
from kube_dashboard.i18n import NONE_SHOWN
from kube_dashboard.signin import client, expired, language, token_claims, user_region
from kube_dashboard.tables import Table, to_csv, to_xlsx

blueprint = Blueprint("views", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@blueprint.before_request
def require_sign_in():
    token = session.get("token")
    if not token:
        return redirect(url_for("signin.sign_in", next=request.full_path.rstrip("?")))
    if expired(token):
        session.pop("token", None)
        flash(i18n.translate("session_expired", language()), "error")
        return redirect(url_for("signin.sign_in", next=request.full_path.rstrip("?")))
    return None


def _region() -> str:
    """The `region` asked for, else the token's own region ("" nationwide)."""
    return pages.region_param(request.args.get("region")) or user_region()


def build(name: str) -> pages.Page:
    """The page `name` for this request's parameters (the view and its downloads share it)."""
    args = request.args
    if name == "ringkasan":
        return pages.overview(client(), _region(), pages.period_param(args.get("hari")))
    if name == "alur":
        return pages.pipeline(client(), _region())
    if name == "anggaran":
        return pages.budgets(client(), _region())
    if name == "pesan":
        return pages.messages(client(), _region(), pages.period_param(args.get("hari")))
    if name == "kelompok":
        return pages.group(client(), _group_id(args.get("id")))
    if name == "bandingkan":
        a = pages.region_param(args.get("a"), "a")
        b = pages.region_param(args.get("b"), "b")
        if not a or not b:
            raise pages.BadParameter("a" if not a else "b", "invalid_region")
        return pages.compare(client(), a, b, pages.period_param(args.get("hari")))
    abort(404)


def _group_id(value: str | None) -> str:
    try:
        return str(UUID(value or ""))
    except ValueError:
        abort(404)


@blueprint.route("/")
def overview():
    return render_template("overview.html", page=build("ringkasan"))


@blueprint.route("/alur")
def pipeline():
    return render_template("pipeline.html", page=build("alur"))


@blueprint.route("/anggaran")
def budgets():
    return render_template("budgets.html", page=build("anggaran"))


@blueprint.route("/pesan")
def messages():
    return render_template("messages.html", page=build("pesan"))


@blueprint.route("/kelompok/<group_id>")
def group(group_id: str):
    page = pages.group(client(), _group_id(group_id))
    return render_template("group.html", page=page)


@blueprint.route("/bandingkan")
def compare():
    if not request.args.get("a") and not request.args.get("b"):
        return render_template("compare.html", page=None, a="", b="")
    page = build("bandingkan")
    return render_template("compare.html", page=page, a=page.extra["a"], b=page.extra["b"])


DOWNLOADABLE = ("ringkasan", "alur", "anggaran", "pesan", "kelompok", "bandingkan")


@blueprint.route("/unduh/<page_name>/<table_name>.<fmt>")
def download(page_name: str, table_name: str, fmt: str):
    if page_name not in DOWNLOADABLE or fmt not in ("csv", "xlsx"):
        abort(404)
    page = build(page_name)
    table = page.tables.get(table_name)
    if table is None:
        abort(404)
    lang = language()
    headers = [i18n.translate(c.label, lang) for c in table.columns]
    stem = "-".join(p for p in ("kube", page_name, table_name, page.region) if p)
    if fmt == "csv":
        body, mimetype = to_csv(table, headers), "text/csv; charset=utf-8"
    else:
        body, mimetype = to_xlsx(table, headers, i18n.translate(table.title, lang)), XLSX
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'},
    )


def download_url(page: pages.Page, table: Table, fmt: str) -> str:
    """The download of a table with the page's own parameters."""
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "token"}
    if page.name == "kelompok":
        args["id"] = page.extra["group"]["id"]
    return url_for("views.download", page_name=page.name, table_name=table.name, fmt=fmt, **args)


def template_helpers() -> dict[str, Any]:
    """Words, number formats and links for every template."""
    lang = language()

    def show(value: Any, kind: str = "text") -> str:
        if kind == "int":
            return i18n.format_number(value, lang)
        if kind == "money":
            return i18n.format_money(value, lang)
        if kind == "pct":
            return i18n.format_pct(value, lang)
        if kind == "date":
            return i18n.format_day(value, lang)
        if kind == "bool":
            return i18n.translate("yes" if value else "no", lang)
        if kind.startswith("code:"):
            return NONE_SHOWN if value is None else i18n.translate(kind[5:] + str(value), lang)
        return NONE_SHOWN if value is None or value == "" else str(value)

    claims = token_claims(session.get("token"))
    roles = claims.get("roles")
    return {
        "_": lambda message_id, **values: i18n.translate(message_id, lang, **values),
        "lang": lang,
        "languages": i18n.LANGUAGES,
        "show": show,
        "download_url": download_url,
        "user": {
            "sub": claims.get("sub"),
            "roles": ", ".join(map(str, roles)) if isinstance(roles, list) else "",
            "region": user_region(),
        },
        "signed_in": bool(session.get("token")),
        "parent_region": pages.parent_region,
        "periods": pages.PERIODS,
        "charts_available": _charts_available(),
    }


def _charts_available() -> bool:
    from pathlib import Path

    static = Path(current_app.static_folder or "")
    return (static / "vendor" / "chart.umd.min.js").is_file()
