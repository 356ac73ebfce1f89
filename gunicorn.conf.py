"""gunicorn settings used by `make run`, the benchmarks, and production.

Threads suit this app: a request spends most of its time waiting on Redis or
MySQL, and keep-alive saves a TCP handshake per poll. See BENCHMARKS.md for
the measurements behind the numbers."""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_WORKERS", "2"))
worker_class = os.environ.get("WEB_WORKER_CLASS", "gthread")
threads = int(os.environ.get("WEB_THREADS", "8"))
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG", "-")
