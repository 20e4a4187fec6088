"""A local stand-in for Slack: a real HTTP server on 127.0.0.1 that plays the Web API and
receives response-URL posts, plus signed request builders shaped like Slack's real payloads.

    with SlackStub(token="xoxb-test") as slack:
        client = WebClient(token="xoxb-test", base_url=slack.api_url)
        ...
        slack.wait_for(lambda: slack.calls("chat.postMessage"))

Every Web API call is recorded (method, parameters, headers); `script` makes the next calls
to a method fail (429 with Retry-After, 500, or a delay) for fault tests. Posted messages are kept per
channel, so conversations.replies reads a thread back; `files` holds what files.info answers and the
file downloads serve; views.open checks its trigger_id; apps.connections.open hands out a Socket Mode
URL (tests/socket_stub.py). `usergroups` sets what usergroups.users.list answers; views.publish and
reactions.add/remove are answered like Slack does.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

HOST = "127.0.0.1"
BOT_USER_ID = "UBOT0001"
BOT_ID = "BBOT0001"
TEAM_ID = "T0000TEST"
APP_ID = "A0000TEST"


@dataclass(frozen=True)
class Call:
    """One request the stub received: a Web API method or a response-URL post."""

    method: str  # "chat.postMessage", ... or "response_url"
    params: dict
    headers: dict
    path: str
    at: float
    response: dict = field(default_factory=dict)  # what the stub answered (e.g. the new message's ts)


@dataclass
class Scripted:
    """A canned failure for the next call(s) to a method."""

    status: int = 200
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    stub: SlackStub

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        """Web API methods slack_sdk sends as GET (conversations.replies, files.info) and file downloads."""
        split = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        if split.path.startswith("/files/"):
            self._download(split.path, headers)
            return
        self._handle(split.path, dict(parse_qsl(split.query, keep_blank_values=True)), headers)

    def _download(self, path: str, headers: dict) -> None:
        """url_private: the file's bytes, only with the bot token (as Slack answers a stranger: a login page)."""
        file_id = path.split("/")[2]
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        self.stub._record(
            Call("file_download", {"file": file_id, "authorized": token == self.stub.token}, headers, path, time.time())
        )
        content = self.stub.file_bytes.get(file_id)
        if content is None or (self.stub.token and token != self.stub.token):
            self._send(200, "<html>sign in</html>", "text/html")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if len(data) < length:  # the client died mid-request (a kill -9): Slack acts on no partial request
            self.close_connection = True
            return
        raw = data.decode("utf-8", "replace")
        path = urlsplit(self.path).path
        ctype = self.headers.get("Content-Type", "")
        headers = {k.lower(): v for k, v in self.headers.items()}
        if "json" in ctype:
            try:
                params = json.loads(raw or "{}")
            except ValueError:
                params = {"_raw": raw}
                if path.startswith("/api/"):  # as Slack does: nothing is acted on
                    self.stub._record(Call(path[len("/api/") :], params, headers, path, time.time()), failed=True)
                    self._send(200, {"ok": False, "error": "invalid_json"})
                    return
        else:
            params = dict(parse_qsl(raw, keep_blank_values=True))
        self._handle(path, params, headers)

    def _handle(self, path: str, params: dict, headers: dict) -> None:
        if path.startswith("/response/"):
            self.stub._record(Call("response_url", params, headers, path, time.time()))
            self._send(200, "ok", "text/plain")
            return
        if not path.startswith("/api/"):
            self._send(404, {"ok": False, "error": "not_found"})
            return
        method = path[len("/api/") :]
        scripted = self.stub._next_script(method)
        if scripted is not None:
            if scripted.delay:
                time.sleep(scripted.delay)
            if scripted.status != 200 or scripted.body is not None:
                self.stub._record(Call(method, params, headers, path, time.time()), failed=True)
                self._send(
                    scripted.status, scripted.body or {"ok": False, "error": "fatal_error"}, extra=scripted.headers
                )
                return
        token = headers.get("authorization", "").removeprefix("Bearer ").strip() or params.get("token", "")
        expected = self.stub.app_token if method == "apps.connections.open" else self.stub.token
        if method == "apps.connections.open" and token.startswith("xoxb-"):
            self.stub._record(Call(method, params, headers, path, time.time()), failed=True)
            self._send(200, {"ok": False, "error": "not_allowed_token_type"})
            return
        if expected and token != expected:
            self.stub._record(Call(method, params, headers, path, time.time()), failed=True)
            self._send(200, {"ok": False, "error": "invalid_auth"})
            return
        self._send(200, self.stub._answer(method, params, headers, path))

    def _send(self, status: int, body: dict | str, ctype: str = "application/json", extra: dict | None = None) -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", f"{ctype}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a loaded bot opens many connections at once; the default 5 resets some

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        return


class SlackStub:
    """The Slack Web API (`api_url`) and a response-URL receiver (`response_url(name)`) on loopback."""

    def __init__(
        self,
        *,
        token: str | None = None,
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
        app_token: str | None = None,
    ):
        self.token, self.bot_user_id, self.bot_id = token, bot_user_id, bot_id
        self.app_token = app_token  # apps.connections.open takes this one only (Socket Mode)
        self.socket_url: str | None = None  # what apps.connections.open hands out (tests.socket_stub)
        self.history: dict[str, list[dict]] = {}  # channel -> messages (posted by the bot, or put by a test)
        self.files: dict[str, dict] = {}  # file id -> file object (files.info)
        self.file_bytes: dict[str, bytes] = {}  # file id -> what url_private serves
        self._calls: list[Call] = []
        self._failed: list[Call] = []
        self._scripts: dict[str, list[Scripted]] = {}
        self._cond = threading.Condition()
        self._ts = itertools.count(1)
        self._last_ts = 0.0
        self.usergroups: dict[str, list[str]] = {}  # what usergroups.users.list answers, by group id
        handler = type("SlackHandler", (_Handler,), {"stub": self})
        self._server = _Server((HOST, 0), handler)
        self.port = self._server.server_address[1]
        self.url = f"http://{HOST}:{self.port}"
        self.api_url = f"{self.url}/api/"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> SlackStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SlackStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what was received --------------------------------------------------------------------

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}/response/{name}"

    def calls(self, method: str | None = None) -> list[Call]:
        """Successful calls, optionally to one method ("response_url" for response-URL posts)."""
        with self._cond:
            return [c for c in self._calls if method is None or c.method == method]

    def failed_calls(self) -> list[Call]:
        with self._cond:
            return list(self._failed)

    def posts(self) -> list[Call]:
        """Everything the bot said: messages, ephemerals, updates, views and response-URL posts."""
        return [c for c in self.calls() if c.method != "auth.test"]

    def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> bool:
        """Poll-free wait: re-checks `predicate` whenever a request arrives, up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def everything_received(self) -> str:
        """All recorded parameters as one string (to search for a secret that must not be there)."""
        with self._cond:
            return json.dumps([[c.method, c.params, c.path] for c in self._calls + self._failed], ensure_ascii=False)

    def clear(self) -> None:
        with self._cond:
            self._calls.clear()
            self._failed.clear()

    def add_message(self, channel: str, message: dict) -> dict:
        """A message people posted (what conversations.replies will show)."""
        with self._cond:
            self.history.setdefault(channel, []).append(message)
        return message

    def add_file(self, name: str, content: bytes, *, filetype: str, mimetype: str, mode: str = "snippet") -> dict:
        """A file shared in Slack, with its url_private on this stand-in; returns the file object."""
        file_id = f"F{len(self.files) + 1:08d}"
        file = {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": filetype.title(),
            "user": "U0000USER",
            "mode": mode,
            "size": len(content),
            "url_private": f"{self.url}/files/{file_id}/{name}",
            "url_private_download": f"{self.url}/files/{file_id}/download/{name}",
            "is_external": False,
        }
        with self._cond:
            self.files[file_id] = file
            self.file_bytes[file_id] = content
        return file

    def script(self, method: str, *responses: Scripted) -> None:
        """The next calls to `method` get these answers, in order (then normal service resumes)."""
        with self._cond:
            self._scripts.setdefault(method, []).extend(responses)

    # -- internals ------------------------------------------------------------------------------

    def _next_script(self, method: str) -> Scripted | None:
        with self._cond:
            queue = self._scripts.get(method)
            return queue.pop(0) if queue else None

    def _record(self, call: Call, *, failed: bool = False) -> None:
        with self._cond:
            (self._failed if failed else self._calls).append(call)
            self._cond.notify_all()

    def _next_ts(self) -> str:
        with self._cond:  # increasing, and later than any message ts made before this call (as in Slack)
            self._last_ts = max(time.time(), self._last_ts + 0.000001)
            return f"{self._last_ts:.6f}"

    @staticmethod
    def _shown(messages: list[dict], params: dict) -> list[dict]:
        """Messages after `oldest`; their metadata only with include_all_metadata (as Slack answers)."""
        oldest = float(params.get("oldest") or 0)
        with_meta = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        return [
            m if with_meta else {k: v for k, v in m.items() if k != "metadata"}
            for m in messages
            if float(m["ts"]) > oldest or m.get("ts") == params.get("ts")
        ]

    def _replies(self, params: dict) -> dict:
        """conversations.replies as Slack answers it: the parent first, then the replies oldest first."""
        channel, parent_ts = str(params.get("channel")), str(params.get("ts"))
        with self._cond:
            posted = list(self.history.get(channel, []))
        thread = [m for m in posted if m["ts"] == parent_ts or m.get("thread_ts") == parent_ts]
        if not any(m["ts"] == parent_ts for m in thread):
            return {"ok": False, "error": "thread_not_found"}
        thread.sort(key=lambda m: float(m["ts"]))
        thread = self._shown(thread, params)
        limit = int(params.get("limit") or 1000)
        return {"ok": True, "messages": thread[:limit], "has_more": len(thread) > limit}

    def _history(self, params: dict) -> dict:
        """conversations.history: the channel's messages outside threads (and thread parents), newest first."""
        with self._cond:
            posted = list(self.history.get(str(params.get("channel")), []))
        top = [m for m in posted if not m.get("thread_ts") or m.get("thread_ts") == m["ts"]]
        top.sort(key=lambda m: float(m["ts"]), reverse=True)
        top = self._shown(top, {**params, "ts": None})
        limit = int(params.get("limit") or 100)
        return {"ok": True, "messages": top[:limit], "has_more": len(top) > limit}

    def _answer(self, method: str, params: dict, headers: dict, path: str) -> dict:
        body: dict
        if method == "auth.test":
            body = {
                "ok": True,
                "url": "https://stub.slack.com/",
                "team": "Stub",
                "user": "gemini-kb",
                "team_id": TEAM_ID,
                "user_id": self.bot_user_id,
                "bot_id": self.bot_id,
                "is_enterprise_install": False,
            }
        elif method == "chat.postMessage":
            ts = self._next_ts()
            message = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "ts": ts, "app_id": APP_ID}
            message.update({k: params[k] for k in ("text", "blocks", "thread_ts") if k in params})
            if params.get("metadata"):
                meta = params["metadata"]
                message["metadata"] = json.loads(meta) if isinstance(meta, str) else meta
            with self._cond:
                self.history.setdefault(str(params.get("channel")), []).append(message)
            body = {"ok": True, "channel": params.get("channel"), "ts": ts, "message": message}
        elif method == "apps.connections.open":
            body = {"ok": True, "url": self.socket_url} if self.socket_url else {"ok": False, "error": "unknown_method"}
        elif method == "conversations.replies":
            body = self._replies(params)
        elif method == "conversations.history":
            body = self._history(params)
        elif method == "files.info":
            file = self.files.get(str(params.get("file")))
            body = {"ok": True, "file": file} if file else {"ok": False, "error": "file_not_found"}
        elif method == "views.open":
            view = params.get("view")
            view = json.loads(view) if isinstance(view, str) else view
            if not params.get("trigger_id") or not isinstance(view, dict):
                body = {"ok": False, "error": "invalid_arguments"}
            else:
                body = {"ok": True, "view": {"id": f"V{next(self._ts):08d}", **view}}
        elif method == "chat.postEphemeral":
            body = {"ok": True, "message_ts": self._next_ts()}
        elif method == "chat.update":
            body = {
                "ok": True,
                "channel": params.get("channel"),
                "ts": params.get("ts"),
                "text": params.get("text", ""),
            }
        elif method == "views.publish":
            body = {"ok": True, "view": {"id": "V0000TEST", **(params.get("view") or {})}}
        elif method == "usergroups.users.list":
            group = params.get("usergroup")
            with self._cond:
                members = self.usergroups.get(group) if group else None
            if members is None:
                body = {"ok": False, "error": "no_such_subteam"}
            else:
                body = {"ok": True, "users": list(members)}
        elif method in ("reactions.add", "reactions.remove"):
            body = {"ok": True}
        else:
            body = {"ok": False, "error": "unknown_method"}
        self._record(Call(method, params, headers, path, time.time(), body), failed=not body["ok"])
        return body


# -- Slack-shaped signed requests ----------------------------------------------------------------


def signature(secret: str, timestamp: str, body: str) -> str:
    """Slack's v0 request signature (what slack_sdk.signature.SignatureVerifier checks)."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: str, *, content_type: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature(secret, ts, body),
    }


@dataclass
class Reply:
    status: int
    body: str
    seconds: float

    def json(self) -> dict:
        return json.loads(self.body) if self.body else {}


def post(url: str, body: str, headers: dict[str, str], *, timeout: float = 10.0) -> Reply:
    """POST and return status, body and how long the answer took (errors are replies, not raises)."""
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, response.read().decode(), time.perf_counter() - start)
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read().decode(), time.perf_counter() - start)


_event_ids = itertools.count(1)
_message_ts = itertools.count(1)


def new_ts() -> str:
    return f"{int(time.time())}.{next(_message_ts):06d}"


def message_event(
    text: str,
    *,
    user: str = "U0000USER",
    channel: str = "C0000CHAN",
    channel_type: str = "channel",
    ts: str | None = None,
    thread_ts: str | None = None,
    type: str = "message",
    **extra: object,
) -> dict:
    """The inner `event` of a message.channels / message.im / app_mention delivery."""
    event: dict = {
        "type": type,
        "user": user,
        "text": text,
        "ts": ts or new_ts(),
        "channel": channel,
        "event_ts": ts or new_ts(),
        "client_msg_id": "5b2e1c6e-0000-4000-8000-000000000000",
        "team": TEAM_ID,
        "blocks": [],
    }
    if type == "message":
        event["channel_type"] = channel_type
    if thread_ts:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return event


def reaction_event(
    reaction: str, *, message_ts: str, user: str = "U0000USER", channel: str = "C0000CHAN", item_user: str = BOT_USER_ID
) -> dict:
    """The inner `event` of a reaction_added delivery (a reaction on a message)."""
    return {
        "type": "reaction_added",
        "user": user,
        "reaction": reaction,
        "item_user": item_user,
        "item": {"type": "message", "channel": channel, "ts": message_ts},
        "event_ts": new_ts(),
    }


def home_opened_event(user: str) -> dict:
    """The inner `event` of an app_home_opened delivery (the Home tab)."""
    return {"type": "app_home_opened", "user": user, "channel": "D0000HOME", "tab": "home", "event_ts": new_ts()}


def view_actions(action: dict, *, user: str) -> dict:
    """The `payload` of a click or a select in the bot's App Home view."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {"type": "view", "view_id": "V0000TEST"},
        "trigger_id": "1234.5678.abcdef",
        "team": {"id": TEAM_ID, "domain": "stub"},
        "is_enterprise_install": False,
        "view": {"id": "V0000TEST", "type": "home", "blocks": []},
        "actions": [{**action, "action_ts": f"{time.time():.6f}"}],
    }


def event_callback(event: dict, *, event_id: str | None = None) -> dict:
    """The envelope Slack POSTs to the Request URL (Events API)."""
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "context_team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_event_ids):010d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6Im1lc3NhZ2UifQ",
    }


def slash_command(
    text: str, *, response_url: str, user: str = "U0000USER", channel: str = "C0000CHAN", command: str = "/gemini-check"
) -> dict[str, str]:
    """The form fields of a slash-command invocation."""
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "team_domain": "stub",
        "channel_id": channel,
        "channel_name": "general",
        "user_id": user,
        "user_name": "someone",
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": "1234.5678.abcdef",
    }


def block_actions(
    message: dict, action: dict, *, response_url: str, user: str = "U0000USER", channel: str = "C0000CHAN"
) -> dict:
    """The `payload` of a button click on a message the bot posted."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": False,
            "thread_ts": message.get("thread_ts"),
        },
        "trigger_id": "1234.5678.abcdef",
        "team": {"id": TEAM_ID, "domain": "stub"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "general"},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {**action, "block_id": action.get("block_id", "answer_actions"), "action_ts": f"{time.time():.6f}"}
        ],
    }


def message_action(
    message: dict,
    *,
    response_url: str,
    callback_id: str = "diagnose_error",
    user: str = "U0000USER",
    channel: str = "C0000CHAN",
) -> dict:
    """The `payload` of a message shortcut (`type: message_action`) used on `message`."""
    return {
        "type": "message_action",
        "token": "legacy-verification-token",
        "action_ts": f"{time.time():.6f}",
        "team": {"id": TEAM_ID, "domain": "stub"},
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": TEAM_ID},
        "channel": {"id": channel, "name": "general"},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": f"{next(_event_ids)}.{int(time.time())}.0123456789abcdef",
        "response_url": response_url,
        "message_ts": message["ts"],
        "message": message,
    }


def feedback_action(message: dict, vote: str) -> dict:
    """The action of a click on the 👍 (`up`) or 👎 of a message's feedback_buttons element."""
    [block] = [b for b in message["blocks"] if b["type"] == "context_actions"]
    element = block["elements"][0]
    button = element["positive_button" if vote == "up" else "negative_button"]
    return {
        "type": "feedback_buttons",
        "action_id": element["action_id"],
        "block_id": block["block_id"],
        "text": button["text"],
        "value": button["value"],
    }


def view_submission(view: dict, values: dict, *, user: str = "U0000USER") -> dict:
    """The `payload` of a modal's submission: the view as opened, with the inputs' state."""
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "stub"},
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "trigger_id": f"{next(_event_ids)}.{int(time.time())}.fedcba9876543210",
        "view": {
            **view,
            "id": view.get("id", "V0000VIEW"),
            "team_id": TEAM_ID,
            "state": {"values": values},
            "hash": "1700000000.abcdef",
            "app_id": APP_ID,
            "bot_id": BOT_ID,
        },
        "response_urls": [],
        "is_enterprise_install": False,
    }


def as_json(payload: dict) -> tuple[str, str]:
    return json.dumps(payload), "application/json"


def as_form(fields: dict[str, str]) -> tuple[str, str]:
    return urlencode(fields), "application/x-www-form-urlencoded"


def as_payload_form(payload: dict) -> tuple[str, str]:
    return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
