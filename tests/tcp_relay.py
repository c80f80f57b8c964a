"""A TCP relay of a test's own between the gateway and a server, to break the link the way networks break it."""

from __future__ import annotations

import contextlib
import socket
import threading


class Relay:
    """Passes bytes both ways to `target`. silence() black-holes the connections open so far, sockets left open, as a
    cut-off link does (new ones pass); cut() resets them all and refuses new ones, as a server gone away does, until
    mend()."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepted = 0
        self._silent: set[int] = set()  # connection numbers that pass nothing any more
        self._refusing = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self._refusing:
                _drop(client)
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                number = self.accepted = self.accepted + 1
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b, number), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, number: int) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if number in self._silent:
                    continue  # read and dropped: the other end hears nothing, no FIN, no RST
                sink.sendall(data)

    def silence(self) -> None:
        with self._lock:
            self._silent |= set(range(1, self.accepted + 1))

    def cut(self) -> None:
        with self._lock:
            self._refusing = True
            for s in self._sockets:
                _drop(s)
            self._sockets = []

    def mend(self) -> None:
        self._refusing = False

    def close(self) -> None:
        self.server.close()
        self.cut()


def _drop(s: socket.socket) -> None:
    # shutdown() first: it wakes a thread blocked reading the socket, which close() alone does not.
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()
