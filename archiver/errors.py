"""Typed errors. Each carries the context a person needs to act on it."""

from __future__ import annotations

from datetime import datetime


class MailvaultError(Exception):
    """Base of every error the domain raises on purpose."""


class BackendError(MailvaultError):
    """A backend (S3, Elasticsearch, Redis) failed a request; `detail` names the cause. Base of
    the transient and the permanent kind: catch it where either stops the work alike."""

    def __init__(self, backend: str, detail: str, message: str = "") -> None:
        super().__init__(message or f"{backend} failed: {detail}")
        self.backend = backend
        self.detail = detail

    def __reduce__(self) -> tuple[type[BackendError], tuple[str, str]]:
        # Celery pickles a task's exception; without this it finds no class that takes args
        # (message,) below MailvaultError, and the failure is recorded under that name
        return type(self), (self.backend, self.detail)


class BackendUnavailable(BackendError):
    """A backend could not be reached, timed out or answered with a server error (5xx, 429).

    Transient: the caller may retry.
    """

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(backend, detail, f"{backend} unavailable: {detail}")


class BackendFailed(BackendError):
    """A backend refused the request for a reason retrying will not change: a configuration
    error (invalid bucket or index name, wrong credentials, a missing bucket), a server that
    lacks a feature the archive relies on, or a bug (a request the backend cannot accept).

    Permanent: not retried; a person must act on the cause.
    """

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(backend, detail, f"{backend} failed (permanent, not retried): {detail}")


class IntegrityError(MailvaultError):
    """Stored bytes do not hash to the key they were stored under."""

    def __init__(self, sha256: str, actual: str) -> None:
        super().__init__(f"raw object {sha256} is corrupt: its bytes hash to {actual}")
        self.sha256 = sha256
        self.actual = actual


class SpoolCorrupt(MailvaultError):
    """A spool segment that cannot be read back as it was written (kept for inspection)."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"spool segment {key} is corrupt: {detail}")
        self.key = key
        self.detail = detail


class SpoolStopped(MailvaultError):
    """The spool's committer failed beyond recovery: nothing more can be made durable, so the
    SMTP sink must stop (MTAs keep the mail queued) rather than leave deliveries waiting."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"spool stopped: {detail}")
        self.detail = detail


class NotFound(MailvaultError):
    """Something asked for by name or id does not exist (HTTP 404)."""


class SpoolSegmentNotFound(NotFound):
    """Filed (and removed) already, e.g. by the reconciler while the task waited."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no spool segment {key}")
        self.key = key


class SavedSearchNotFound(NotFound):
    def __init__(self, owner: str, name: str) -> None:
        super().__init__(f"no saved search '{name}' for owner '{owner}'")


class MessageNotFound(NotFound):
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


class QueryNotSyntax(InvalidQuery):
    """Query text that is not valid syntax but reads as plain text: a stray bracket or quote, a
    colon after a word that is no field. Search reads it as text (a real operator mistake, such
    as `from:` without a value, is a plain InvalidQuery)."""


class MailboxNameError(MailvaultError):
    """An IMAP mailbox name that is not valid modified UTF-7."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"invalid IMAP mailbox name {name!r}: {detail}")
        self.name = name
        self.detail = detail


class ImapAccountsError(MailvaultError):
    """The IMAP accounts file is missing, unreadable or invalid."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"IMAP accounts file {path}: {detail}")
        self.path = path
        self.detail = detail


class ImapError(MailvaultError):
    """An IMAP server refused or could not do what the poller needs (per account)."""

    def __init__(self, account: str, detail: str) -> None:
        super().__init__(f"IMAP account {account!r}: {detail}")
        self.account = account
        self.detail = detail


class ImapAuthError(ImapError):
    """The server rejected the account's credentials. Not retried: a person must fix them."""


class ImapConnectionLost(ImapError):
    """The connection failed or dropped. Transient: the poller reconnects with backoff."""


class InvalidTagging(MailvaultError):
    """A tag, rule or directory that cannot be saved as given; `location` says where."""

    def __init__(self, what: str, detail: str, location: str = "") -> None:
        where = f" at {location}" if location else ""
        super().__init__(f"invalid {what}{where}: {detail}")
        self.what = what
        self.detail = detail
        self.location = location


class RuleTimedOut(MailvaultError):
    """A rule's regex ran past its time limit on a message: the rule is skipped for it (the
    message is archived all the same) and the timeout reported."""

    def __init__(self, rule: str, version: int | None, message: str, seconds: float) -> None:
        which = "draft" if version is None else f"v{version}"
        super().__init__(
            f"tagging rule {rule!r} ({which}) timed out after {seconds:g} s on message {message}"
        )
        self.rule = rule
        self.version = version
        self.message = message
        self.seconds = seconds


class RuleNotFound(NotFound):
    def __init__(self, name: str, version: int | None = None) -> None:
        which = f" version {version}" if version is not None else ""
        super().__init__(f"no tagging rule {name!r}{which}")
        self.name = name
        self.version = version


class ConcurrentEdit(MailvaultError):
    """Someone else saved the same thing at the same moment; reload and try again."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} was changed concurrently; reload it and try again")
        self.what = what


class SignInFailed(MailvaultError):
    """Wrong username or password, or no such user: the same answer for each, so that a sign-in
    form does not tell which names exist. `detail` is for the log, not for the person signing in.
    """

    def __init__(self, username: str, detail: str = "wrong username or password") -> None:
        super().__init__("sign-in failed: wrong username or password")  # the same for everyone
        self.username = username
        self.detail = detail


class NotAuthenticated(MailvaultError):
    """No valid credential came with the request: no session cookie or bearer token, or one
    that is unknown, expired or revoked (HTTP 401). Which of these is not said, on purpose."""

    def __init__(self, detail: str = "sign in, or send an API token") -> None:
        super().__init__(f"not authenticated: {detail}")
        self.detail = detail


class CsrfRejected(MailvaultError):
    """A state-changing request made with a session cookie lacks the session's CSRF token
    (the X-CSRF-Token header) or carries a wrong one (HTTP 403)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"CSRF check failed: {detail}")
        self.detail = detail


class PermissionDenied(MailvaultError):
    """The principal lacks the permission the request needs (HTTP 403)."""

    def __init__(self, username: str, permission: str) -> None:
        super().__init__(f"{username!r} lacks the permission {permission!r}")
        self.username = username
        self.permission = permission


class InvalidToken(MailvaultError):
    """An API token that cannot be created as asked: permissions beyond the owner's, an expiry
    in the past or beyond the maximum, a bad name (HTTP 422)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"invalid API token request: {detail}")
        self.detail = detail


class TokenNotFound(NotFound):
    def __init__(self, owner: str, token_id: str) -> None:
        super().__init__(f"no API token {token_id!r} of {owner!r}")
        self.owner = owner
        self.token_id = token_id


# -- users and sign-in (archiver/access/users.py) -------------------------------------------


class UserNotFound(NotFound):
    def __init__(self, username: str) -> None:
        super().__init__(f"no user {username!r}")
        self.username = username


class UserExists(MailvaultError):
    def __init__(self, username: str) -> None:
        super().__init__(f"user {username!r} exists already")
        self.username = username


class InvalidUser(MailvaultError):
    """A user, role or password that cannot be saved as given (unknown role, weak password,
    a built-in role redefined); `detail` says why."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"invalid {what}: {detail}")
        self.what = what
        self.detail = detail


class SignInThrottled(MailvaultError):
    """Too many failed sign-ins recently: refused, even with the right password, until `until`
    (the base of AccountLocked and AddressBlocked; HTTP 429 with Retry-After)."""

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(f"{message} {until.isoformat(timespec='seconds')}")
        self.until = until


class AccountLocked(SignInThrottled):
    def __init__(self, username: str, until: datetime) -> None:
        super().__init__(
            f"account {username!r} is locked after too many failed sign-ins until", until
        )
        self.username = username


class AddressBlocked(SignInThrottled):
    def __init__(self, address: str, until: datetime) -> None:
        super().__init__(f"too many failed sign-ins from {address}; try again after", until)
        self.address = address


class AccountDisabled(MailvaultError):
    """The password was right, but an administrator has disabled the account."""

    def __init__(self, username: str) -> None:
        super().__init__(f"account {username!r} is disabled; ask an administrator")
        self.username = username


class InvalidRetention(MailvaultError):
    """A retention policy, matter, hold or disposition request that cannot be saved or run as
    given; `detail` says why (HTTP 422)."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"invalid {what}: {detail}")
        self.what = what
        self.detail = detail


class StorageLocked(MailvaultError):
    """The storage refused to delete a message: Object Lock retention runs until `until`, or a
    legal hold is set. Not an error of the archive: the lock does what it is for."""

    def __init__(self, sha256: str, until: datetime | None, legal_hold: bool) -> None:
        reasons = [f"retention until {until.isoformat()}"] if until else []
        reasons += ["a legal hold"] if legal_hold else []
        super().__init__(f"message {sha256} is locked in storage ({', '.join(reasons) or 'lock'})")
        self.sha256 = sha256
        self.until = until
        self.legal_hold = legal_hold


class ApprovalRequired(MailvaultError):
    """A disposition run larger than the configured limit waits for a second person (HTTP 409)."""

    def __init__(self, run_id: str, count: int, limit: int) -> None:
        super().__init__(
            f"disposition run {run_id} would delete {count} messages (more than {limit}): it"
            " waits for a second person's approval"
        )
        self.run_id = run_id
        self.count = count
        self.limit = limit


class InvalidExport(MailvaultError):
    """An export request or step that cannot be done as asked; `detail` says why (HTTP 422)."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"invalid {what}: {detail}")
        self.what = what
        self.detail = detail


class ExportNotReady(MailvaultError):
    """The export is not built (yet, or any more): nothing to download (HTTP 409)."""

    def __init__(self, export_id: str, status: str, last_error: str | None = None) -> None:
        said = f" (its last build stopped: {last_error})" if last_error else ""
        super().__init__(f"export {export_id} is {status}: its package cannot be downloaded{said}")
        self.export_id = export_id
        self.status = status
        self.last_error = last_error


class ExportBusy(MailvaultError):
    """Another builder holds the export (its lease runs until `until`) (HTTP 409)."""

    def __init__(self, export_id: str, holder: str, until: datetime) -> None:
        super().__init__(f"export {export_id} is being built by {holder} until {until.isoformat()}")
        self.export_id = export_id
        self.holder = holder
        self.until = until
