"""A TCP relay in front of one or more servers, for tests that need to steer traffic.

- Each new connection goes to the next backend in turn (round robin), so a client that
  opens a connection per request (tuspy does) talks to every server in turn.
- ``hold_at(n)`` stops passing client bytes on once ``n`` of them have gone through (over
  all connections), so a test can freeze a client in the middle of a chunk, then kill
  something, and ``release()`` lets traffic flow again.
- ``cut()`` drops every open connection (both sides see it) but keeps listening.
"""

from __future__ import annotations

import itertools
import socket
import threading
from types import TracebackType


class Relay:
    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = list(backends)
        self._next = itertools.cycle(range(len(self.backends)))
        self.port = 0
        self.connections = [0] * len(self.backends)
        self.forwarded = 0  # client-to-server bytes passed on, over all connections
        self._hold_at: int | None = None
        self._flowing = threading.Condition()
        self.held = threading.Event()  # set once a connection waits at the hold mark
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._running = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Relay:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._running.set()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._running.clear()
        self.release()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.cut()

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    # -- steering -----------------------------------------------------------------------

    def hold_at(self, total: int) -> None:
        """Pass client bytes on only until ``total`` have gone through, then wait."""
        with self._flowing:
            self.held.clear()
            self._hold_at = total

    def release(self) -> None:
        with self._flowing:
            self._hold_at = None
            self._flowing.notify_all()

    def cut(self) -> None:
        """Drop every open connection; new ones are still accepted."""
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        with self._flowing:
            self._flowing.notify_all()

    # -- plumbing -----------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while self._running.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            index = next(self._next)
            try:
                upstream = socket.create_connection(self.backends[index], timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self.connections[index] += 1
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump_up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(upstream, client), daemon=True).start()

    def _pump_up(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                view = memoryview(data)
                while view:
                    allowed = self._wait_for_room(source)
                    if allowed is None:
                        return
                    piece = view[:allowed]
                    sink.sendall(piece)
                    with self._flowing:
                        self.forwarded += len(piece)
                    view = view[len(piece) :]
        except OSError:
            pass
        _shutdown_write(sink)

    def _wait_for_room(self, source: socket.socket) -> int | None:
        """How many bytes may pass now (waiting while held); None once cut."""
        with self._flowing:
            while True:
                if source.fileno() == -1:
                    return None
                if self._hold_at is None:
                    return 1 << 30
                room = self._hold_at - self.forwarded
                if room > 0:
                    return room
                self.held.set()
                self._flowing.wait(0.1)

    @staticmethod
    def _pump_down(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        _shutdown_write(sink)


def _shutdown_write(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
