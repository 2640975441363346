"""The IMAP side of the poller: archiver.imap.sync.Mailbox over the standard library's imaplib.

Connection modes: implicit TLS (IMAP4_SSL), STARTTLS, or none; certificates are verified unless an
account says otherwise. Authentication: LOGIN with a password, or AUTHENTICATE XOAUTH2 with an
OAuth2 access token. Folder names travel in modified UTF-7 (archiver/imap/utf7.py) and are Unicode
everywhere else.
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any, NoReturn

from archiver.errors import ImapAuthError, ImapConnectionLost, ImapError
from archiver.imap import utf7
from archiver.imap.accounts import ImapAccount
from archiver.models import MessageInfo

log = logging.getLogger(__name__)

_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?P<delim>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)$')
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_INTERNALDATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_NOT_SELECTABLE = {b"\\noselect", b"\\nonexistent"}
# \Recent belongs to one session, not to the message: recording it would say nothing.
_SESSION_FLAGS = {"\\Recent"}
# Flags are sent as one UID set per command; keep command lines well under server limits.
_UIDS_PER_COMMAND = 500


def quote(text: str) -> str:
    """An IMAP quoted string (imaplib does not quote mailbox arguments)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def uid_set(uids: Sequence[int]) -> str:
    """Compact sequence set: 1,2,3,7 -> "1:3,7"."""
    ranges: list[str] = []
    ordered = sorted(set(uids))
    start = prev = ordered[0]
    for uid in [*ordered[1:], None]:
        if uid is not None and uid == prev + 1:
            prev = uid
            continue
        ranges.append(str(start) if start == prev else f"{start}:{prev}")
        if uid is not None:
            start = prev = uid
    return ",".join(ranges)


def parse_internaldate(value: bytes) -> datetime:
    """ "17-Jul-1996 02:44:25 -0700" (the day may be space-padded) -> an aware datetime."""
    return datetime.strptime(value.decode("ascii").strip(), "%d-%b-%Y %H:%M:%S %z")


def _chunks(uids: Sequence[int], size: int = _UIDS_PER_COMMAND) -> Iterator[Sequence[int]]:
    for start in range(0, len(uids), size):
        yield uids[start : start + size]


class ImapMailbox:
    """One authenticated session for one account. Use ``connect(account)``."""

    def __init__(self, account: ImapAccount, imap: imaplib.IMAP4) -> None:
        self.account = account
        self.imap = imap
        self.capabilities: set[str] = set()

    # -- errors ----------------------------------------------------------------------------

    def _lost(self, exc: BaseException) -> NoReturn:
        raise ImapConnectionLost(self.account.name, f"{type(exc).__name__}: {exc}") from exc

    def _call(self, what: str, *args: Any) -> list[Any]:
        """One imaplib command; connection trouble -> ImapConnectionLost, NO/BAD -> ImapError."""
        try:
            typ, data = getattr(self.imap, what)(*args)
        except imaplib.IMAP4.abort as exc:
            self._lost(exc)
        except imaplib.IMAP4.error as exc:
            raise ImapError(self.account.name, f"{what} {args[:1]}: {exc}") from exc
        except (OSError, EOFError) as exc:
            self._lost(exc)
        if typ != "OK":
            raise ImapError(self.account.name, f"{what} {args[:1]} answered {typ}: {data}")
        return list(data)

    # -- Mailbox ---------------------------------------------------------------------------

    def folders(self) -> list[str]:
        names: list[str] = []
        for entry in self._call("list"):
            if entry is None:
                continue
            # A name sent as a literal arrives as (line ending in {n}, name bytes).
            line, literal = (entry[0], entry[1]) if isinstance(entry, tuple) else (entry, None)
            match = _LIST_LINE.match(line)
            if match is None:
                log.warning("unparsed LIST line", extra={"line": repr(line)})
                continue
            if {f.lower() for f in match["flags"].split()} & _NOT_SELECTABLE:
                continue
            raw = literal if literal is not None else match["name"]
            names.append(utf7.decode(_unquote(raw)))
        return names

    def select(self, folder: str, *, readonly: bool) -> int:
        self._call("select", quote(utf7.encode(folder)), readonly)
        value = self.imap.response("UIDVALIDITY")[1]
        if not value or value[0] is None:
            raise ImapError(self.account.name, f"{folder}: the server sent no UIDVALIDITY")
        return int(value[0])

    def uids_after(self, uid: int) -> list[int]:
        data = self._call("uid", "SEARCH", f"UID {uid + 1}:*")
        # "n:*" always matches the highest UID, even when it is below n
        return sorted(u for u in (int(x) for x in b" ".join(data).split()) if u > uid)

    def fetch_info(self, uids: Sequence[int]) -> list[MessageInfo]:
        wanted = set(uids)
        infos: dict[int, MessageInfo] = {}
        for chunk in _chunks(uids):
            items = "(UID FLAGS INTERNALDATE RFC822.SIZE)"
            for line in self._call("uid", "FETCH", uid_set(chunk), items):
                info = _parse_info(line if isinstance(line, bytes) else line[0])
                if info is not None and info.uid in wanted:
                    infos[info.uid] = info
        return [infos[u] for u in sorted(infos)]

    def fetch_bodies(self, uids: Sequence[int]) -> dict[int, bytes]:
        bodies: dict[int, bytes] = {}
        data = self._call("uid", "FETCH", uid_set(uids), "(UID BODY.PEEK[])")
        for position, entry in enumerate(data):
            if not isinstance(entry, tuple) or b"BODY[]" not in entry[0]:
                continue
            # UID may come before the literal or, in the bytes that follow it, after.
            after = data[position + 1] if position + 1 < len(data) else b""
            match = _UID.search(entry[0]) or _UID.search(after if isinstance(after, bytes) else b"")
            if match is not None:
                bodies[int(match[1])] = bytes(entry[1])
        return bodies

    def ensure_removable(self, journal_folder: str | None) -> None:
        # Only UID EXPUNGE and UID MOVE act on exactly the UIDs given: a plain EXPUNGE would
        # also remove mail that someone else flagged \Deleted, so without them nothing is removed.
        if "UIDPLUS" in self.capabilities:
            return
        if journal_folder is not None and "MOVE" in self.capabilities:
            return
        needs = "UIDPLUS (UID EXPUNGE) or MOVE" if journal_folder else "UIDPLUS (UID EXPUNGE)"
        offered = " ".join(sorted(self.capabilities))
        raise ImapError(
            self.account.name,
            f"journal mode needs {needs}, which the server does not offer ({offered})",
        )

    def delete(self, uids: Sequence[int]) -> None:
        self.ensure_removable(None)
        for chunk in _chunks(uids):
            self._call("uid", "STORE", uid_set(chunk), "+FLAGS.SILENT", "(\\Deleted)")
            self._call("uid", "EXPUNGE", uid_set(chunk))

    def move(self, uids: Sequence[int], folder: str) -> None:
        # checked before any COPY: a copy whose original cannot be removed would be made again
        # on every poll
        self.ensure_removable(folder)
        for chunk in _chunks(uids):
            if "MOVE" in self.capabilities:
                self._call("uid", "MOVE", uid_set(chunk), quote(utf7.encode(folder)))
            else:
                self._call("uid", "COPY", uid_set(chunk), quote(utf7.encode(folder)))
                self.delete(chunk)

    def ensure_folder(self, folder: str) -> None:
        if folder not in self.folders():
            self._call("create", quote(utf7.encode(folder)))

    # -- session ---------------------------------------------------------------------------

    def login(self) -> None:
        account = self.account
        try:
            if account.oauth2_token is not None:
                token = account.oauth2_token.get_secret_value()
                self.imap.authenticate("XOAUTH2", xoauth2_responder(account.username, token))
            else:
                assert account.password is not None  # the account model guarantees one of them
                self.imap.login(account.username, account.password.get_secret_value())
        except imaplib.IMAP4.abort as exc:
            self._lost(exc)
        except imaplib.IMAP4.error as exc:
            raise ImapAuthError(
                account.name, f"authentication as {account.username!r} failed: {exc}"
            ) from exc
        except OSError as exc:
            self._lost(exc)
        # capabilities change after login (Dovecot adds UIDPLUS, MOVE, ...): ask again
        caps = self._call("capability")
        self.capabilities = {c.decode().upper() for c in b" ".join(caps).split()}

    def logout(self) -> None:
        # the session is over either way
        with suppress(imaplib.IMAP4.error, OSError, EOFError):
            self.imap.logout()


def xoauth2_responder(username: str, token: str) -> Callable[[bytes], bytes]:
    """The client side of SASL XOAUTH2 for imaplib's authenticate(): the credentials answer the
    server's empty first challenge. A rejected token draws a second challenge, a JSON error
    report; the protocol answers it with an empty response (sending the token again is wrong),
    after which the server completes the command with NO."""
    blob = f"user={username}\x01auth=Bearer {token}\x01\x01".encode()

    def respond(challenge: bytes) -> bytes:
        if challenge:
            report = challenge[:300].decode("utf-8", "replace")
            log.info("xoauth2 token rejected", extra={"username": username, "report": report})
            return b""
        return blob

    return respond


def _parse_info(line: bytes) -> MessageInfo | None:
    uid, date, size = _UID.search(line), _INTERNALDATE.search(line), _SIZE.search(line)
    if uid is None or date is None or size is None:
        return None  # an unsolicited FETCH (a flag change by another session)
    flags = _FLAGS.search(line)
    names = flags[1].decode("utf-8", "replace").split() if flags else []
    return MessageInfo(
        uid=int(uid[1]),
        flags=tuple(f for f in names if f not in _SESSION_FLAGS),
        internaldate=parse_internaldate(date[1]),
        size=int(size[1]),
    )


def _unquote(raw: bytes) -> str:
    text = raw.decode("utf-8", "surrogateescape")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def tls_context(account: ImapAccount) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(account.ca_file) if account.ca_file else None)
    if not account.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def open_session(account: ImapAccount, timeout: float) -> imaplib.IMAP4:
    """Connect (and for STARTTLS, upgrade) without logging in."""
    host, port = account.host, account.effective_port
    try:
        if account.tls == "implicit":
            return imaplib.IMAP4_SSL(host, port, ssl_context=tls_context(account), timeout=timeout)
        imap = imaplib.IMAP4(host, port, timeout=timeout)
        if account.tls == "starttls":
            imap.starttls(ssl_context=tls_context(account))
        return imap
    except ssl.SSLCertVerificationError as exc:
        # not transient: retrying cannot make a wrong certificate right
        raise ImapError(account.name, f"TLS certificate of {host}:{port} rejected: {exc}") from exc
    except imaplib.IMAP4.abort as exc:
        raise ImapConnectionLost(account.name, f"{host}:{port}: {exc}") from exc
    except imaplib.IMAP4.error as exc:  # e.g. STARTTLS not offered
        raise ImapError(account.name, f"{host}:{port}: {exc}") from exc
    except OSError as exc:
        raise ImapConnectionLost(account.name, f"cannot connect to {host}:{port}: {exc}") from exc


@contextmanager
def connect(account: ImapAccount, timeout: float = 60.0) -> Iterator[ImapMailbox]:
    """A logged-in session for the poller (archiver.imap.sync.Connect)."""
    if account.tls == "none":
        log.warning(
            "imap without TLS: credentials travel in clear", extra={"account": account.name}
        )
    mailbox = ImapMailbox(account, open_session(account, timeout))
    try:
        mailbox.login()
        yield mailbox
    finally:
        mailbox.logout()
