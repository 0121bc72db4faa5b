"""Errors shared by the proxy core and the admin API.

``ApiError`` carries the HTTP status so the admin API can answer exactly like Toxiproxy
(``{"error": "...", "status": N}``) without mapping exception types in one more place.
"""

from __future__ import annotations


class ApiError(Exception):
    """A client-visible error with the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def as_json(self) -> dict[str, object]:
        return {"error": self.message, "status": self.status}


class ConnectionDone(Exception):
    """Raised inside a toxic to stop processing a stream because the connection was closed on purpose."""


# Messages kept identical to Toxiproxy's so that clients matching on them keep working.
BAD_REQUEST_BODY = "bad request body"
MISSING_FIELD = "missing required field"
PROXY_NOT_FOUND = "proxy not found"
PROXY_EXISTS = "proxy already exists"
INVALID_STREAM = "stream was invalid, can be either upstream or downstream"
INVALID_TOXIC_TYPE = "invalid toxic type"
TOXIC_EXISTS = "toxic already exists"
TOXIC_NOT_FOUND = "toxic not found"
