"""Domain errors with stable codes.

A `DomainError` is a broken business rule: the command changed nothing and the caller gets the
error's `code` (stable, part of the API contract), a human message and optional details. The API
maps every DomainError to HTTP 422 unless the class says otherwise.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "DOMAIN_ERROR"
    default_message: ClassVar[str] = "The request breaks a business rule."
    http_status: ClassVar[int] = 422

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


class NotFound(DomainError):
    """An object that does not exist, or that the caller may not see (existence is not revealed)."""

    code = "NOT_FOUND"
    default_message = "Not found."
    http_status = 404


class AggregateNotFound(NotFound):
    default_message = "No such aggregate."


class ConcurrencyError(Exception):
    """Another writer appended to the same aggregate first; the command may be retried.

    Not a DomainError: the service layer retries it a bounded number of times and it reaches a
    caller only when every retry lost the race.
    """
