"""Account pages: register, log in, log out (forms with CSRF, work without JS)."""

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from pydantic import ValidationError

from app import accounts
from app.errors import AppError
from app.web import session as web_session
from app.web.schemas import Login, Register

bp = Blueprint("auth", __name__, url_prefix="/auth")


@bp.route("/register", methods=["GET", "POST"])
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
            web_session.login(user)
            flash("Welcome! Your account is ready.", "info")
            return redirect(_safe_next())
    return render_template("auth/register.html", next=request.args.get("next", ""))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        try:
            body = Login.model_validate(request.form.to_dict())
            user = accounts.authenticate(body.email, body.password)
        except ValidationError:
            flash("Wrong email or password.", "error")
        except AppError as e:
            flash(e.message, "error")
        else:
            web_session.login(user)
            return redirect(_safe_next())
    return render_template("auth/login.html", next=request.args.get("next", ""))


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    if request.method == "POST":
        web_session.logout()
        flash("You are logged out.", "info")
        return redirect(url_for("pages.index"))
    return render_template("auth/logout.html")


def _safe_next() -> str:
    """Only same-site paths, so a crafted link cannot send people elsewhere."""
    target = request.form.get("next") or request.args.get("next") or ""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("pages.index")
    return target


def _form_error(e: ValidationError) -> str:
    first = e.errors()[0]
    field = first["loc"][0] if first["loc"] else "form"
    return f"{str(field).capitalize()}: {first['msg']}."
