"""Forged and replayed Slack requests are refused and change nothing.

Over a hundred variants of an event, a slash command and a button click (wrong secret, missing headers,
stale, future and replayed timestamps, tampered bodies, wrong signature versions and encodings,
header injection...) are sent to the real bolt App behind waitress. Each must get a 4xx, and none may
reach a listener, call Slack, post to a response URL or write a row in the state database. The same
requests correctly signed are then acted upon, which shows the checks above can see an accepted one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.bot_harness import KEY_ERROR, SECRET, Running
from tests.slack_stub import (
    BOT_USER_ID,
    Reply,
    as_form,
    as_json,
    as_payload_form,
    block_actions,
    event_callback,
    message_event,
    new_ts,
    post,
    signature,
    slash_command,
)

STALE_S = 5 * 60  # Slack's documented window


@dataclass(frozen=True)
class Request:
    """What one forged variant sends: body, headers, and optionally raw header lines (injection)."""

    body: str
    headers: dict[str, str]
    raw_headers: list[str] | None = None


def _bodies(running: Running) -> dict[str, tuple[str, str]]:
    """One request of each kind that the bot acts upon when it is signed correctly."""
    event = event_callback(message_event(KEY_ERROR))
    command = slash_command(KEY_ERROR, response_url=running.slack.response_url("forged"))
    clicked = {"type": "message", "user": BOT_USER_ID, "text": "answer", "blocks": [], "ts": new_ts()}
    button = {"type": "button", "action_id": "feedback_fixed", "value": json.dumps({"e": "api-key-invalid", "c": 0.9})}
    click = block_actions(clicked, button, response_url=running.slack.response_url("forged"))
    return {"event": as_json(event), "slash": as_form(command), "click": as_payload_form(click)}


def _sign(body: str, ts: int | str, secret: str = SECRET) -> str:
    return signature(secret, str(ts), body)


def _headers(ctype: str, ts: int | str | None, sig: str | None) -> dict[str, str]:
    headers = {"Content-Type": ctype}
    if ts is not None:
        headers["X-Slack-Request-Timestamp"] = str(ts)
    if sig is not None:
        headers["X-Slack-Signature"] = sig
    return headers


def _variants(body: str, ctype: str) -> dict[str, Request]:
    """Every way a request can be forged or replayed, for one correctly formed body."""
    now = int(time.time())
    good = _sign(body, now)
    hexdigest = good.removeprefix("v0=")
    other = body.replace("U0000USER", "U0000EVIL") if "U0000USER" in body else body + " "
    raw_ts = f"X-Slack-Request-Timestamp: {now}"

    def signed(ts: int | str, sig: str | None = None, content: str = body) -> Request:
        return Request(content, _headers(ctype, ts, sig if sig is not None else _sign(content, ts)))

    def with_sig(sig: str | None, ts: int | str | None = now, content: str = body) -> Request:
        return Request(content, _headers(ctype, ts, sig))

    sha1 = "v0=" + hmac.new(SECRET.encode(), f"v0:{now}:{body}".encode(), hashlib.sha1).hexdigest()
    variants: dict[str, Request] = {
        "wrong secret": with_sig(_sign(body, now, "not-the-secret")),
        "empty secret": with_sig(_sign(body, now, "")),
        "secret with a trailing newline": with_sig(_sign(body, now, SECRET + "\n")),
        "no signature header": with_sig(None),
        "no timestamp header": with_sig(good, ts=None),
        "no headers at all": with_sig(None, ts=None),
        "stale timestamp (5 min 1 s)": signed(now - STALE_S - 1),
        "stale timestamp (1 hour)": signed(now - 3600),
        "future timestamp (5 min 30 s)": signed(now + STALE_S + 30),  # margin: the test may run slowly
        "future timestamp (1 day)": signed(now + 86400),
        "replay: captured 10 min ago, resent": signed(now - 600),
        "replay: old signature, fresh timestamp": with_sig(_sign(body, now - 600)),
        "timestamp changed after signing": with_sig(_sign(body, now - 5)),
        "tampered body": with_sig(good, content=other),
        "body with a byte appended": with_sig(good, content=body + "&"),
        "body truncated": with_sig(good, content=body[:-1]),
        "signature of another body": with_sig(_sign(other, now)),
        "version prefix v1=": with_sig("v1=" + hexdigest),
        "no version prefix": with_sig(hexdigest),
        "uppercase hex": with_sig("v0=" + hexdigest.upper()),
        "truncated hex": with_sig(good[:-1]),
        "hex with an extra digit": with_sig(good + "0"),
        "empty signature": with_sig("v0="),
        "all-zero signature": with_sig("v0=" + "0" * 64),
        "sha1 instead of sha256": with_sig(sha1),
        "signed without the v0: base prefix": with_sig(
            "v0=" + hmac.new(SECRET.encode(), f"{now}:{body}".encode(), hashlib.sha256).hexdigest()
        ),
        "empty body, the real body's signature": with_sig(good, content=""),
        "empty body, unsigned": Request("", {"Content-Type": ctype}),
        "non-numeric timestamp": signed("soon"),
        "fractional timestamp": signed(f"{now}.5"),
        "timestamp zero": signed(0),
        "negative timestamp": signed(-1),
        "huge timestamp": signed("9" * 30),
        "two signatures in one header": with_sig(f"{_sign(body, now, 'x')},{good}"),
        "header injection in the timestamp": Request(
            body,
            {"Content-Type": ctype},
            raw_headers=[f"X-Slack-Request-Timestamp: {now}\r\nX-Slack-Signature: {_sign(body, now, 'x')}"],
        ),
        "obs-fold continuation smuggling a signature": Request(
            body,
            {"Content-Type": ctype},
            raw_headers=[raw_ts, f"X-Slack-Signature: {_sign(body, now, 'x')}", f" {good}"],
        ),
    }
    return variants


def _send(running: Running, request: Request) -> Reply:
    if request.raw_headers is None:
        return post(running.events_url, request.body, request.headers, timeout=5)
    # A hand-made request: header lines urllib would refuse to send.
    data = request.body.encode()
    head = ["POST /slack/events HTTP/1.1", f"Host: 127.0.0.1:{running.server.port}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in request.headers.items()] + request.raw_headers
    head.append(f"Content-Length: {len(data)}")
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", running.server.port), timeout=5) as sock:
        sock.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks).decode("utf-8", "replace")
    status = int(raw.split(" ", 2)[1]) if raw.startswith("HTTP/") else 0
    return Reply(status, raw.partition("\r\n\r\n")[2], time.perf_counter() - start)


def _state_rows(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        tables = ("pastes", "feedback", "checks", "processed_events", "pending_jobs")
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


def _spy(running: Running) -> list[dict]:
    """Every request that gets past bolt's built-in middleware (signature verification included)."""
    reached: list[dict] = []

    @running.bot.app.middleware
    def record(body, next: Callable[[], object]):  # bolt passes arguments by name: `next` it is
        reached.append(body)
        return next()

    return reached


def test_forged_and_replayed_requests_are_refused_and_change_nothing(running: Running, record_property):
    reached = _spy(running)
    calls_before = len(running.slack.calls()) + len(running.slack.failed_calls())
    refused: list[str] = []
    accepted: list[str] = []
    for kind, (body, ctype) in _bodies(running).items():
        for name, request in _variants(body, ctype).items():
            reply = _send(running, request)
            label = f"{kind}: {name} -> {reply.status} {reply.body[:80]!r}"
            ok = 400 <= reply.status < 500  # refused before bolt parses anything: no 500, no traceback
            (refused if ok else accepted).append(label)
    total = len(refused) + len(accepted)
    print(f"{total} forged variants refused, every one with a 4xx")
    record_property("forged_variants", total)
    assert total >= 100
    assert accepted == [], "\n".join(accepted)
    time.sleep(0.3)  # anything accepted would be on the listener pool by now
    assert reached == [], [b.get("type") for b in reached]
    assert running.bot.events_done == 0
    assert len(running.slack.calls()) + len(running.slack.failed_calls()) == calls_before
    assert _state_rows(running.state_path) == {
        "pastes": 0,
        "feedback": 0,
        "checks": 0,
        "processed_events": 0,
        "pending_jobs": 0,
    }

    # Control: the same three requests correctly signed are acted upon, so the checks above can see one.
    replies = {kind: running.send(body, ctype) for kind, (body, ctype) in _bodies(running).items()}
    assert {kind: r.status for kind, r in replies.items()} == {"event": 200, "slash": 200, "click": 200}
    assert "api-key-invalid" in replies["slash"].body
    running.settle(2)
    assert len(reached) == 3
    rows = _state_rows(running.state_path)
    assert rows["pastes"] >= 2 and rows["feedback"] == 1 and rows["processed_events"] >= 1
    assert running.slack.calls("chat.postMessage") and running.slack.calls("chat.update")
