"""The receiver's OpenAPI 3.1 description, served at ``GET /openapi.json``.

Written by hand beside the routes (``_receiver.py``) and checked against a real
``cardflow serve`` by schemathesis in the test suite: every route, its parameters,
the body D1 posts, every answer the status policy gives (``_policy.py``) with its
schema and headers, and the bearer token where one is required.
"""

from __future__ import annotations

from typing import Any, Final

from .._version import __version__
from ._policy import Outcome, notification_status

__all__ = ["openapi_document"]

_JSON: Final = "application/json"
_TEXT_OR_NULL: Final = {"type": ["string", "null"]}
_STRINGS: Final = {"type": "array", "items": {"type": "string"}}


def _error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if retry_after:
        answer["headers"] = {
            "Retry-After": {
                "description": "seconds to wait before sending the body again",
                "required": True,
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }
        }
    return answer


_OPERATION: Final = {
    "type": "object",
    "description": "One D1 operation event. An operation that does not fit is kept in the"
    " store's rejects table; the others of the body are stored all the same.",
    "required": ["operationId", "operation", "status", "startTime", "cardId"],
    "properties": {
        "operationId": {"type": "string"},
        "operation": {"type": "string", "examples": ["PRODUCE"]},
        "status": {"type": "string", "examples": ["PENDING", "SUCCESSFUL", "FAILED"]},
        "startTime": {"type": "string", "format": "date-time"},
        "cardId": {"type": "string"},
        "endTime": {"type": "string", "format": "date-time"},
        "details": {"type": "object"},
        "errorCode": {"type": "string"},
        "error": {"type": "string"},
    },
}

_ENVELOPE: Final = {
    "type": "object",
    "description": "A notification body: one or more operation events (D1 bulks them).",
    "required": ["operations"],
    "properties": {
        "operations": {
            "type": "array",
            "description": "The operations, each as the Operation schema says. Any item is"
            " accepted: one that does not fit is kept in the store's rejects table and the"
            " others of the body are stored all the same (a 204), since D1 would send a"
            " refused body again and again.",
            "items": {},
        }
    },
}

_CARD: Final = {
    "type": "object",
    "description": "cardflow.json_view of the card's stored state.",
    "required": ["cardId", "operationId", "startTime", "status", "gaps", "observed"],
    "properties": {
        "cardId": {"type": "string"},
        "operationId": {"type": "string"},
        "startTime": {"type": "string"},
        "status": _TEXT_OR_NULL,
        "operationStatus": _TEXT_OR_NULL,
        "endTime": _TEXT_OR_NULL,
        "errorCode": _TEXT_OR_NULL,
        "error": _TEXT_OR_NULL,
        "reason": _TEXT_OR_NULL,
        "dueDate": _TEXT_OR_NULL,
        "productionSite": _TEXT_OR_NULL,
        "shipment": {"type": ["object", "null"]},
        "observed": _STRINGS,
        "gaps": _STRINGS,
        "anomalies": {"type": "array"},
        "unknownStatuses": _STRINGS,
        "operationIds": _STRINGS,
        "confirmedAt": _TEXT_OR_NULL,
        "confirmedStatus": _TEXT_OR_NULL,
    },
}

_ERROR: Final = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what went wrong, as a code"},
        "detail": {"type": "string", "description": "what went wrong, for a person"},
    },
}

_HEALTH: Final = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "detail": {"type": "string"},
    },
}


def _notify(secured: bool, max_body: int) -> dict[str, Any]:
    answers: dict[str, Any] = {
        "204": {"description": "the store committed the body: D1 may forget it"},
        str(notification_status(Outcome.NOT_AN_ENVELOPE)): _error(
            'not JSON, or not {"operations": [...]}: D1 must not send it again'
        ),
        str(notification_status(Outcome.UNKNOWN_ISSUER)): _error(
            "an issuerId this receiver does not serve"
        ),
        str(notification_status(Outcome.TOO_SLOW)): _error(
            "the body did not arrive whole in time: it may be sent again"
        ),
        str(notification_status(Outcome.TOO_LARGE)): _error(
            f"over {max_body} bytes: D1 must not send it again"
        ),
        str(notification_status(Outcome.STORE_UNAVAILABLE)): _error(
            "the store failed, nothing was committed: send the body again later",
            retry_after=True,
        ),
    }
    if secured:
        answers["401"] = _error("the bearer token is missing or wrong")
    return {
        "operationId": "notify",
        "summary": "Store one notification body from D1",
        "description": "Answers only once the store committed the body (its good"
        " operations; its bad ones are kept as rejects). What each status means to D1"
        " is docs/d1.md's status policy.",
        "parameters": [
            {"name": "issuerId", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "requestBody": {
            "required": True,
            "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Envelope"}}},
        },
        "responses": answers,
    }


def _read(operation_id: str, summary: str, ok: dict[str, Any], secured: bool) -> dict[str, Any]:
    answers: dict[str, Any] = {"200": ok}
    if secured:
        answers["401"] = _error("the bearer token is missing or wrong")
    return {"operationId": operation_id, "summary": summary, "responses": answers}


def openapi_document(*, secured: bool, max_body: int) -> dict[str, Any]:
    """The description of a receiver: ``secured`` when it requires a bearer token."""
    card = _read(
        "card",
        "A card's stored state",
        {
            "description": "the card's view",
            "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Card"}}},
        },
        secured,
    )
    card["parameters"] = [
        {"name": "cardId", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    card["responses"]["404"] = _error("the store has no event of this card")
    card["responses"]["503"] = _error("the store failed", retry_after=True)
    health = {
        "operationId": "health",
        "summary": "Whether the store answers (never needs a token)",
        "security": [],
        "responses": {
            "200": {
                "description": "the store answers",
                "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Health"}}},
            },
            "503": {
                "description": "the store does not answer",
                "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Health"}}},
            },
        },
    }
    metrics = _read(
        "metrics",
        "Prometheus metrics, summed over every worker process",
        {
            "description": "Prometheus' text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        secured,
    )
    description = _read(
        "openapi",
        "This description",
        {
            "description": "OpenAPI 3.1",
            "content": {_JSON: {"schema": {"type": "object"}}},
        },
        secured,
    )
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "cardflow D1 receiver",
            "version": __version__,
            "description": "Receives Thales D1's card production notifications into a"
            " cardflow store (docs/d1.md).",
        },
        "paths": {
            "/notifications/d1/v2/issuers/{issuerId}/cards": {"post": _notify(secured, max_body)},
            "/cards/{cardId}": {"get": card},
            "/health": {"get": health},
            "/metrics": {"get": metrics},
            "/openapi.json": {"get": description},
        },
        "components": {
            "schemas": {
                "Envelope": _ENVELOPE,
                "Operation": _OPERATION,
                "Card": _CARD,
                "Error": _ERROR,
                "Health": _HEALTH,
            }
        },
    }
    if secured:
        document["components"]["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "the token given to cardflow serve --token",
            }
        }
        document["security"] = [{"bearer": []}]
    return document
