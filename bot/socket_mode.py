"""Socket Mode that notices a dead socket: the bolt App behind a WebSocket client with ping/pong deadlines.

slack_sdk's synchronous Socket Mode clients do not fit a bot that must answer within seconds of a network
blip: the builtin client calls a socket stale only after 4 x `ping_interval` without a pong, spins on a
socket closed without a close frame, and runs one session at a time, so acks wait up to its 3 s receive
timeout after a reconnect; the websocket-client one pings with no pong deadline; the websockets and
aiohttp ones are asyncio (bolt's AsyncApp). This client is the `websockets` library's threaded client,
which closes a connection whose ping goes unanswered for `PING_TIMEOUT_S`, plus Slack's protocol:

- `apps.connections.open` (the app-level token) gives the WebSocket URL; each envelope is dispatched to
  bolt on a worker thread and acknowledged as soon as bolt acks (listeners run after the ack, so an ack
  never waits for work), on the connection it came from;
- a `disconnect` message (Slack's `warning` / `refresh_requested`) opens the next connection at once and
  keeps receiving on the old one until Slack closes it, so nothing is left unacknowledged in between;
- a dead connection is replaced with a fresh URL, retrying with capped exponential back-off.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPException

from slack_bolt import App
from slack_bolt.adapter.socket_mode.internals import run_bolt_app
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.request import SocketModeRequest
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

log = logging.getLogger(__name__)

PING_INTERVAL_S = 4.0
PING_TIMEOUT_S = 4.0  # a silent drop is noticed within PING_INTERVAL_S + PING_TIMEOUT_S
OPEN_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 1.0
RETIRE_AFTER_S = 30.0  # an old connection Slack said it would close is closed by us after this
BACKOFF_MAX_S = 30.0
WORKERS = 16
ACK_WAIT_S = 2.0  # an ack whose connection closed waits this long for the next one (Slack allows 3 s)
# apps.connections.open errors that mean the token, not the network
TOKEN_ERRORS = {
    "invalid_auth": "SLACK_APP_TOKEN was refused by Slack (invalid_auth)",
    "not_authed": "SLACK_APP_TOKEN was not accepted (not_authed)",
    "not_allowed_token_type": "SLACK_APP_TOKEN is not an app-level token (xapp-...): are the tokens swapped?",
    "token_revoked": "SLACK_APP_TOKEN was revoked",
    "account_inactive": "the Slack app behind SLACK_APP_TOKEN is inactive",
    "missing_scope": "SLACK_APP_TOKEN lacks the connections:write scope",
}


class SocketModeError(Exception):
    """Socket Mode cannot start; the message is one line for the operator."""


class SocketMode:
    """One Slack app over Socket Mode; `start` connects (or raises SocketModeError), `close` disconnects."""

    def __init__(
        self,
        app: App,
        app_token: str,
        *,
        api_url: str | None = None,
        ping_interval: float = PING_INTERVAL_S,
        ping_timeout: float = PING_TIMEOUT_S,
    ):
        self.app = app
        base = api_url or WebClient.BASE_URL
        self._api = WebClient(token=app_token, base_url=base if base.endswith("/") else base + "/", timeout=10)
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self._current: ClientConnection | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._workers = ThreadPoolExecutor(WORKERS, thread_name_prefix="socket-mode")
        self._supervisor: threading.Thread | None = None
        self.connections = 0  # how many WebSockets were opened (tests, health)

    # -- public -----------------------------------------------------------------------------

    def start(self) -> SocketMode:
        """Connect once (errors are SocketModeError, one line), then keep a connection up in the background."""
        try:
            self._connect()
        except SocketModeError:
            raise
        except Exception as exc:
            raise SocketModeError(f"cannot open a Socket Mode connection: {_why(exc)}") from None
        self._supervisor = threading.Thread(target=self._supervise, name="socket-mode-supervisor", daemon=True)
        self._supervisor.start()
        return self

    def connected(self) -> bool:
        ws = self._current
        return ws is not None and _is_open(ws)

    def close(self) -> None:
        """Stop reconnecting and close the connection (unacknowledged envelopes are resent by Slack)."""
        self._closed.set()
        self._wake.set()
        ws = self._current
        if ws is not None:
            ws.close()
        self._workers.shutdown(wait=False, cancel_futures=True)

    # -- connections --------------------------------------------------------------------------

    def _url(self) -> str:
        try:
            response = self._api.apps_connections_open(app_token=self._api.token)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or exc.response.status_code)
            raise SocketModeError(TOKEN_ERRORS.get(error, f"apps.connections.open failed: {error}")) from None
        except (OSError, HTTPException) as exc:
            raise SocketModeError(f"Slack is unreachable ({_why(exc)})") from None
        return str(response["url"])

    def _connect(self) -> ClientConnection:
        """Open a new connection and make it the current one; the previous one is left to finish."""
        url = self._url()
        try:
            ws = connect(
                url,
                open_timeout=OPEN_TIMEOUT_S,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_timeout,
                close_timeout=CLOSE_TIMEOUT_S,
                max_size=4 * 1024 * 1024,
                legacy=True,  # a plain connection: this module does its own reconnecting
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise SocketModeError(f"cannot open the Socket Mode WebSocket ({_why(exc)})") from None
        with self._lock:
            previous, self._current = self._current, ws
            self.connections += 1
        threading.Thread(target=self._receive, args=(ws,), name="socket-mode-receive", daemon=True).start()
        if previous is not None and _is_open(previous):
            # Slack closes it itself after a `disconnect` warning; make sure it does not linger.
            timer = threading.Timer(RETIRE_AFTER_S, previous.close)
            timer.daemon = True
            timer.start()
        log.info("Socket Mode connected (connection %d)", self.connections)
        return ws

    def _supervise(self) -> None:
        """Replace the current connection when it dies, with capped exponential back-off."""
        failures = 0
        while not self._closed.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._closed.is_set() or self.connected():
                continue
            try:
                self._connect()
                failures = 0
            except SocketModeError as exc:
                failures += 1
                wait = min(BACKOFF_MAX_S, 2 ** min(failures, 5)) * random.uniform(0.5, 1.0)
                log.error("Socket Mode: %s; retrying in %.0f s", exc, wait)
                self._closed.wait(wait)

    def _receive(self, ws: ClientConnection) -> None:
        try:
            for raw in ws:
                self._on_message(ws, raw)
        except ConnectionClosed as exc:
            if not self._closed.is_set():
                log.warning("Socket Mode connection closed (%s)", exc)
        except Exception:
            log.exception("Socket Mode: receiving failed")
        finally:
            ws.close()
            if ws is self._current:
                self._wake.set()  # the supervisor reconnects at once

    def _on_message(self, ws: ClientConnection, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("Socket Mode: a frame that is not JSON was ignored")
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "hello":
            return
        if kind == "disconnect":
            # Slack will close this connection soon: open the next one now, without blocking this receiver.
            log.info("Socket Mode: Slack asked to reconnect (%s)", message.get("reason"))
            threading.Thread(target=self._replace, name="socket-mode-replace", daemon=True).start()
            return
        request = SocketModeRequest.from_dict(message)
        if request is not None:
            self._workers.submit(self._dispatch, ws, request)

    def _replace(self) -> None:
        if self._closed.is_set():
            return
        try:
            self._connect()
        except SocketModeError as exc:
            log.error("Socket Mode: %s; the supervisor retries", exc)
            self._wake.set()

    def _dispatch(self, ws: ClientConnection, request: SocketModeRequest) -> None:
        """bolt handles the request (a pending job is stored before it acks); the ack goes back at once."""
        try:
            response = run_bolt_app(self.app, request)
        except Exception:
            log.exception("Socket Mode: dispatching %s failed", request.type)
            return
        if response.status != 200:
            log.warning("Socket Mode: %s not acknowledged (bolt answered %s)", request.type, response.status)
            return
        ack: dict[str, object] = {"envelope_id": request.envelope_id}
        if response.body:
            content_type = (response.headers.get("content-type") or [""])[0]
            ack["payload"] = (
                json.loads(response.body) if content_type.startswith("application/json") else {"text": response.body}
            )
        data = json.dumps(ack)
        deadline = time.monotonic() + ACK_WAIT_S
        while True:  # the connection it came on, else the newest (one may be opening right now)
            for target in (ws, self._current):
                if target is None:
                    continue
                try:
                    target.send(data)
                    return
                except ConnectionClosed:
                    continue
            if time.monotonic() > deadline or self._closed.is_set():
                break
            time.sleep(0.05)
        log.warning("Socket Mode: ack for %s not sent (no open connection); Slack resends it", request.type)


def _is_open(ws: ClientConnection) -> bool:
    from websockets.protocol import State

    return ws.protocol.state is State.OPEN


def _why(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason if reason is not None else exc) or type(exc).__name__
    return text.splitlines()[0][:200]
