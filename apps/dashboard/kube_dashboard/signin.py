"""Sign-in with a bearer token, sign-out, the language switch, and the API client per request."""

from __future__ import annotations

import time
from typing import Any

import jwt
from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from kube_client import KubeClient, ProblemError, Unauthorized
from kube_dashboard.i18n import DEFAULT_LANGUAGE, LANGUAGES

blueprint = Blueprint("signin", __name__)

# A JWT is three base64url parts; anything longer than this is not one of ours.
MAX_TOKEN_LENGTH = 8192


def language() -> str:
    lang = session.get("lang")
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def token_claims(token: str | None) -> dict[str, Any]:
    """The token's claims, read WITHOUT checking the signature: only to show who is signed
    in, to start at their region and to notice expiry early. The APIs check every call."""
    if not token:
        return {}
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def user_region() -> str:
    """The signed-in token's region prefix, "" for a nationwide token."""
    region = str(token_claims(session.get("token")).get("region") or "")
    return "" if region == "*" or not region.isdigit() else region


def expired(token: str | None) -> bool:
    exp = token_claims(token).get("exp")
    return isinstance(exp, int | float) and exp < time.time()


def make_client(token: str) -> KubeClient:
    settings = current_app.extensions["kube_dashboard"]
    return KubeClient(
        registry=settings.registry_url,
        grants=settings.grants_url,
        notifications=settings.notifications_url,
        token=token,
        timeout=settings.api_timeout,
        max_retries=1,
        user_agent="kube-dashboard/0.1",
    )


def client() -> KubeClient:
    """This request's client, with the signed-in user's own token (and no other)."""
    if "kube_client" not in g:
        g.kube_client = make_client(session["token"])
    return g.kube_client


def safe_next(target: str | None) -> str:
    """A redirect target on this site only (no `//host` or absolute URL)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("views.overview")


@blueprint.route("/masuk", methods=["GET", "POST"])
def sign_in():
    lang = language()
    if request.method == "GET":
        # A local sign-in link (`make run` prints one per role) fills the form; the user
        # still presses the button, so signing in always goes through a CSRF-checked POST.
        token = request.args.get("token", "")[:MAX_TOKEN_LENGTH]
        return render_template(
            "signin.html", token=token, next=safe_next(request.args.get("next")), lang=lang
        )
    token = "".join(request.form.get("token", "").split())
    target = safe_next(request.form.get("next"))
    if not token:
        return _refused("token_missing", token, target, 422)
    if len(token) > MAX_TOKEN_LENGTH or expired(token):
        return _refused("token_refused", "", target, 401)
    try:
        # Any read proves the token: the registry answers 401 to one it does not accept.
        make_client(token).request("registry", "GET", "/api/v1/groups", params={"page_size": 1})
    except Unauthorized:
        return _refused("token_refused", "", target, 401)
    except ProblemError as problem:
        if problem.status != 403:  # a role that may not list groups is still signed in
            raise
    kept_language = session.get("lang")
    session.clear()
    session.permanent = True
    session["token"] = token
    if kept_language:
        session["lang"] = kept_language
    return redirect(target)


def _refused(message_id: str, token: str, target: str, status: int):
    from kube_dashboard.i18n import translate

    flash(translate(message_id, language()), "error")
    return (
        render_template("signin.html", token=token, next=target, lang=language()),
        status,
    )


@blueprint.route("/keluar", methods=["POST"])
def sign_out():
    from kube_dashboard.i18n import translate

    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(translate("signed_out", language()), "info")
    return redirect(url_for("signin.sign_in"))


@blueprint.route("/bahasa", methods=["POST"])
def switch_language():
    chosen = request.form.get("lang")
    if chosen in LANGUAGES:
        session["lang"] = chosen
    return redirect(safe_next(request.form.get("next")))


@blueprint.route("/healthz")
def healthz():
    return {"status": "ok"}
