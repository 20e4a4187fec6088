"""A local stand-in for Slack's Socket Mode: a WebSocket server on 127.0.0.1 behind a TCP relay.

    with SlackStub(token=TOKEN, app_token=APP_TOKEN) as slack, SocketStub() as sockets:
        slack.socket_url = sockets.url          # what apps.connections.open hands out
        sockets.wait_connected()
        sockets.push(events_api_envelope(event_callback(...)))
        sockets.wait_for_ack(envelope_id)

It says `hello` on each connection, records every ack (envelope id, arrival time, which connection)
and can: ask the client to reconnect (`{"type": "disconnect", "reason": "warning"}`), close a
connection properly, or drop it silently: the relay in front of the server stops passing bytes in both
directions and keeps both sockets open, which is what a network blip or a load-balancer reset looks
like to the client (no close frame, no FIN, no pong).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Ack:
    envelope_id: str
    at: float
    connection: int
    payload: dict | None


class _Relay:
    """A byte relay from a listening port to the WebSocket server; `blackhole` freezes every open pair."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self._listener = socket.create_server((HOST, 0))
        self.port = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket, threading.Event]] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((HOST, self.target_port))
            frozen = threading.Event()
            with self._lock:
                self._pairs.append((client, upstream, frozen))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b, frozen), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, frozen: threading.Event) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not frozen.is_set():  # frozen: bytes vanish, sockets stay open (a silent drop)
                    dst.sendall(data)
        except OSError:
            pass
        if not frozen.is_set():
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def blackhole(self) -> int:
        """Freeze every connection open now; how many."""
        with self._lock:
            live = [p for p in self._pairs if not p[2].is_set()]
            for _, _, frozen in live:
                frozen.set()
            return len(live)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for a, b, _ in self._pairs:
                a.close()
                b.close()


class SocketStub:
    """The Socket Mode WebSocket endpoint; `url` is what apps.connections.open should return."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._connections: dict[int, ServerConnection] = {}
        self._ids = itertools.count(1)
        self.acks: list[Ack] = []
        self.opened = 0
        self._server: Server = serve(self._handle, HOST, 0, ping_interval=None)
        self.ws_port = self._server.socket.getsockname()[1]
        self._relay = _Relay(self.ws_port)
        self.url = f"ws://{HOST}:{self._relay.port}/link/?ticket={uuid.uuid4().hex}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> SocketStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._relay.close()
        self._server.shutdown()

    # -- the server side ------------------------------------------------------------------------

    def _handle(self, ws: ServerConnection) -> None:
        number = next(self._ids)
        with self._cond:
            self._connections[number] = ws
            self.opened += 1
            self._cond.notify_all()
        try:
            ws.send(json.dumps({"type": "hello", "num_connections": 1, "debug_info": {"host": "stub"}}))
            for raw in ws:
                message = json.loads(raw)
                if "envelope_id" in message:
                    with self._cond:
                        self.acks.append(Ack(message["envelope_id"], time.time(), number, message.get("payload")))
                        self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                self._connections.pop(number, None)
                self._cond.notify_all()

    # -- what tests do --------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], object], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
            return True

    def wait_connected(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Until at least `count` connections were ever opened and one is open now."""
        return self.wait_for(lambda: self.opened >= count and self._connections, timeout)

    def latest(self) -> ServerConnection:
        with self._cond:
            return self._connections[max(self._connections)]

    def push(self, envelope: dict, connection: ServerConnection | None = None) -> None:
        (connection or self.latest()).send(json.dumps(envelope))

    def ask_to_reconnect(self, reason: str = "warning") -> ServerConnection:
        ws = self.latest()
        ws.send(json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "stub"}}))
        return ws

    def blackhole(self) -> int:
        """Drop every open connection silently (see the module docstring)."""
        return self._relay.blackhole()

    def acked(self, envelope_id: str) -> Ack | None:
        with self._cond:
            return next((a for a in self.acks if a.envelope_id == envelope_id), None)


def events_api_envelope(body: dict, *, retry_attempt: int = 0) -> dict:
    """How Socket Mode delivers an Events API callback."""
    return {
        "envelope_id": str(uuid.uuid4()),
        "payload": body,
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": "",
    }
