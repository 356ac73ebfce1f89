"""The ticket-drop app: create_app() builds it in one named step per concern."""

import logging
import os

from flask import Flask, request


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or None)
    configure(app, test_config)
    init_extensions(app)
    init_languages(app)
    register_blueprints(app)
    register_errors(app)
    register_cli(app)
    return app


def configure(app: Flask, test_config: dict | None) -> None:
    from app import config

    app.config.from_mapping(config.load(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def init_extensions(app: Flask) -> None:
    from app.extensions import csrf, init_db, redis_store
    from app.web.limits import limiter, storage_uri

    init_db(app)
    redis_store.init_app(app)
    csrf.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage_uri(app.config["REDIS_URL"]))
    timeout = app.config.get("REDIS_TIMEOUT", 3)  # as fast a 503 as the app's own client
    app.config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS", {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    )
    limiter.init_app(app)


def init_languages(app: Flask) -> None:
    from app import i18n

    i18n.init_app(app)


def register_blueprints(app: Flask) -> None:
    from werkzeug.exceptions import RequestEntityTooLarge
    from werkzeug.routing import IntegerConverter

    from app.extensions import csrf
    from app.web import admin, admin_api, api, auth, booking, health, lang, openapi, pages

    class Id(IntegerConverter):
        """<int:...> ids have at most 18 digits (a BIGINT holds them): a longer
        one matches no route (404) instead of overflowing the database driver."""

        regex = r"\d{1,18}"

    app.url_map.converters["int"] = Id

    @app.before_request
    def body_limit():
        """Also for endpoints that never read their body."""
        if (request.content_length or 0) > app.config["MAX_CONTENT_LENGTH"]:
            raise RequestEntityTooLarge()

    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(lang.bp)
    app.register_blueprint(booking.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(admin_api.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(openapi.bp)
    csrf.exempt(api.bp)  # JSON bodies only: see api.json_bodies_only
    csrf.exempt(admin_api.bp)
    if app.config.get("BENCH_ENDPOINTS"):
        from app.web import bench

        app.register_blueprint(bench.bp)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; frame-ancestors 'self'; style-src 'self' 'unsafe-inline'",
        )
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response


def register_errors(app: Flask) -> None:
    from app import errors

    errors.register(app)


def register_cli(app: Flask) -> None:
    from app import cli

    cli.register(app)
