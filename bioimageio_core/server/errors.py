"""HTTP errors of the server: every user error becomes a 4xx answer with a JSON body."""

from __future__ import annotations

from typing import Any

from bioimageio_core import errors
from bioimageio_core.remote.protocol import PayloadError, error_body
from bioimageio_core.server.config import MB


class ApiError(Exception):
    """An error answer: status, a type name clients can branch on, message, hint."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        hint: str | None = None,
        loc: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.hint = hint
        self.loc = loc
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.type, self.message, hint=self.hint, loc=self.loc)

    @classmethod
    def too_large(cls, what: str, limit: int) -> ApiError:
        option = "--max-upload-mb" if what == "package" else "--max-request-mb"
        return cls(
            413,
            "TooLarge",
            f"the {what} is larger than this server accepts ({limit / MB:g} MB)",
            hint=f"send less per request (smaller blocks or batches), or start the server with "
            f"a larger {option}",
        )


_CODE_HINT = (
    "this server runs code that comes with a model only when started with "
    "`bioimageio-run serve --allow-remote-code`; ask its operator"
)


def from_exception(error: BaseException) -> ApiError | None:
    """The answer for one of our errors, or None for an unexpected error (a bug: 500)."""
    if isinstance(error, ApiError):
        return error
    if not isinstance(error, errors.BioimageioError):
        return None
    type_ = type(error).__name__
    message, hint, loc = error.message, error.hint, error.loc
    if isinstance(error, errors.ValidationError):
        return ApiError(
            422,
            type_,
            f"the model description is invalid: {error.summary.first_error_text()}",
            hint="see all problems with POST /v1/validate",
        )
    if isinstance(error, PayloadError):
        return ApiError(400, type_, message, hint=hint, loc=loc)
    if isinstance(error, errors.CodeRefusedError):
        return ApiError(403, type_, message, hint=_CODE_HINT, loc=loc)
    if isinstance(error, errors.SettingsError):
        return None  # the server's own environment is wrong: not the client's to fix
    return ApiError(422, type_, message, hint=hint, loc=loc)


__all__ = ["ApiError", "from_exception"]
