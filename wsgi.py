"""The entry point: the web server serves `wsgi:app` (see the README);
`flask --app wsgi <command>` runs the commands, the worker's and
scheduler's among them (jobs/commands.py)."""

from app import create_app
from jobs import commands

app = create_app()
commands.register(app)
