"""A private Postfix instance (Debian's postfix package) for tests: its own config, queue and data
directories in a temp dir, loopback only, never the system's /etc/postfix."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivatePostfix:
    """Postfix accepting mail on 127.0.0.1:port and routing it with transport_maps (domain ->
    "smtp:[127.0.0.1]:port"); everything else is discarded. Short retry times, so a deferred
    message is retried within seconds."""

    def __init__(self, base: Path, routes: dict[str, str], **main_cf: str) -> None:
        self.base = base
        self.conf = base / "conf"
        self.port = free_port()
        self.log = base / "maillog"
        transport = ", ".join(f"{domain}={nexthop}" for domain, nexthop in routes.items())
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": str(base / "queue"),
            "data_directory": str(base / "data"),
            "meta_directory": str(self.conf),
            "maillog_file": str(self.log),
            "maillog_file_prefixes": str(base),
            "myhostname": "mta.journal-test.example",
            "mydomain": "journal-test.example",
            "myorigin": "$myhostname",
            "mydestination": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "transport_maps": f"inline:{{ {transport} }}",
            "default_transport": "discard:",
            "relay_transport": "discard:",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "smtp_host_lookup": "native",
            "smtputf8_enable": "yes",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "queue_run_delay": "1s",
            "smtp_connect_timeout": "5s",
            "biff": "no",
            **main_cf,
        }
        self.conf.mkdir(parents=True)
        base.chmod(0o755)  # Postfix daemons run as user postfix and must reach data/
        (base / "queue").mkdir()
        (base / "data").mkdir()
        shutil.chown(base / "data", "postfix", "postfix")
        (self.conf / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        (self.conf / "master.cf").write_text(_MASTER_CF.format(port=self.port))
        # postfix-files and friends describe the installation; postfix check wants them here
        for name in ("postfix-files", "dynamicmaps.cf"):
            shutil.copy(Path("/etc/postfix") / name, self.conf / name)
        for name in ("postfix-files.d", "dynamicmaps.cf.d"):
            if (Path("/etc/postfix") / name).is_dir():
                shutil.copytree(Path("/etc/postfix") / name, self.conf / name)

    def postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["postfix", "-c", str(self.conf), *args], capture_output=True, text=True, timeout=60
        )

    def start(self) -> None:
        done = self.postfix("start")
        if done.returncode != 0:
            raise RuntimeError(f"postfix start failed: {done.stderr}\n{self.log_text()}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"postfix did not listen on {self.port}\n{self.log_text()}")

    def stop(self) -> None:
        self.postfix("stop")

    def flush(self) -> None:
        subprocess.run(["postqueue", "-c", str(self.conf), "-f"], check=True, timeout=30)

    def queued(self) -> list[str]:
        """Queue ids of the messages Postfix still holds."""
        done = subprocess.run(
            ["postqueue", "-c", str(self.conf), "-j"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        import json

        return [json.loads(line)["queue_id"] for line in done.stdout.splitlines() if line]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
