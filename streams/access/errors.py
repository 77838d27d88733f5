"""The one refusal of streams.access: an HTTP status and a message that says what was needed."""

from __future__ import annotations


class AccessDenied(Exception):
    """401: no identity, or one that is invalid or expired; 403: an identity outside the scope
    asked for (or the resource is off). The message never quotes a token."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
