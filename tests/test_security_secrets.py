"""Secrets pasted into Slack go nowhere: a corpus of keys and tokens pushed through the whole bot (signed
HTTP requests, the real bolt App, the Slack and Gemini stand-ins) with DEBUG logging through the real
`configure_logging`, then every log line, every call Slack received, every answer the bot returned over
HTTP, every row of every state table and the state files' bytes are searched for each secret."""

from __future__ import annotations

import io
import json
import logging
import random
import sqlite3
import string
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from bot.logs import RedactingFilter, configure_logging
from tests.bot_harness import KEY_ERROR, RATE_ERROR, SECRET, TOKEN, Running, running_bot
from tests.gemini_stub import GeminiStub, stub_key
from tests.secret_shapes import SHAPES, Minter, decoded_views
from tests.slack_stub import (
    BOT_USER_ID,
    Reply,
    SlackStub,
    as_form,
    as_payload_form,
    block_actions,
    message_event,
    new_ts,
    slash_command,
)

ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Secret:
    kind: str
    value: str  # what must never be found
    text: str  # how it appears in a paste
    middle: str  # a distinctive 12-character slice of `value`


def _make(kind: str, rnd: random.Random) -> Secret:
    def pick(n: int, chars: str = ALNUM) -> str:
        return "".join(rnd.choice(chars) for _ in range(n))

    digits = string.digits
    if kind == "google-api-key":
        value = "AIzaSy" + pick(33, ALNUM + "_-")
        text = value
    elif kind == "google-auth-key":
        value = "AQ.Ab8R" + pick(46, ALNUM + "_-")
        text = value
    elif kind == "oauth-token":
        value = "ya29.a0" + pick(80, ALNUM + "_-")
        text = value
    elif kind == "slack-bot-token":
        value = f"xoxb-{pick(12, digits)}-{pick(13, digits)}-{pick(24)}"
        text = value
    elif kind == "slack-user-token":
        value = f"xoxp-{pick(12, digits)}-{pick(12, digits)}-{pick(13, digits)}-{pick(32, '0123456789abcdef')}"
        text = value
    elif kind == "slack-app-token":
        value = f"xapp-1-A{pick(10, string.ascii_uppercase + digits)}-{pick(13, digits)}-{pick(64, '0123456789abcdef')}"
        text = value
    elif kind == "bearer-header":
        value = pick(48, ALNUM + "-_")
        text = f"Authorization: Bearer {value}"
    elif kind == "key-param":
        value = pick(36, ALNUM + "-_")
        text = f"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent?key={value}"
    elif kind == "private-key":
        lines = [pick(64, ALNUM + "+/") for _ in range(6)]
        value = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END PRIVATE KEY-----"
        text = value
        return Secret(kind, value, text, lines[2][26:38])
    elif kind == "api-key-header":
        value = pick(39, ALNUM + "_-")
        text = f"x-goog-api-key: {value}"
    elif kind == "env-assignment":
        value = pick(39, ALNUM + "_-")
        text = f"GEMINI_API_KEY={value}"
    else:
        raise ValueError(kind)
    middle = value[len(value) // 2 - 6 : len(value) // 2 + 6]
    return Secret(kind, value, text, middle)


KINDS = (
    "google-api-key",
    "google-auth-key",
    "oauth-token",
    "slack-bot-token",
    "slack-user-token",
    "slack-app-token",
    "bearer-header",
    "key-param",
    "private-key",
    "api-key-header",
    "env-assignment",
)
ONE_WORD = (
    "google-api-key",
    "google-auth-key",
    "oauth-token",
    "slack-bot-token",
    "slack-user-token",
    "slack-app-token",
)


class Corpus:
    """Mints a fresh secret for every (kind, place) so a find names exactly where it went in."""

    def __init__(self, seed: int):
        self._rnd = random.Random(seed)
        self.secrets: list[tuple[str, Secret]] = []  # (place, secret)

    def new(self, kind: str, place: str) -> Secret:
        secret = _make(kind, self._rnd)
        self.secrets.append((place, secret))
        return secret


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Only the handler configure_logging installs while the test runs (pytest's own capture of
    thousands of DEBUG records would double the time and flood a failure report); then as before."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    filters = {h: list(h.filters) for h in handlers}
    for handler in handlers:
        root.removeHandler(handler)
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler, kept in filters.items():
        handler.filters[:] = kept
        root.addHandler(handler)
    root.setLevel(level)


def _variants(needle: str) -> set[str]:
    """The needle as text, inside JSON, and URL-encoded (how a leak would look in each place)."""
    return {needle, json.dumps(needle)[1:-1], quote_plus(needle), quote(needle, safe="")}


def _state_rows(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = []
        for table in tables:
            rows += [f"{table}: {row!r}" for row in conn.execute(f'SELECT * FROM "{table}"')]
        return rows
    finally:
        conn.close()


def _file_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.parent.glob(path.name + "*"))}


def _push_corpus(running: Running, corpus: Corpus) -> tuple[list[Reply], list[tuple[str, str, str | None]]]:
    """Send every paste, command and click; return the HTTP replies and the pastes that must warn
    (place, channel, thread)."""
    warned: list[tuple[str, str, str | None]] = []
    parallel: list[Callable[[], Reply]] = []  # independent requests, sent a few at a time
    checks: list[Callable[[], Reply]] = []  # check runs, sent one by one (the checker's queue is bounded)
    runs = 0

    def event(place: str, text: str, **fields) -> None:
        nonlocal runs
        event = message_event(text, **fields)
        parallel.append(lambda: running.event(event)[0])
        runs += 1

    def slash(text: str, name: str, *, check: bool = False, **fields: str) -> None:
        body = as_form(slash_command(text, response_url=running.slack.response_url(name), **fields))

        def send() -> Reply:
            reply = running.send(*body)
            assert reply.status == 200
            if not check:  # a look-up answers in the acknowledgement, with the warning first
                assert "rotate" in reply.body, reply.body[:300]
            return reply

        (checks if check else parallel).append(send)

    for kind in KINDS:
        s = corpus.new(kind, "channel paste")
        event("channel paste", f"{KEY_ERROR}\nmy config:\n{s.text}")
        warned.append(("channel paste", "C0000CHAN", None))

        s = corpus.new(kind, "channel chatter")
        event("channel chatter", f"here is what I use, does it look right? {s.text}", channel="C0000CHA2")
        warned.append(("channel chatter", "C0000CHA2", None))

        s = corpus.new(kind, "dm")
        event("dm", f"{RATE_ERROR}\n{s.text}", channel="D0000DM01", channel_type="im")
        warned.append(("dm", "D0000DM01", None))

        s = corpus.new(kind, "mention")
        ts = new_ts()
        text = f"<@{BOT_USER_ID}> why does our pipeline stall with this? {s.text}"
        event("mention", text, type="app_mention", ts=ts, channel="C0000CHA3")
        event("mention", text, ts=ts, channel="C0000CHA3")  # the same message as a message event
        warned.append(("mention", "C0000CHA3", None))

        s = corpus.new(kind, "thread reply")
        parent = new_ts()
        event("thread reply", f"{RATE_ERROR}\n{s.text}", thread_ts=parent, channel="C0000CHA4")
        warned.append(("thread reply", "C0000CHA4", parent))

        s = corpus.new(kind, "edited message")
        event(
            "edited message",
            "",
            subtype="message_changed",
            message={"type": "message", "user": "U0000USER", "text": f"{KEY_ERROR}\n{s.text}", "ts": new_ts()},
            previous_message={"type": "message", "user": "U0000USER", "text": "oops", "ts": new_ts()},
        )

        s = corpus.new(kind, "slash lookup")
        slash(f"{KEY_ERROR}\n{s.text}", "lookup")
        s = corpus.new(kind, "slash lookup shared")
        slash(f"{RATE_ERROR} {s.text} share", "lookup-share")
        s = corpus.new(kind, "slash lookup unmatched")
        slash(f"the nightly export hangs, creds were {s.text}", "lookup-none")

        if kind in ONE_WORD:
            s = corpus.new(kind, "slash key check")
            slash(f"key {s.value}", f"key-{kind}", check=True)
            s = corpus.new(kind, "slash key check shared")
            slash(f"key {s.value} share", f"key-share-{kind}", check=True)
            s = corpus.new(kind, "slash bare secret")
            slash(s.value, f"bare-{kind}", check=True)
            s = corpus.new(kind, "slash model name")
            slash(f"model {s.value}", f"model-{kind}", check=True)
        if kind != "private-key":  # one word only (a PEM block is many)
            s = corpus.new(kind, "slash endpoint url")
            slash(f"endpoint https://gateway.example.com/v1?key={s.value}", f"endpoint-{kind}", check=True)

        # Buttons: a real answer's buttons, with the secret in the values a click sends back.
        s = corpus.new(kind, "button values")
        message = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": "BBOT0001",
            "text": "answer",
            "blocks": [],
            "ts": new_ts(),
            "thread_ts": new_ts(),
        }
        clicks = [
            {"action_id": "feedback_fixed", "value": json.dumps({"e": "api-key-invalid", "c": 0.9, "m": s.text})},
            {"action_id": "feedback_not_it", "value": json.dumps({"e": "rate-limit-exceeded", "o": [[s.text, 1]]})},
            {"action_id": "run_check", "value": json.dumps({"k": "model", "m": s.text})},
            {"action_id": "show_candidates", "value": json.dumps({"e": s.text, "o": [[s.text, 0.5]]})},
            {"action_id": "show_entry", "value": s.text},
        ]
        for button in clicks:
            button = {"type": "button", "text": {"type": "plain_text", "text": "b"}, **button}
            payload = block_actions(message, button, response_url=running.slack.response_url(f"click-{kind}"))
            body = as_payload_form(payload)
            (checks if button["action_id"] == "run_check" else parallel).append(lambda body=body: running.send(*body))
            runs += 1

    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda send: send(), parallel))
    replies += [send() for send in checks]
    assert all(r.status == 200 for r in replies)
    running.settle(runs)
    return replies, warned


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_in_pastes_commands_and_clicks_are_found_nowhere(
    kb, slack: SlackStub, gemini: GeminiStub, tmp_path: Path, fmt: str, restore_logging, record_property
):
    log_stream = io.StringIO()
    ours = configure_logging(level="DEBUG", fmt=fmt, stream=log_stream)
    for handler in logging.getLogger().handlers:
        assert any(isinstance(f, RedactingFilter) for f in handler.filters)
        if handler is not ours:  # pytest's per-phase capture (see restore_logging)
            logging.getLogger().removeHandler(handler)
    corpus = Corpus(seed=1 if fmt == "text" else 2)
    state_path = tmp_path / "state.sqlite"
    with running_bot(kb, slack, state_path, checks_per_minute=0, checks_global_per_minute=0) as running:
        replies, warned = _push_corpus(running, corpus)
        # Slash checks answer through the response URL once they finish.
        expected = sum(1 for place, _ in corpus.secrets if place.startswith("slash") and "lookup" not in place)
        slack.wait_for(
            lambda: len([c for c in slack.calls("response_url") if "/response/lookup" not in c.path]) >= expected,
            timeout=30,
        )
        live_files = _file_bytes(state_path)  # the WAL as it is while the bot runs
        ephemerals = [c.params for c in slack.calls("chat.postEphemeral")]
    after_files = _file_bytes(state_path)
    ours.flush()

    # The poster of every paste holding a secret is told, privately and once, to delete it and rotate.
    warnings = [
        (p["channel"], p.get("thread_ts"))
        for p in ephemerals
        if p["user"] == "U0000USER" and "rotate" in p["text"] and "delete" in p["text"]
    ]
    assert sorted(warnings, key=str) == sorted(((c, t) for _, c, t in warned), key=str), (warnings, warned)

    log_lines = log_stream.getvalue().splitlines()
    assert len(log_lines) > 100, "DEBUG logging did not reach the configured stream"
    if fmt == "json":
        parsed = [json.loads(line) for line in log_lines if line.startswith("{")]
        assert parsed and {"time", "level", "logger", "message"} <= set(parsed[0])
        answered = [p for p in parsed if p["message"].startswith("answered ")]
        assert answered and all(p.get("event_id") and isinstance(p.get("ms"), float) for p in answered)
    slack_calls = [json.dumps([c.method, c.params, c.path], ensure_ascii=False) for c in slack.calls()]
    slack_calls += [json.dumps([c.method, c.params, c.path], ensure_ascii=False) for c in slack.failed_calls()]
    http_answers = [r.body for r in replies]
    rows = _state_rows(state_path)
    assert any("[REDACTED" in row for row in rows), "no redacted paste was stored: the corpus missed the state"
    files = {f"live {name}": data for name, data in live_files.items()}
    files.update({f"closed {name}": data for name, data in after_files.items()})
    assert any("-wal" in name for name in files), "no WAL file was searched"

    places: dict[str, list[str]] = {
        "log line": log_lines,
        "Slack call": slack_calls,
        "HTTP answer": http_answers,
        "state row": rows,
    }
    team_key = stub_key("valid")
    held = [  # what the bot itself holds: its token, the signing secret, the team key
        ("bot's settings", Secret("bot-token", TOKEN, TOKEN, TOKEN[8:20])),
        ("bot's settings", Secret("signing-secret", SECRET, SECRET, SECRET[10:22])),
        ("bot's settings", Secret("team-key", team_key, team_key, team_key[10:22])),
    ]
    joined = {where: "\n\x00\n".join(items) for where, items in places.items()}  # one search per place
    leaks = []
    for place, secret in corpus.secrets + held:
        variants = _variants(secret.value) | _variants(secret.middle)
        for where, items in places.items():
            if any(v in joined[where] for v in variants):
                leaks += [
                    f"{secret.kind} from the {place} in {where} #{i}: {item[:300]}"
                    for i, item in enumerate(items)
                    if any(v in item for v in variants)
                ]
        leaks += [
            f"{secret.kind} from the {place} in the bytes of {name}"
            for name, data in files.items()
            if any(v.encode() in data for v in variants)
        ]
    searched = sum(len(items) for items in places.values()) + len(files)
    summary = f"{len(corpus.secrets) + len(held)} secrets x {searched} places ({fmt} logs), {len(leaks)} found"
    print(summary)
    record_property("secrets_summary", summary)
    assert not leaks, "\n".join(leaks[:20])


def test_a_feedback_click_with_a_key_for_entry_id_stores_no_key(kb, slack: SlackStub, tmp_path: Path):
    key = _make("google-api-key", random.Random(3)).value
    state_path = tmp_path / "state.sqlite"
    with running_bot(kb, slack, state_path) as running:
        message = {"type": "message", "user": BOT_USER_ID, "text": "answer", "blocks": [], "ts": new_ts()}
        button = {"type": "button", "action_id": "feedback_not_it", "value": json.dumps({"e": key, "c": 0.5})}
        reply = running.send(*as_payload_form(block_actions(message, button, response_url=slack.response_url())))
        assert reply.status == 200
        running.settle(1)
    assert not any(key in row for row in _state_rows(state_path))


# -- the shape corpus: 69 shapes in 10 classes, through every path, scanned in clear and decoded forms --------


def _shape_corpus(running: Running, minter: Minter) -> tuple[list[Reply], dict[str, str], int, int]:
    """Every shape through every path; returns the HTTP replies, channel -> shape of each paste that must
    warn, the listener runs, and the number of slash checks (they answer through the response URL)."""
    parallel: list[Callable[[], Reply]] = []
    checks: list[Callable[[], Reply]] = []
    must_warn: dict[str, str] = {}
    runs = 0

    def event(text: str, **fields) -> None:
        nonlocal runs
        event = message_event(text, **fields)
        parallel.append(lambda: running.event(event)[0])
        runs += 1

    def slash(text: str, name: str, check: bool) -> None:
        body = as_form(slash_command(text, response_url=running.slack.response_url(name)))
        (checks if check else parallel).append(lambda: running.send(*body))

    n_checks = 0
    for i in range(len(SHAPES)):
        s = minter.new(i, "channel paste")
        event(f"{KEY_ERROR}\n{s.text}", channel=f"C{i:04d}PAST")
        must_warn[f"C{i:04d}PAST"] = s.shape
        s = minter.new(i, "dm")
        event(f"{RATE_ERROR}\n{s.text}", channel=f"D{i:04d}DMDM", channel_type="im")
        must_warn[f"D{i:04d}DMDM"] = s.shape
        s = minter.new(i, "mention")
        ts, text = new_ts(), f"<@{BOT_USER_ID}> why does this fail? {s.text}"
        event(text, type="app_mention", ts=ts, channel=f"C{i:04d}MENT")
        event(text, ts=ts, channel=f"C{i:04d}MENT")
        must_warn[f"C{i:04d}MENT"] = s.shape
        s = minter.new(i, "edited message")
        event(
            "",
            subtype="message_changed",
            channel=f"C{i:04d}EDIT",
            message={"type": "message", "user": "U0000USER", "text": f"{KEY_ERROR}\n{s.text}", "ts": new_ts()},
            previous_message={"type": "message", "user": "U0000USER", "text": "oops", "ts": new_ts()},
        )
        s = minter.new(i, "slash lookup")
        slash(f"the nightly export hangs, creds were {s.text}", f"lookup-{i}", check=False)
        if s.one_word:
            for place, command in (
                ("slash key", "key {v}"),
                ("slash model", "model {v} deep"),
                ("slash endpoint", "endpoint https://gateway.example.com/v1/{v}"),
            ):
                s = minter.new(i, place)
                slash(command.replace("{v}", s.text), f"check-{i}-{place[6:]}", check=True)
                n_checks += 1
        s = minter.new(i, "button values")
        message = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": "BBOT0001",
            "text": "a",
            "blocks": [],
            "ts": new_ts(),
            "thread_ts": new_ts(),
        }
        for action, value in (
            ("feedback_not_it", json.dumps({"e": "rate-limit-exceeded", "o": [[s.text, 1]], "m": s.text})),
            ("run_check", json.dumps({"k": "model", "m": s.text})),
            ("show_entry", s.text),
        ):
            button = {
                "type": "button",
                "text": {"type": "plain_text", "text": "b"},
                "action_id": action,
                "value": value,
            }
            body = as_payload_form(block_actions(message, button, response_url=running.slack.response_url(f"b{i}")))
            (checks if action == "run_check" else parallel).append(lambda body=body: running.send(*body))
            runs += 1
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda send: send(), parallel))
    replies += [send() for send in checks]
    running.settle(runs)
    return replies, must_warn, runs, n_checks


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_secret_shape_through_every_path_is_found_nowhere_even_decoded(
    kb, slack: SlackStub, gemini: GeminiStub, tmp_path: Path, fmt: str, restore_logging, record_property
):
    log_stream = io.StringIO()
    ours = configure_logging(level="DEBUG", fmt=fmt, stream=log_stream)
    for handler in list(logging.getLogger().handlers):
        if handler is not ours:
            logging.getLogger().removeHandler(handler)
    minter = Minter(seed=21 if fmt == "text" else 22)
    state_path = tmp_path / "state.sqlite"
    with running_bot(kb, slack, state_path, checks_per_minute=0, checks_global_per_minute=0) as running:
        replies, must_warn, _runs, n_checks = _shape_corpus(running, minter)
        slack.wait_for(
            lambda: len([c for c in slack.calls("response_url") if "/check-" in c.path]) >= n_checks, timeout=60
        )
        live_files = _file_bytes(state_path)
        ephemerals = [c.params for c in slack.calls("chat.postEphemeral")]
    files = {**{f"live {k}": v for k, v in live_files.items()}, **_file_bytes(state_path)}
    ours.flush()
    assert all(r.status == 200 for r in replies)

    places: dict[str, list[str]] = {
        "log line": log_stream.getvalue().splitlines(),
        "Slack call": [json.dumps([c.method, c.params, c.path], ensure_ascii=False) for c in slack.calls()],
        "HTTP answer": [r.body for r in replies],
        "state row": _state_rows(state_path),
        "state file": [data.decode("latin-1") for data in files.values()],
    }
    assert len(places["log line"]) > 100 and any("checks:" in row for row in places["state row"])
    views = {
        where: "\n\x00\n".join(v for item in items for v in decoded_views(item)) for where, items in places.items()
    }
    tried: Counter[str] = Counter()
    leaks: Counter[str] = Counter()
    examples = []
    for place, secret in minter.minted:
        tried[secret.cls] += 1
        found = [where for where, text in views.items() if any(n in text for n in secret.needles)]
        if found:
            leaks[secret.cls] += 1
            examples.append(f"{secret.shape} from the {place} in {', '.join(found)}")
    warned = {p["channel"] for p in ephemerals if "rotate" in p["text"] and "delete" in p["text"]}
    unwarned = sorted(shape for channel, shape in must_warn.items() if channel not in warned)
    summary = (
        f"{sum(tried.values())} secrets of {len(SHAPES)} shapes tried ({fmt} logs), {sum(leaks.values())} leaked; "
        + ", ".join(f"{cls} {leaks[cls]}/{n}" for cls, n in sorted(tried.items()))
        + f"; {len(must_warn) - len(unwarned)}/{len(must_warn)} pastes warned"
    )
    print(summary)
    record_property("shapes_summary", summary)
    assert not examples, "\n".join(examples[:20])
    assert not unwarned, unwarned
