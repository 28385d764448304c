"""Application errors shared by every bounded context.

They carry a stable code and a message, never an HTTP status: the presentation
layer maps each class to a status in one table (app.api.errors).
"""

from __future__ import annotations


class ApplicationError(Exception):
    code = "application_error"

    def __init__(self, message: str, details: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class NotFoundError(ApplicationError):
    code = "not_found"


class ConflictError(ApplicationError):
    code = "conflict"


class PermissionDeniedError(ApplicationError):
    code = "permission_denied"


class AuthenticationError(ApplicationError):
    code = "authentication_failed"


class InvalidInputError(ApplicationError):
    """Input that passed the schema but breaks a business rule (maps to 422)."""

    code = "invalid_input"
