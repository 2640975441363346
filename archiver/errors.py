"""Typed errors. Each carries the context a person needs to act on it."""

from __future__ import annotations


class MailvaultError(Exception):
    """Base of every error the domain raises on purpose."""


class BackendUnavailable(MailvaultError):
    """A backend (S3, Elasticsearch, Redis) could not be reached or answered with a server error.

    Transient: the caller may retry.
    """

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(f"{backend} unavailable: {detail}")
        self.backend = backend
        self.detail = detail


class IntegrityError(MailvaultError):
    """Stored bytes do not hash to the key they were stored under."""

    def __init__(self, sha256: str, actual: str) -> None:
        super().__init__(f"raw object {sha256} is corrupt: its bytes hash to {actual}")
        self.sha256 = sha256
        self.actual = actual


class MessageNotFound(MailvaultError):
    def __init__(self, sha256: str) -> None:
        super().__init__(f"no archived message with id {sha256}")
        self.sha256 = sha256


class MessageTooLarge(MailvaultError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class InvalidQuery(MailvaultError):
    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class ImportSourceError(MailvaultError):
    """A path given to the importer cannot be read as mail."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail
