"""A TCP proxy that can be cut and brought back on the same port, to make an S3 endpoint
"go down" in the middle of an upload; or that damages one byte on its way to the endpoint,
as a faulty network card or a hostile middlebox would."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType


class Proxy:
    def __init__(self, target_host: str, target_port: int, port: int = 0, flip_byte_at: int | None = None,
                 upstream_rate: float | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port
        # Bytes the clients have sent through to the endpoint, over every connection; and a
        # cap on that rate (bytes per second per connection), for a slow uplink.
        self.upstream_bytes = 0
        self.upstream_rate = upstream_rate
        # Byte number (counted per connection, client to endpoint) whose bits are inverted once.
        self.flip_byte_at = flip_byte_at
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._running = threading.Event()

    @property
    def running(self) -> bool:
        return self._listener is not None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listens (again) on the same port."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)  # so the accept loop notices stop() promptly
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._running.set()
        self._accepting = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accepting.start()

    def stop(self) -> None:
        """Stops listening and cuts every open connection."""
        self._running.clear()
        if self._accepting is not None:
            self._accepting.join()
            self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
            threads, self._threads = list(self._threads), set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join()
        for sock in sockets:
            sock.close()

    def __enter__(self) -> Proxy:
        self.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def _accept(self, listener: socket.socket) -> None:
        while self._running.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if not self._running.is_set():
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
                for source, sink, flip, up in ((client, upstream, self.flip_byte_at, True),
                                               (upstream, client, None, False)):
                    thread = threading.Thread(target=self._pump, args=(source, sink, flip, up), daemon=True)
                    self._threads.add(thread)
                    thread.start()

    def _pump(self, source: socket.socket, sink: socket.socket, flip_at: int | None = None, up: bool = False) -> None:
        passed = 0
        next_at = time.monotonic()  # when the rate cap lets the next bytes through (idle time earns no credit)
        try:
            while data := source.recv(65536):
                if up:
                    with self._lock:
                        self.upstream_bytes += len(data)
                    if self.upstream_rate:
                        next_at = max(next_at, time.monotonic()) + len(data) / self.upstream_rate
                        time.sleep(max(0.0, next_at - time.monotonic()))
                if flip_at is not None and passed <= flip_at < passed + len(data):
                    damaged = bytearray(data)
                    damaged[flip_at - passed] ^= 0xFF
                    data = bytes(damaged)
                passed += len(data)
                sink.sendall(data)
        except OSError:
            pass
        # Pass the end of one direction on, so the other side sees it too.
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
