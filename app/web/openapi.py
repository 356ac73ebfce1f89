"""GET /api/openapi.json: the JSON API described for outside clients.

Request bodies come from the pydantic models that validate them, so the
document cannot drift from what the endpoints accept.
"""

from flask import Blueprint, jsonify

from app.web import schemas

bp = Blueprint("openapi", __name__)

ERROR = {"$ref": "#/components/schemas/Error"}
QUEUE_STATUS = {"$ref": "#/components/schemas/QueueStatus"}


def _response(description: str, schema: dict | None = None) -> dict:
    body = {"description": description}
    if schema:
        body["content"] = {"application/json": {"schema": schema}}
    return body


def _errors(*codes: int) -> dict:
    return {str(code): _response("error", ERROR) for code in codes}


def _op(
    summary: str,
    ok: tuple[int, str, dict | None],
    *errors: int,
    body: str | None = None,
    params: tuple[str, ...] = (),
    headers: tuple[str, ...] = (),
    optional_body: str | None = None,
    not_modified: bool = False,
) -> dict:
    code, description, schema = ok
    op = {
        "summary": summary,
        "responses": {str(code): _response(description, schema), **_errors(*errors)},
    }
    if not_modified:  # answers carry an ETag; If-None-Match with it while unchanged: 304
        op["responses"]["304"] = _response("not modified since the ETag sent in If-None-Match")
    parameters = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
        for p in params
    ]
    parameters += [
        {"name": h, "in": "header", "required": True, "schema": {"type": "string"}} for h in headers
    ]
    if parameters:
        op["parameters"] = parameters
    if body or optional_body:
        op["requestBody"] = {
            "required": bool(body),
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{body or optional_body}"}
                }
            },
        }
    return op


EVENT = ("event_id",)
SEAT = ("event_id", "seat_id")
OBJECT = {"type": "object"}


def document() -> dict:
    models = [
        schemas.Register,
        schemas.Login,
        schemas.ChangePassword,
        schemas.CreateEvent,
        schemas.UpdateEvent,
        schemas.Checkout,
        schemas.Release,
        schemas.Join,
        schemas.Cancel,
    ]
    components = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    components["Error"] = {
        "type": "object",
        "required": ["error", "message"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    }
    components["QueueStatus"] = {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": ["waiting", "admitted", "sold_out"]},
            "position": {"type": ["integer", "null"]},
            "position_band": {"type": ["object", "null"]},
            "waiting_total": {"type": "integer"},
            "poll_after": {"type": ["number", "null"]},
            "eta_seconds": {"type": ["integer", "null"]},
            "eta_range": {"type": ["object", "null"]},
            "paused": {"type": "boolean"},
            "token": {"type": ["string", "null"]},
            "active_until": {"type": ["integer", "null"]},
            "draw_id": {"type": ["string", "null"]},
            "opens_in": {"type": ["integer", "null"]},
        },
    }
    components["CheckIn"] = {
        "type": "object",
        "required": ["code"],
        "properties": {"code": {"type": "string", "minLength": 1}},
    }
    components["CheckInResult"] = {
        "type": "object",
        "required": ["result"],
        "properties": {
            "result": {"enum": ["valid", "already_used", "revoked", "forged", "other_event"]},
            "ticket_id": {"type": "integer"},
            "seat": {"type": "string"},
            "checked_in_at": {"type": ["string", "null"]},
        },
    }
    nullable_list = {"type": ["array", "null"], "items": {"type": "string"}}
    components["Draw"] = {
        "type": "object",
        "required": ["commitment", "seed", "participants", "order"],
        "properties": {
            "commitment": {"type": ["string", "null"]},
            "seed": {"type": ["string", "null"]},
            "participants": nullable_list,
            "order": nullable_list,
            "drawn_at": {"type": ["string", "null"]},
        },
    }
    components["Cancelled"] = {
        "type": "object",
        "required": ["booking_id", "refunded", "points"],
        "properties": {
            "booking_id": {"type": "integer"},
            "refunded": {"type": "integer"},
            "points": {"type": ["integer", "null"]},
        },
    }
    cancelled = {"$ref": "#/components/schemas/Cancelled"}
    paths = {
        "/api/me/bookings/{booking_id}/cancel": {
            "post": _op(
                "Cancel my booking, or some of its seats, and get the points back",
                (200, "cancelled (also when repeated)", cancelled),
                400,
                401,
                404,
                409,
                415,
                422,
                optional_body="Cancel",
                params=("booking_id",),
            )
        },
        "/api/admin/bookings/{booking_id}/cancel": {
            "post": _op(
                "Cancel a booking, or some of its seats, and refund them (staff)",
                (200, "cancelled (also when repeated)", cancelled),
                400,
                401,
                403,
                404,
                409,
                415,
                422,
                optional_body="Cancel",
                params=("booking_id",),
            )
        },
        "/api/auth/register": {
            "post": _op(
                "Create an account (REGISTER_LIMIT per address)",
                (201, "created", OBJECT),
                400,
                409,
                415,
                422,
                429,
                body="Register",
            )
        },
        "/api/auth/login": {
            "post": _op(
                "Log in (sets the session cookie; LOGIN_LIMIT, LOGIN_FAILURE_LIMIT)",
                (200, "ok", OBJECT),
                400,
                401,
                415,
                422,
                429,
                503,
                body="Login",
            )
        },
        "/api/auth/logout": {"post": _op("Log out", (204, "logged out", None))},
        "/api/me": {"get": _op("Who am I", (200, "ok", OBJECT), 401)},
        "/api/me/password": {
            "post": _op(
                "Change my password (ends every other session)",
                (204, "changed", None),
                400,
                401,
                415,
                422,
                429,
                body="ChangePassword",
            )
        },
        "/api/me/bookings": {"get": _op("My bookings", (200, "ok", {"type": "array"}), 401)},
        "/api/tickets/key": {
            "get": _op("The public key that checks ticket codes (Ed25519)", (200, "ok", OBJECT))
        },
        "/api/events": {"get": _op("Events", (200, "ok", {"type": "array"}))},
        "/api/events/{event_id}": {"get": _op("One event", (200, "ok", OBJECT), 404, params=EVENT)},
        "/api/events/{event_id}/draw": {
            "get": _op(
                "The fair start's draw: commitment, then seed and order",
                (200, "ok", {"$ref": "#/components/schemas/Draw"}),
                404,
                params=EVENT,
            )
        },
        "/api/events/{event_id}/challenge": {
            "get": _op(
                "A proof-of-work challenge (ALTCHA v2) for joining with bot protection",
                (200, "ok", OBJECT),
                404,
                params=EVENT,
            )
        },
        "/api/events/{event_id}/queue": {
            "post": _op(
                "Join the waiting room (bot protection: send the solved challenge as altcha)",
                (200, "queue status", QUEUE_STATUS),
                400,
                401,
                403,
                404,
                409,
                415,
                422,
                429,
                params=EVENT,
                optional_body="Join",
            ),
            "get": _op(
                "Poll: heartbeat and status",
                (200, "queue status", QUEUE_STATUS),
                401,
                404,
                params=EVENT,
            ),
            "delete": _op("Leave", (204, "left", None), 401, 404, 415, params=EVENT),
        },
        "/api/events/{event_id}/queue/stay": {
            "post": _op(
                "Sold out: stay in line for returned seats (keep the place, poll on)",
                (200, "queue status", QUEUE_STATUS),
                401,
                404,
                415,
                params=EVENT,
            )
        },
        "/api/events/{event_id}/enter": {
            "post": _op(
                "Consume the admission token (Authorization: Bearer <token>)",
                (200, "entered", OBJECT),
                401,
                404,
                409,
                415,
                params=EVENT,
            )
            | {"security": [{"session": [], "admission_token": []}]}
        },
        "/api/events/{event_id}/seats": {
            "get": _op(
                "The live seat map (entered, active sessions)",
                (200, "ok", {"type": "array"}),
                401,
                403,
                404,
                params=EVENT,
                not_modified=True,
            )
        },
        "/api/events/{event_id}/seats/{seat_id}/hold": {
            "post": _op(
                "Hold a seat", (201, "held", OBJECT), 401, 403, 404, 409, 415, 422, 429, params=SEAT
            ),
            "delete": _op(
                "Release your hold",
                (204, "released", None),
                400,
                401,
                404,
                415,
                422,
                params=SEAT,
                optional_body="Release",
            ),
        },
        "/api/events/{event_id}/checkout": {
            "post": _op(
                "Buy the held seats",
                (201, "booked", OBJECT),
                400,
                401,
                402,
                403,
                404,
                409,
                415,
                422,
                429,
                503,
                body="Checkout",
                params=EVENT,
                headers=("Idempotency-Key",),
            )
        },
        "/api/admin/events": {
            "post": _op(
                "Create an event (staff)",
                (201, "created", OBJECT),
                400,
                401,
                403,
                415,
                422,
                body="CreateEvent",
            )
        },
        "/api/admin/events/{event_id}": {
            "patch": _op(
                "Change admission and limits (staff)",
                (200, "ok", OBJECT),
                400,
                401,
                403,
                404,
                415,
                422,
                body="UpdateEvent",
                params=EVENT,
            )
        },
        "/api/admin/events/{event_id}/check-in": {
            "post": _op(
                "Check a ticket in at the door (staff)",
                (200, "ok", {"$ref": "#/components/schemas/CheckInResult"}),
                400,
                401,
                403,
                404,
                422,
                body="CheckIn",
                params=EVENT,
            )
        },
        "/api/admin/events/{event_id}/stats": {
            "get": _op("Live numbers (staff)", (200, "ok", OBJECT), 401, 403, 404, params=EVENT)
        },
        **{
            f"/api/admin/events/{{event_id}}/seats/{{seat_id}}/{action}": {
                "post": _op(
                    f"{action.capitalize()} a seat (staff)",
                    (200, "ok", OBJECT),
                    401,
                    403,
                    404,
                    409,
                    415,
                    params=SEAT,
                )
            }
            for action in ("release", "block", "unblock")
        },
        "/api/admin/events/{event_id}/queue/{user_id}": {
            "delete": _op(
                "Remove a person from the queue (staff)",
                (204, "removed", None),
                401,
                403,
                404,
                415,
                params=("event_id", "user_id"),
            )
        },
        "/api/admin/users/{user_id}/sessions/revoke": {
            "post": _op(
                "Sign a person out everywhere (staff)",
                (204, "every session ended", None),
                401,
                403,
                404,
                415,
                params=("user_id",),
            )
        },
    }
    for ops in paths.values():
        for method, op in ops.items():
            # Any request may meet an unavailable Redis or database; any
            # request with a body may be too large; every unsafe one must
            # say Content-Type: application/json, with a body or without.
            op["responses"].setdefault("503", _response("error", ERROR))
            if method in ("post", "patch", "delete"):
                op["responses"].setdefault("413", _response("error", ERROR))
                op["responses"].setdefault(
                    "415", _response("no Content-Type: application/json", ERROR)
                )
    return {
        "openapi": "3.1.0",
        "info": {"title": "Ticket drop API", "version": "1"},
        "paths": paths,
        "security": [{"session": []}, {}],
        "components": {
            "schemas": components,
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "session",
                    "description": "Set by POST /api/auth/login.",
                },
                "admission_token": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The token a poll returns once admitted.",
                },
            },
        },
    }


@bp.get("/api/openapi.json")
def openapi():
    return jsonify(document())
