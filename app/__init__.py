"""The ticket-drop app: create_app() builds it in one named step per concern."""

from flask import Flask, request, session
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from app import accounts, cli, config, i18n, logs
from app.extensions import csrf, init_db, redis_store
from app.web import (
    SECURITY_HEADERS,
    admin,
    admin_api,
    api,
    auth,
    booking,
    errors,
    exposition,
    health,
    hsts,
    identity,
    lang,
    observe,
    openapi,
    pages,
)
from app.web.hot_path import HotPath
from app.web.limits import limiter


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=config.instance_path())
    configure(app, test_config)
    init_extensions(app)
    i18n.init_app(app)
    register_blueprints(app)
    errors.register(app)
    identity.init_app(app)
    cli.register(app)
    app.wsgi_app = HotPath(app, app.wsgi_app)
    trust_proxies(app)
    observe.init_app(app)
    return app


def trust_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXIES proxies (nginx: 1), the client's address and
    scheme are the ones those proxies put in X-Forwarded-For/-Proto, so the
    per-IP limits count people, not the proxy. With 0, the headers are
    ignored: anyone could write them."""
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)


def configure(app: Flask, test_config: dict | None) -> None:
    app.config.from_mapping(config.load(app.instance_path, test_config))
    logs.configure(app.config)


def init_extensions(app: Flask) -> None:
    init_db(app)
    redis_store.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    accounts.init_app(app)


class Id(IntegerConverter):
    """<int:...> ids have at most 18 digits (a BIGINT holds them): a longer
    one matches no route (404) instead of overflowing the database driver."""

    regex = r"\d{1,18}"


def register_blueprints(app: Flask) -> None:
    app.url_map.converters["int"] = Id

    @app.before_request
    def body_limit():
        """Also for endpoints that never read their body."""
        if (request.content_length or 0) > app.config["MAX_CONTENT_LENGTH"]:
            raise RequestEntityTooLarge()

    blueprints = (health, auth, pages, lang, booking, api, admin_api, admin, openapi, exposition)
    for blueprint in blueprints:
        app.register_blueprint(blueprint.bp)
    csrf.exempt(api.bp)  # JSON bodies only: see api.json_bodies_only
    csrf.exempt(admin_api.bp)

    @app.after_request
    def security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if strict := hsts(app.config, request.scheme):
            response.headers.setdefault("Strict-Transport-Security", strict)
        # An answer to a logged-in person may show them (seat map, checkout,
        # bookings, the JSON API's answers about them): never stored, not by
        # a shared cache nor by a shared computer's browser. A view the same
        # for everyone says so itself (the waiting page).
        if request.endpoint != "static" and session.get("uid"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
