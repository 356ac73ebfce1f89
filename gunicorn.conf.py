"""gunicorn settings, for when WEB_SERVER=gunicorn (granian is the default:
BENCHMARKS.md figure 1 has the two side by side). The same settings as
granian's, from app/config.py's server(): HOST, PORT, WEB_WORKERS,
WEB_THREADS (gthread workers), ACCESS_LOG."""

import os

from app.config import server

_settings = server(os.environ)
bind = f"{_settings['HOST']}:{_settings['PORT']}"
workers = _settings["WEB_WORKERS"]
worker_class = "gthread"
threads = _settings["WEB_THREADS"]
keepalive = 5
reuse_port = True
accesslog = "-" if _settings["ACCESS_LOG"] else None
