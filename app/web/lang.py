"""The language switcher: GET /lang/<code>?next=<path> remembers the choice
in the `lang` cookie (it wins over Accept-Language) and goes back to the
page. Only the languages we have, and only same-site paths (no open redirect)."""

from flask import Blueprint, current_app, redirect, request

from app import i18n
from app.errors import not_found
from app.web.auth import same_site_path

bp = Blueprint("lang", __name__)

ONE_YEAR = 365 * 24 * 3600


@bp.get("/lang/<code>")
def switch(code):
    if code not in i18n.LANGUAGES:
        raise not_found("language")
    response = redirect(same_site_path(request.args.get("next", "")))
    response.set_cookie(
        i18n.COOKIE,
        code,
        max_age=ONE_YEAR,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response
