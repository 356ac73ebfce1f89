"""Account pages: register, log in, log out (forms with CSRF, work without JS)."""

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from pydantic import ValidationError

from app import accounts
from app.errors import AppError
from app.web import identity
from app.web.limits import (
    login_limited,
    note_failed_login,
    password_change_limited,
    register_limited,
)
from app.web.schemas import ChangePassword, Login, Register, first_problem

bp = Blueprint("auth", __name__, url_prefix="/auth")


@bp.route("/register", methods=["GET", "POST"])
@register_limited
def register():
    if request.method == "POST":
        try:
            body = Register.model_validate(request.form.to_dict())
            user = accounts.register(body.email, body.password, body.name)
        except ValidationError as e:
            flash(_form_error(e), "error")
        except AppError as e:
            flash(e.message, "error")
        else:
            identity.login(user)
            flash(gettext("Welcome! Your account is ready."), "info")
            return redirect(_safe_next())
    return render_template("auth/register.html", **_form_again())


@bp.route("/login", methods=["GET", "POST"])
@login_limited
def login():
    if request.method == "POST":
        try:
            body = Login.model_validate(request.form.to_dict())
            user = accounts.authenticate(body.email, body.password)
        except ValidationError:
            flash(gettext("Wrong email or password."), "error")
        except AppError as e:
            if e.status == 401:
                note_failed_login()
            flash(e.message, "error")
        else:
            identity.login(user)
            return redirect(_safe_next(staff=user.is_staff))
    return render_template("auth/login.html", **_form_again())


@bp.get("/links")
def links():
    """The header's account links for the person asking: the cacheable
    waiting page loads them (htmx), and a login goes back to that page."""
    page = urlsplit(request.headers.get("HX-Current-URL", "")).path
    back = same_site_path(page) if page else None
    response = make_response(render_template("auth/_account_links.html", back=back))
    response.headers["Cache-Control"] = "no-store"
    response.vary.add("Cookie")
    return response


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    if request.method == "POST":
        identity.logout()
        flash(gettext("You are logged out."), "info")
        return redirect(url_for("pages.index"))
    return render_template("auth/logout.html")


@bp.route("/password", methods=["GET", "POST"])
@identity.page_login_required
@password_change_limited
def password():
    if request.method == "POST":
        try:
            body = ChangePassword.model_validate(request.form.to_dict())
            identity.change_password(body.current_password, body.new_password)
        except ValidationError as e:
            flash(_form_error(e), "error")
        except AppError as e:
            if e.status == 401:
                note_failed_login()
            flash(e.message, "error")
        else:
            flash(gettext("Your password is changed; other devices are signed out."), "info")
            return redirect(url_for("booking.my_bookings"))
    return render_template("auth/password.html", email=session.get("email", ""))


def _form_again() -> dict:
    """What a login or register form keeps when it comes back refused:
    where the person was going, the email and name (never a password)."""
    form = request.form
    return {
        "next": form.get("next") or request.args.get("next", ""),
        "email": form.get("email", "")[:254],
        "name": form.get("name", "")[:100],
    }


def _safe_next(staff: bool = False) -> str:
    """Where to go after logging in: the page the person came from, else
    the home page (the staff pages for staff)."""
    target = request.form.get("next") or request.args.get("next")
    if not target and staff:
        return url_for("admin.index")
    return same_site_path(target or "")


def same_site_path(target: str) -> str:
    """Only same-site paths, so a crafted link cannot send people elsewhere:
    no scheme or host, and no "//" or "/\\" that a browser reads as another
    host; anything else is the home page."""
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target[1:2] in ("/", "\\")
        or any(ord(c) < 32 for c in target)
    ):
        return url_for("pages.index")
    return target


FIELDS = {
    "email": _l("Email"),
    "password": _l("Password"),
    "name": _l("Name"),
    "current_password": _l("Current password"),
    "new_password": _l("New password"),
}


def _form_error(e: ValidationError) -> str:
    where, what = first_problem(e)
    field = where.split(".")[0]
    return gettext("%(field)s: %(problem)s.", field=FIELDS.get(field, field), problem=what)
