"""ingest/smtp.py relies on two internals of aiosmtpd that have no public equivalent: the
connection's StreamReader (`SMTP._reader`, read by JournalSMTP.smtp_DATA) and the path parser
(`SMTP._getaddr`, overridden for speed). pyproject.toml pins the aiosmtpd versions they are
known in; when a release changes them these tests fail first and say what to re-check."""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version

from aiosmtpd.smtp import SMTP

from ingest.smtp import JournalSMTP


def changed(what: str) -> str:
    return (
        f"aiosmtpd {version('aiosmtpd')} changed an internal that ingest/smtp.py relies on: "
        f"{what}. Re-check JournalSMTP against aiosmtpd's source before widening its pin in "
        "pyproject.toml."
    )


class NoHooks:
    """A handler with no hooks: aiosmtpd's defaults answer."""


def test_getaddr_takes_the_argument_and_returns_address_and_parameters() -> None:
    parameters = list(inspect.signature(SMTP._getaddr).parameters)
    assert parameters == ["self", "arg"], changed(f"SMTP._getaddr{parameters}")

    async def parse() -> tuple[object, object]:
        return SMTP(NoHooks())._getaddr("<a@example.com> SIZE=10")

    assert asyncio.run(parse()) == ("a@example.com", "SIZE=10"), changed("SMTP._getaddr's result")


def test_a_connection_has_its_stream_reader_as_reader() -> None:
    async def connect() -> object:
        servers: list[JournalSMTP] = []

        def factory() -> JournalSMTP:
            servers.append(JournalSMTP(NoHooks()))
            return servers[-1]

        listener = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            assert (await reader.readline()).startswith(b"220 ")
            return getattr(servers[0], "_reader", None)
        finally:
            writer.close()
            listener.close()
            await listener.wait_closed()

    assert isinstance(asyncio.run(connect()), asyncio.StreamReader), changed(
        "a connected SMTP no longer has its asyncio.StreamReader as _reader"
    )


def test_the_public_names_journal_smtp_uses_are_there() -> None:
    for name in ("check_helo_needed", "check_auth_needed", "push", "local_part_limit"):
        assert hasattr(SMTP, name), changed(f"SMTP.{name} is gone")
    assert "data_size_limit" in inspect.signature(SMTP).parameters, changed("data_size_limit")
