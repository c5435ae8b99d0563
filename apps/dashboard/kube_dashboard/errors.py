"""Every failure as a readable page: an API's problem, a dead service, a bad parameter, a
stale form. Never a trace; an expired or refused token goes back to sign-in."""

from __future__ import annotations

import logging

from flask import Flask, flash, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from kube_client import ProblemError, TransportError
from kube_dashboard.i18n import translate
from kube_dashboard.pages import BadParameter
from kube_dashboard.signin import language

log = logging.getLogger("kube_dashboard")

# API statuses shown as they are; any other failure of a service is a 502 here.
PASSED_ON = frozenset({400, 403, 404, 409, 422})


def _page(status: int, message_id: str, **details):
    return render_template("error.html", status=status, message_id=message_id, **details), status


def register(app: Flask) -> None:
    @app.errorhandler(ProblemError)
    def api_problem(problem: ProblemError):
        if problem.status == 401:
            session.pop("token", None)
            flash(translate("session_expired", language()), "error")
            return redirect(url_for("signin.sign_in", next=request.full_path.rstrip("?")))
        status = problem.status if problem.status in PASSED_ON else 502
        message_id = {403: "error_403", 404: "error_404", 422: "error_422"}.get(
            problem.status, "error_other"
        )
        if status == 502:
            log.warning("API problem on %s: %s", request.path, problem)
        return _page(
            status,
            message_id,
            title=problem.title,
            detail=problem.detail,
            fields=problem.errors,
            request_id=problem.request_id,
        )

    @app.errorhandler(TransportError)
    def unreachable(error: TransportError):
        log.warning("API unreachable on %s: %s", request.path, error)
        return _page(503, "error_unavailable")

    @app.errorhandler(BadParameter)
    def bad_parameter(error: BadParameter):
        return _page(
            400, "error_400", fields={error.field: [translate(error.message_id, language())]}
        )

    @app.errorhandler(CSRFError)
    def stale_form(_error: CSRFError):
        return _page(400, "error_csrf")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        known = {400, 403, 404, 405}
        return _page(status, f"error_{status}" if status in known else "error_other")

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("Unexpected error on %s", request.path, exc_info=error)
        return _page(500, "error_other")
