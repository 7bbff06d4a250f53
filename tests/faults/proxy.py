"""A TCP proxy the fault-injection tests put in front of PostgreSQL or Redis, to cut or freeze it at will.

``FaultProxy(upstream_port)`` listens on a free loopback port and forwards every connection to the
upstream service. ``down()`` closes every connection and refuses new ones (a crashed service);
``hang()`` keeps the open connections and accepts new ones, reads what they send but never answers (a
frozen service or a black-holed network: the client's kernel sees its bytes acknowledged); ``restore()`` forwards again
(connections cut or frozen meanwhile are closed, as a restarted service would have closed them).
"""

import selectors
import socket
import threading
from contextlib import suppress

PASS, DOWN, HANG = "pass", "down", "hang"


class FaultProxy:
    """One listening port forwarding to ``127.0.0.1:upstream_port``, in a thread of its own."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.mode = PASS
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._peers: dict[socket.socket, socket.socket | None] = {}  # each side -> the other (None: held)
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._running = True
        self._thread = threading.Thread(target=self._loop, name=f"fault-proxy-{self.port}", daemon=True)
        self._thread.start()

    # --- control

    def _switch(self, mode: str) -> None:
        with self._lock:
            self.mode = mode
            if mode == HANG:
                self._freeze_all()
            else:
                self._close_all()
        self._wake_w.send(b"x")

    def down(self) -> None:
        """Close every connection and refuse new ones."""
        self._switch(DOWN)

    def hang(self) -> None:
        """Accept connections, swallow what they send, never answer."""
        self._switch(HANG)

    def restore(self) -> None:
        """Forward again (what was cut or frozen stays closed)."""
        self._switch(PASS)

    def close(self) -> None:
        self._running = False
        self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        with self._lock:
            self._close_all()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()
        self._selector.close()

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the loop

    def _close_all(self) -> None:
        for sock in list(self._peers):
            self._drop(sock)

    def _freeze_all(self) -> None:
        """Keep each client connection open but cut it from its upstream: it now waits for ever."""
        clients = [sock for sock, other in self._peers.items() if other is not None and self._peers.get(other) is sock]
        for sock in clients:
            if sock.getsockname()[1] != self.port:
                continue  # the upstream side of a pair
            upstream = self._peers[sock]
            self._peers[sock] = None
            self._peers.pop(upstream, None)
            with suppress(KeyError, ValueError):
                self._selector.unregister(upstream)
            upstream.close()

    def _drop(self, sock: socket.socket) -> None:
        other = self._peers.pop(sock, None)
        with suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        sock.close()
        if other is not None and other in self._peers:
            self._drop(other)

    def _accept(self) -> None:
        with suppress(BlockingIOError):
            client, _ = self._listener.accept()
            if self.mode == DOWN:
                client.close()
                return
            upstream = None
            if self.mode == PASS:
                try:
                    upstream = socket.create_connection(self.upstream, timeout=2)
                except OSError:
                    client.close()
                    return
                upstream.setblocking(False)
                self._peers[upstream] = client
                self._selector.register(upstream, selectors.EVENT_READ, None)
            client.setblocking(False)
            self._peers[client] = upstream
            self._selector.register(client, selectors.EVENT_READ, None)

    def _forward(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sock)
            return
        other = self._peers.get(sock)
        if other is None:  # a held connection: swallow
            return
        try:
            other.setblocking(True)
            other.sendall(data)
            other.setblocking(False)
        except OSError:
            self._drop(sock)

    def _loop(self) -> None:
        while self._running:
            for key, _ in self._selector.select(timeout=0.5):
                with self._lock:
                    if key.data == "wake":
                        with suppress(BlockingIOError):
                            self._wake_r.recv(1024)
                    elif key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj in self._peers:
                        self._forward(key.fileobj)
