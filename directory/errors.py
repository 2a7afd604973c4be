"""The project's small error hierarchy. Each error knows its HTTP status; one handler maps them."""

from __future__ import annotations


class AtviraError(Exception):
    """Base class: a problem we can explain to the user in one sentence."""

    status = 500

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.message = message
        self.where = where  # file:line, element id, parameter name ...
        super().__init__(f"{where}: {message}" if where else message)

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"error": type(self).__name__, "message": self.message, "status": self.status}
        if self.where is not None:  # even "" (a parameter with an empty name) is named
            body["where"] = self.where
        return body


class BadRequest(AtviraError):
    """A query parameter is wrong; `where` names the parameter."""

    status = 400


class NotFound(AtviraError):
    status = 404


class InputError(AtviraError):
    """A source file or payload cannot be read; `where` names the file (and line / element)."""

    status = 422


class FetchError(AtviraError):
    """A remote source did not answer usefully after the allowed retries."""

    status = 502


class StoreError(AtviraError):
    """The store cannot be opened or written (read-only, full disk, newer schema ...)."""

    status = 503


class ConfigError(AtviraError):
    """A setting is missing or wrong (e.g. no ATVIRA_SECRET_KEY in production); `where` names it."""

    status = 500
