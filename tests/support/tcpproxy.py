"""A TCP forwarder in front of a real service, cut and restored by a test to make it "go down".

While cut, new connections are accepted and closed at once and open ones are dropped: clients
see real connection failures, the service itself keeps running for everyone else. While held,
the service's answers wait in the proxy (requests still reach it): a client's call is then
known to be in progress, for as long as the test likes.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._held = threading.Condition()
        self._holding = False
        self._waiting = 0  # answers held back now
        threading.Thread(target=self._accept, daemon=True, name="tcpproxy").start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            for sock in list(self._open):
                _close(sock)
            self._open.clear()

    def restore(self) -> None:
        self._cut.clear()

    def hold(self) -> None:
        """Keep the service's answers from here on until release()."""
        with self._held:
            self._holding = True

    def release(self) -> None:
        with self._held:
            self._holding = False
            self._held.notify_all()

    def wait_held(self, timeout: float = 30) -> None:
        """Until an answer is being held (a client's request reached the service)."""
        with self._held:
            if not self._held.wait_for(lambda: self._waiting > 0, timeout):
                raise TimeoutError(f"no answer from {self.target} held within {timeout} s")

    def close(self) -> None:
        self._closed.set()
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for src, dst, answers in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(src, dst, answers), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, answers: bool) -> None:
        try:
            while data := src.recv(65536):
                if answers:
                    self._wait_while_held()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                _close(sock)
                with self._lock:
                    self._open.discard(sock)

    def _wait_while_held(self) -> None:
        with self._held:
            self._waiting += 1
            self._held.notify_all()
            self._held.wait_for(lambda: not self._holding)
            self._waiting -= 1


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@contextmanager
def proxy(host: str, port: int) -> Iterator[TcpProxy]:
    forwarder = TcpProxy(host, port)
    try:
        yield forwarder
    finally:
        forwarder.close()
