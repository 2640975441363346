"""A private Dovecot IMAP server for tests: its own config, state and maildirs in a temp dir.

Started with ``dovecot -F -c <conf>`` on free loopback ports; the system Dovecot (/etc/dovecot)
is never touched. As root, mail is owned by the system user ``mailvault-imap`` (created when
missing), because Dovecot refuses to access mail as root; as any other user, Dovecot runs
entirely as that user.
"""

from __future__ import annotations

import imaplib
import json
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from archiver.imap.accounts import ImapAccount
from tests.support.processes import terminate

MAIL_USER = "mailvault-imap"
PASSWORD = "secret-pw"
# What Dovecot 2.3 announces after login; `imap_capability` replaces the whole list.
CAPABILITIES = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN "
    "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
    "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW "
    "STATUS=SIZE SAVEDATE LITERAL+ NOTIFY"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll condition() until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _mail_owner() -> tuple[str, int, int]:
    """The user mail is stored as (Dovecot will not run mail processes as root)."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return entry.pw_name, entry.pw_uid, entry.pw_gid
    try:
        entry = pwd.getpwnam(MAIL_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                MAIL_USER,
            ],
            check=True,
        )
        entry = pwd.getpwnam(MAIL_USER)
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def make_tls_files(root: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it."""
    ca_key, ca_pem = root / "ca.key", root / "ca.pem"
    key, csr, pem = root / "server.key", root / "server.csr", root / "server.pem"
    ext = root / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl = ["openssl"]
    quiet = {"check": True, "capture_output": True}
    subprocess.run(
        [
            *openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=mailvault test CA",
            "-keyout",
            ca_key,
            "-out",
            ca_pem,
        ],
        **quiet,
    )
    subprocess.run(
        [
            *openssl,
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            key,
            "-out",
            csr,
        ],
        **quiet,
    )
    subprocess.run(
        [
            *openssl,
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            ca_pem,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            ext,
            "-out",
            pem,
        ],
        **quiet,
    )
    return ca_pem, pem, key


class Dovecot:
    """One private Dovecot: plain IMAP (STARTTLS offered) and implicit-TLS IMAP on loopback.

    With ``oauth2_url`` (an OAuth2 token introspection endpoint, see Introspection) it also
    offers XOAUTH2/OAUTHBEARER, checked by Dovecot's oauth2 passdb against that endpoint;
    passwords (PLAIN/LOGIN) keep working as without it.

    ``without`` names capabilities the server does not announce after login (e.g. UIDPLUS), to
    play an older or poorer server. Dovecot still accepts their commands: what is tested is that
    the client does not use what it is not offered.
    """

    def __init__(self, oauth2_url: str | None = None, without: Sequence[str] = ()) -> None:
        if not shutil.which("dovecot"):
            raise RuntimeError("dovecot is not installed (scripts/setup.sh installs dovecot-imapd)")
        # Not under pytest's tmp_path: that is private to root, and the mail user must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="mailvault-dovecot-"))
        self.root.chmod(0o755)
        self.mail_root = self.root / "mail"
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls_port = free_port()
        self.owner, self.uid, self.gid = _mail_owner()
        self.ca_file, cert, key = make_tls_files(self.root)
        self.conf = self.root / "dovecot.conf"
        self.log = self.root / "dovecot.log"
        self.oauth2_url = oauth2_url
        unknown = set(without) - set(CAPABILITIES.split())
        if unknown:
            raise ValueError(f"not a capability Dovecot announces: {sorted(unknown)}")
        self.without = set(without)
        self._write_config(cert, key)
        self.proc: subprocess.Popen[bytes] | None = None

    def _write_config(self, cert: Path, key: Path) -> None:
        internal = "dovecot" if os.geteuid() == 0 else self.owner
        login = "dovenull" if os.geteuid() == 0 else self.owner
        self.mail_root.mkdir()
        os.chown(self.mail_root, self.uid, self.gid)
        self.conf.write_text(
            f"""# private test instance, generated by tests/support/dovecot.py
protocols = imap
listen = 127.0.0.1
base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = mailvault-test-{self.port}
log_path = {self.log}
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = {min(self.uid, 500)}
first_valid_gid = {min(self.gid, 500)}
disable_plaintext_auth = no
auth_mechanisms = plain login{" xoauth2 oauthbearer" if self.oauth2_url else ""}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
mail_location = maildir:{self.mail_root}/%u
{self._capability_setting()}
{self._oauth2_passdb()}
# every user name exists, with one password: a test makes up a fresh user per mailbox
passdb {{
  driver = static
  args = password={PASSWORD}{self._password_mechanisms()}
}}
auth_failure_delay = 0
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={self.mail_root}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
"""
        )

    def _capability_setting(self) -> str:
        if not self.without:
            return ""  # Dovecot's own list, whatever its version
        kept = [c for c in CAPABILITIES.split() if c not in self.without]
        return f"imap_capability = {' '.join(kept)}"

    def _oauth2_passdb(self) -> str:
        """Tokens are checked by asking the introspection endpoint (RFC 7662, form POST)."""
        if self.oauth2_url is None:
            return ""
        conf = self.root / "dovecot-oauth2.conf.ext"
        conf.write_text(
            f"""introspection_url = {self.oauth2_url}
introspection_mode = post
username_attribute = username
active_attribute = active
active_value = true
"""
        )
        # Rejecting tokens is what these tests do, and Dovecot delays each login from an IP with
        # recent failures (2, 4, 8, then 15 s) past the tests' client timeouts. Auth skips the
        # penalty when it cannot reach anvil's penalty socket; login_trusted_networks does not
        # exempt anyone in 2.3.
        return f"""service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {conf}
}}"""

    def _password_mechanisms(self) -> str:
        # Without this, a rejected token would be tried as a password on the static passdb.
        return "\n  mechanisms = plain login" if self.oauth2_url else ""

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "dovecot.stderr", "wb"),  # noqa: SIM115
        )
        wait_for(self._greets, what=f"dovecot on port {self.port} (log: {self.log})")

    def _greets(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"dovecot exited: {(self.root / 'dovecot.stderr').read_text()} "
                f"{self.log.read_text() if self.log.exists() else ''}"
            )
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                return sock.recv(100).startswith(b"* OK")
        except OSError:
            return False

    def stop(self) -> None:
        terminate(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- test data -------------------------------------------------------------------------

    @contextmanager
    def client(self, user: str) -> Iterator[imaplib.IMAP4]:
        """A logged-in client for setting up and inspecting mailboxes."""
        imap = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            imap.login(user, PASSWORD)
            yield imap
        finally:
            with suppress(imaplib.IMAP4.error, OSError):
                imap.logout()

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@contextmanager
def running_dovecot(
    oauth2_url: str | None = None, without: Sequence[str] = ()
) -> Iterator[Dovecot]:
    """A private Dovecot for a test module, stopped (and its files removed) after."""
    server = Dovecot(oauth2_url=oauth2_url, without=without)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def new_user() -> str:
    """Any user name logs in with PASSWORD; a fresh one is an empty mailbox."""
    return f"u{uuid.uuid4().hex[:10]}"


class Introspection:
    """A real OAuth2 token introspection endpoint (RFC 7662) on loopback, for Dovecot's oauth2
    passdb: a token granted here answers ``{"active": true, "username": ...}``, any other token
    (never granted, or revoked: as good as expired) ``{"active": false}``."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.asked: list[str] = []  # every token Dovecot asked about, in order
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/introspect"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def grant(self, token: str, user: str) -> None:
        self.tokens[token] = user

    def revoke(self, token: str) -> None:
        self.tokens.pop(token, None)

    def answer(self, token: str) -> dict[str, object]:
        self.asked.append(token)
        user = self.tokens.get(token)
        return {"active": True, "username": user} if user else {"active": False}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                [token] = parse_qs(body.decode("ascii")).get("token") or [""]
                reply = json.dumps(endpoint.answer(token)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: the tests look at `asked`

        return Handler

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class CuttingProxy:
    """A TCP forwarder on loopback that drops its first connection after `cut_after` bytes from
    the server; later connections pass untouched. A real connection loss in the middle of a
    session, at a deterministic point, that a reconnecting client recovers from. (For a backend
    that goes down and comes back, see tests/support/tcpproxy.py.)"""

    def __init__(self, target: tuple[str, int], cut_after: int) -> None:
        self.target = target
        self.cut_after = cut_after
        self.cuts = 0
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            self.connections += 1
            limit = self.cut_after if self.connections == 1 else None
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                _close(client)
                continue
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, limit), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        with suppress(OSError):
            while data := src.recv(65536):
                if limit is not None and sent + len(data) > limit:
                    dst.sendall(data[: limit - sent])
                    self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
        _close(src)
        _close(dst)

    def close(self) -> None:
        _close(self._server)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def account(dovecot: Dovecot, user: str, **changes: Any) -> ImapAccount:
    """The IMAP account of a test user on this Dovecot (STARTTLS, its own CA)."""
    fields: dict[str, Any] = {
        "name": user,
        "host": "127.0.0.1",
        "port": dovecot.port,
        "tls": "starttls",
        "ca_file": dovecot.ca_file,
        "username": user,
        "password": PASSWORD,
        **changes,
    }
    return ImapAccount.model_validate(fields)
