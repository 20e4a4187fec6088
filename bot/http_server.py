"""The HTTP server of `serve --http`: waitress, with limits that hold under hostile clients.

waitress reads each request whole on its event loop before a worker thread sees it, so a slow client
holds a socket, never a thread. What it lacks out of the box, and this module adds or sets:

- a deadline for a whole request (headers and body) from its first byte: a client trickling a byte a
  second is cut off after `REQUEST_DEADLINE_S` (waitress's own `channel_timeout` counts from the *last*
  byte, so a trickle would keep a connection forever);
- idle connections, before a request or between keep-alive requests, close after `IDLE_S`;
- up to `CONNECTION_LIMIT` connections; at the limit the connections that have no request being served
  are closed oldest first, so a flood of idle sockets cannot lock Slack out (waitress would stop accepting);
- `poll()` instead of `select()` (select fails above 1,024 descriptors) and a loop timeout of one
  second: waitress's `asyncore_loop_timeout` is an integer, so the 0.2 used before became 0 and the idle
  loop spun a whole core.
"""

from __future__ import annotations

import logging
import resource
import threading
import time
from collections.abc import Callable, Iterable

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
DEFAULT_THREADS = 8
REQUEST_DEADLINE_S = 10  # first byte of a request to its last (Slack sends a whole request at once)
IDLE_S = 10  # an open connection with nothing to do
CONNECTION_LIMIT = 1000
BODY_LIMIT = 1_048_576  # Slack payloads are small; refuse floods early
HEADER_LIMIT = 65_536


class _Channel(HTTPChannel):
    """An HTTP connection that remembers when its current, still incomplete request began."""

    request_started = 0.0

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self.request_started = time.time()
        return super().received(data)


class _Server(TcpWSGIServer):
    channel_class = _Channel
    request_deadline: float = REQUEST_DEADLINE_S

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # idle past channel_timeout (nothing received, nothing in service)
        channels = list(self.active_channels.values())
        for channel in channels:
            started = getattr(channel, "request_started", 0.0)
            if channel.request is not None and not channel.requests and now - started > self.request_deadline:
                channel.will_close = True  # a request that never completes: slow-loris
        if len(self._map) >= self.adj.connection_limit:
            # Full: make room by closing connections that wait for nothing of ours, oldest first.
            idle = sorted((c for c in channels if not c.requests and not c.will_close), key=lambda c: c.creation_time)
            excess = len(self._map) - int(self.adj.connection_limit * 0.9)
            for channel in idle[:excess]:
                channel.will_close = True
            if idle[:excess]:
                log.warning("HTTP: %d connections open, the limit; closed the %d oldest idle", len(self._map), excess)


def _ensure_descriptors(connections: int) -> None:
    """Raise the open-file limit when the connection limit needs more than the soft limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        except (ValueError, OSError) as exc:  # then accept() fails first, logged by waitress; say why up front
            log.warning("HTTP: only %d open files allowed (%s); fewer than %d connections will fit", soft, exc, wanted)


class HttpServer:
    """The hardened waitress server on one address; `start`/`stop` for tests, `serve_forever` for `serve`."""

    def __init__(
        self,
        wsgi: WSGIApp,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        threads: int = DEFAULT_THREADS,
        connection_limit: int = CONNECTION_LIMIT,
        request_deadline: float = REQUEST_DEADLINE_S,
        idle_s: int = IDLE_S,
    ):
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} is out of range (1-65535)")
        _ensure_descriptors(connection_limit)
        adj = Adjustments(
            host=host,
            port=port,
            threads=threads,
            ident="gemini-kb",
            connection_limit=connection_limit,
            channel_timeout=idle_s,
            cleanup_interval=1,
            asyncore_loop_timeout=1,  # an int: seconds between checks when nothing happens
            asyncore_use_poll=True,
            max_request_body_size=BODY_LIMIT,
            max_request_header_size=HEADER_LIMIT,
        )
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(threads)
        self._server = _Server(wsgi, {}, dispatcher=dispatcher, adj=adj)
        self._server.request_deadline = request_deadline
        self.host = host
        self.port = int(self._server.effective_port)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve until SystemExit (SIGTERM) or KeyboardInterrupt in this thread; then stop taking requests."""
        self._server.run()

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self.serve_forever, name="waitress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every socket from inside the server's own loop (closing them from here races its select)."""
        from waitress import wasyncore

        server = self._server
        if self._thread is not None and self._thread.is_alive():
            try:
                server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
            except OSError:  # the loop is already closing its sockets, its trigger first: finish the job here
                wasyncore.close_all(server._map)
            self._thread.join(5)
        else:
            wasyncore.close_all(server._map)
        server.task_dispatcher.shutdown(timeout=2)
