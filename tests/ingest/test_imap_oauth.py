"""The IMAP poller logging in with an OAuth2 access token (SASL XOAUTH2) to a real, private Dovecot
whose oauth2 passdb checks every token against a real introspection endpoint on loopback
(tests/support/dovecot.py). Helpers and conventions are those of test_imap.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from archiver.adapters.imap import connect, xoauth2_responder
from archiver.errors import ImapAuthError
from archiver.imap.accounts import ImapAccount
from archiver.pipeline.archiver import Archiver
from archiver.settings import Settings
from tests.ingest.test_imap import (
    account,
    append,
    assert_archived,
    by_folder,
    create,
    imap_sources,
    make_poller,
    message,
    server_state,
)
from tests.support.dovecot import Dovecot, Introspection, new_user, running_dovecot

pytestmark = pytest.mark.services

FOLDERS = ["INBOX", "归档.二〇二四"]


@pytest.fixture(scope="module")
def introspection() -> Iterator[Introspection]:
    endpoint = Introspection()
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="module")
def dovecot(introspection: Introspection) -> Iterator[Dovecot]:
    with running_dovecot(oauth2_url=introspection.url) as server:
        yield server


@pytest.fixture
def user(dovecot: Dovecot) -> str:
    return new_user()


def token_account(dovecot: Dovecot, user: str, token: str, **changes: Any) -> ImapAccount:
    return account(dovecot, user, password=None, oauth2_token=token, **changes)


def test_an_account_with_an_access_token_polls_and_archives_byte_exact(
    dovecot: Dovecot,
    introspection: Introspection,
    user: str,
    archiver: Archiver,
    settings: Settings,
) -> None:
    token = f"at-{uuid.uuid4().hex}"
    introspection.grant(token, user)
    create(dovecot, user, FOLDERS[1])
    appended = {f: [message(f"{user}-{n}", i) for i in range(2)] for n, f in enumerate(FOLDERS)}
    for folder, mails in appended.items():
        for raw in mails:
            append(dovecot, user, folder, raw, flags="\\Seen")
    before = {f: server_state(dovecot, user, f) for f in FOLDERS}
    with_token = token_account(dovecot, user, token)
    imap_poller = make_poller(settings, archiver)

    summary = imap_poller.poll(with_token)

    assert summary.ok and by_folder(summary) == {f: (2, 0, 0) for f in FOLDERS}
    assert token in introspection.asked  # Dovecot checked the token with the endpoint
    for folder in FOLDERS:
        served = [raw for _, raw in before[folder].values()]
        assert served == appended[folder]
        for raw in served:
            assert_archived(archiver, raw)
            [source] = imap_sources(archiver, raw)
            assert source.attributes["folder"] == folder
    assert {f: server_state(dovecot, user, f) for f in FOLDERS} == before
    assert by_folder(imap_poller.poll(with_token)) == {f: (0, 0, 0) for f in FOLDERS}


def assert_rejected_once(
    dovecot: Dovecot,
    introspection: Introspection,
    rejected: ImapAccount,
    archiver: Archiver,
    settings: Settings,
) -> None:
    """`rejected` cannot log in: a typed error naming the account, and one attempt only."""
    with pytest.raises(ImapAuthError, match=rejected.name) as raised, connect(rejected):
        pass
    assert f"authentication as {rejected.username!r} failed" in str(raised.value)
    assert "AUTHENTICATIONFAILED" in str(raised.value)  # the server's verdict, not a lost link

    asked = len(introspection.asked)
    summary = make_poller(settings, archiver).poll(rejected)
    assert summary.reconnects == 0 and summary.folders == []
    assert summary.error is not None and rejected.name in summary.error
    assert len(introspection.asked) == asked + 1  # the server saw one login: not retried


def test_a_wrong_or_expired_token_is_an_auth_error_naming_the_account_and_not_retried(
    dovecot: Dovecot,
    introspection: Introspection,
    user: str,
    archiver: Archiver,
    settings: Settings,
) -> None:
    append(dovecot, user, "INBOX", message(f"{user}-kept", 0))
    wrong = token_account(dovecot, user, "never-issued", name=f"{user}-wrong")
    assert_rejected_once(dovecot, introspection, wrong, archiver, settings)

    token = f"at-{uuid.uuid4().hex}"
    introspection.grant(token, user)
    with connect(token_account(dovecot, user, token)) as box:  # valid: logs in
        assert box.folders() == ["INBOX"]
    introspection.revoke(token)  # expired: the endpoint now calls it inactive
    expired = token_account(dovecot, user, token, name=f"{user}-expired")
    assert_rejected_once(dovecot, introspection, expired, archiver, settings)

    # a valid token issued to someone else does not open this mailbox
    other = f"at-{uuid.uuid4().hex}"
    introspection.grant(other, f"{user}-other")
    borrowed = token_account(dovecot, user, other, name=f"{user}-borrowed")
    assert_rejected_once(dovecot, introspection, borrowed, archiver, settings)


def test_xoauth2_answers_the_error_challenge_with_an_empty_response() -> None:
    respond = xoauth2_responder("alice@example.com", "tok")
    assert respond(b"") == b"user=alice@example.com\x01auth=Bearer tok\x01\x01"
    # after a rejection the server sends a JSON report; the token must not be sent again
    assert respond(b'{"status":"401","schemes":"bearer","scope":"mail"}') == b""
