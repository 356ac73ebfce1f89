"""The web layer: blueprints (JSON API, htmx pages, staff pages, health),
the error answers, and the hot path that answers the poll before Flask."""

# Sent with every answer (app/__init__.py for Flask's, hot_path.py for its own).
# The CSP names every fetch directive the pages use, so none falls back to a
# looser default: only our own scripts (no inline ones, no eval), no plugins,
# no <base> (relative URLs cannot be redirected), forms post only to us, and
# only our own pages may frame ours (the waiting page's no-JS status frame).
# Inline styles stay: htmx inserts its indicator style.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'",
    "Referrer-Policy": "same-origin",
}


def hsts(config, scheme: str) -> str | None:
    """Strict-Transport-Security for an answer that went out over HTTPS
    (behind TRUSTED_PROXIES, as their X-Forwarded-Proto says): browsers
    then refuse plain http to this host for HSTS_SECONDS."""
    seconds = config["HSTS_SECONDS"]
    return f"max-age={seconds}" if scheme == "https" and seconds else None
