"""The web layer: blueprints (JSON API, htmx pages, staff pages, health),
the error answers, and the hot path that answers the poll before Flask."""

# Sent with every answer (app/__init__.py for Flask's, hot_path.py for its own).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'self'; "
    "style-src 'self' 'unsafe-inline'",
    "Referrer-Policy": "same-origin",
}
