"""Domain errors raised by services, mapped once to HTTP answers by config.exceptions."""

from __future__ import annotations


class ParrainError(Exception):
    """Base of the errors a client's request can cause; never a 500."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_detail(self) -> dict[str, list[str]] | dict[str, str]:
        if self.field:
            return {self.field: [self.message]}
        return {"detail": self.message}


class InvalidInput(ParrainError):
    status_code = 400
    code = "invalid"


class NotFound(ParrainError):
    status_code = 404
    code = "not_found"


class Conflict(ParrainError):
    status_code = 409
    code = "conflict"
