"""One error type for every refusal the product makes on purpose.

Modules raise AppError (an HTTP status, a stable code, a message); the web
layer (app/web/errors.py) answers it. Messages may be lazy: they are put
into words in the reader's language when answered (English outside a
request: jobs, the command line); the code is the same in every language.
"""

from flask_babel import lazy_gettext as _l


class AppError(Exception):
    """A refusal: HTTP status, a stable code, and a message for people. The
    message may be lazy (lazy_gettext), made before anyone knows who will
    read it; `message` puts it into words in the reader's language."""

    def __init__(self, status: int, code: str, message, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self._message = status, code, message
        self.headers = headers or {}

    @property
    def message(self) -> str:
        return str(self._message)


NOT_FOUND = {
    "event": _l("No such event."),
    "seat": _l("No such seat."),
    "language": _l("No such language: choose English (en) or Korean (ko)."),
}


def not_found(what: str = "event") -> AppError:
    return AppError(404, "not_found", NOT_FOUND[what])
