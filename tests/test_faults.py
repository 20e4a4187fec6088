"""Faults end to end: the real bolt App behind waitress on loopback, signed Slack requests, and the Slack
stand-in misbehaving (429 with Retry-After, 5xx, answers slower than the client timeout), the state
database locked, full or read-only, payloads a listener cannot handle, and the knowledge-base file
disappearing under /healthz.

The retry policy under test (bot.app.SlackRetryHandler): a reply is retried only when Slack said nothing
was done (429, 503, no connection), so it is posted at most once; idempotent calls are also retried after
500s and timeouts."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import bot.app
from kb.store import KnowledgeBase
from tests.bot_harness import KEY_ERROR, RATE_ERROR, Running, running_bot
from tests.slack_stub import Scripted, SlackStub, as_json, event_callback, message_event

RATE_LIMITED = Scripted(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
UNAVAILABLE = Scripted(503, {"ok": False, "error": "service_unavailable"})
INTERNAL = Scripted(500, {"ok": False, "error": "internal_error"})


def _posted(running: Running) -> list[tuple[str, str | None]]:
    return sorted((m["channel"], m.get("thread_ts")) for m in running.messages())


def _failed(running: Running, method: str = "chat.postMessage") -> list:
    return [c for c in running.slack.failed_calls() if c.method == method]


def _dm(text: str = KEY_ERROR, channel: str = "D0000DM01") -> dict:
    return message_event(text, channel=channel, channel_type="im")


# -- Slack answers with errors ----------------------------------------------------------------


def test_rate_limited_reply_waits_for_retry_after_posts_once_and_other_events_go_on(running: Running):
    running.slack.script("chat.postMessage", RATE_LIMITED)
    limited = message_event(KEY_ERROR)
    running.event(limited)
    assert running.slack.wait_for(lambda: _failed(running))  # the 429 is out; the listener now waits
    running.event(_dm(RATE_ERROR))  # another event while the first one waits
    running.settle(2)
    assert _posted(running) == [("C0000CHAN", limited["ts"]), ("D0000DM01", None)]
    [refused] = _failed(running)
    by_channel = {c.params["channel"]: c for c in running.slack.calls("chat.postMessage")}
    assert by_channel["C0000CHAN"].at - refused.at >= 0.9  # Retry-After: 1 was honoured
    assert by_channel["D0000DM01"].at < by_channel["C0000CHAN"].at  # the other event did not queue behind it


def test_rate_limit_longer_than_the_cap_gives_up_at_once_and_logs_it(running: Running, caplog):
    caplog.set_level(logging.WARNING, logger="bot.app")
    running.slack.script(
        "chat.postMessage", Scripted(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "120"})
    )
    running.event(message_event(KEY_ERROR))
    running.settle(1)  # bounded: a 2-minute wait would fail here
    assert running.messages() == [] and len(_failed(running)) == 1
    assert "rate limited for 120 s; not retrying" in caplog.text and "reply not posted" in caplog.text
    running.event(_dm())  # normal service afterwards
    running.settle(2)
    assert _posted(running) == [("D0000DM01", None)]


def test_503s_are_retried_with_backoff_and_the_reply_posted_once(running: Running):
    running.slack.script("chat.postMessage", UNAVAILABLE, UNAVAILABLE)
    event = message_event(RATE_ERROR)
    running.event(event)
    running.settle(1)
    assert _posted(running) == [("C0000CHAN", event["ts"])]
    assert len(_failed(running)) == 2


def test_persistent_503s_stop_after_three_tries(running: Running, caplog):
    caplog.set_level(logging.WARNING, logger="bot.app")
    running.slack.script("chat.postMessage", UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)
    running.event(message_event(RATE_ERROR))
    running.settle(1)
    assert running.messages() == [] and len(_failed(running)) == 3
    assert caplog.text.count("retry ") == 2 and "HTTP 503" in caplog.text and "reply not posted" in caplog.text


def test_a_500_on_a_reply_is_not_retried_because_slack_may_have_posted_it(running: Running, caplog):
    caplog.set_level(logging.WARNING, logger="bot.app")
    running.slack.script("chat.postMessage", INTERNAL)
    running.event(message_event(KEY_ERROR))
    running.settle(1)
    assert len(_failed(running)) == 1 and running.messages() == []
    assert "internal_error; reply not posted" in caplog.text


def test_a_reply_slower_than_the_client_timeout_is_not_retried_and_posted_once(
    kb, slack: SlackStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
):
    # Slack receives the post but answers after the client gave up: a blind retry would post twice.
    monkeypatch.setattr(bot.app, "SLACK_TIMEOUT_S", 1)
    caplog.set_level(logging.WARNING, logger="bot.app")
    slack.script("chat.postMessage", Scripted(delay=2.5))
    with running_bot(kb, slack, tmp_path / "state.sqlite") as running:
        slow = message_event(KEY_ERROR)
        running.event(slow)
        running.event(_dm(RATE_ERROR))  # whichever post hangs, the other event is served meanwhile
        running.settle(2)  # both listeners are done: a retry would have been sent by now
        assert slack.wait_for(lambda: len(running.messages()) == 2, timeout=10)  # the slow post lands late
        assert "TimeoutError before Slack answered; not retried" in caplog.text
        assert _posted(running) == [("C0000CHAN", slow["ts"]), ("D0000DM01", None)]  # each exactly once


def test_an_idempotent_call_is_retried_after_a_timeout(kb, slack: SlackStub, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(bot.app, "SLACK_TIMEOUT_S", 1)
    slack.script("views.publish", Scripted(delay=2.5))
    with running_bot(kb, slack, tmp_path / "state.sqlite") as running:
        running.event(message_event("", type="app_home_opened", tab="home", channel="D0000DM01"))
        running.settle(1)
        assert slack.wait_for(lambda: len(slack.calls("views.publish")) == 2, timeout=10)
        first, second = slack.calls("views.publish")
        assert first.params == second.params  # the same view twice: harmless


# -- the state database fails -------------------------------------------------------------------


def test_a_locked_state_database_still_replies_once_and_logs_it(running: Running, caplog):
    caplog.set_level(logging.WARNING, logger="bot.state")
    running.state.db.conn.execute("PRAGMA busy_timeout = 50")
    holder = sqlite3.connect(running.state_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        _, envelope = running.event(event := message_event(RATE_ERROR))
        running.event(event, event_id=envelope["event_id"], **{"X-Slack-Retry-Num": "1"})
        running.settle(2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _posted(running) == [("C0000CHAN", event["ts"])]  # the retry was caught in memory
    assert "could not record a pending job: database is locked" in caplog.text
    assert "could not record a paste: database is locked" in caplog.text


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_full_or_read_only_state_database_still_replies_and_logs_it(running: Running, caplog, fault: str):
    caplog.set_level(logging.WARNING, logger="bot.state")
    conn = running.state.db.conn
    if fault == "full":  # the disk fills up: every table's pages are used up and no page may be added
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
        for fill in (
            "INSERT INTO pastes (at, source, confident, text) VALUES (0, 'fill', 0, hex(randomblob(500)))",
            "INSERT INTO processed_events (key, at) VALUES (hex(randomblob(16)), 0)",
        ):
            with pytest.raises(sqlite3.OperationalError, match="full"):
                for _ in range(1000):
                    conn.execute(fill)
        expected = ["could not record a pending job: database or disk is full", "could not record a paste"]
    else:
        conn.execute("PRAGMA query_only = ON")
        expected = ["could not record a pending job: attempt to write a readonly database", "a paste"]
    running.event(_dm("why does my nightly job print garbage? " + "x " * 2000))  # unmatched: the text is stored
    running.settle(1)
    assert _posted(running) == [("D0000DM01", None)]
    assert all(e in caplog.text for e in expected)


def test_an_unusable_state_path_runs_in_memory_and_still_dedupes(kb, slack: SlackStub, tmp_path: Path):
    (tmp_path / "not-a-dir").write_text("")
    with running_bot(kb, slack, tmp_path / "not-a-dir" / "state.sqlite") as running:
        assert not running.state.persistent
        _, envelope = running.event(event := message_event(KEY_ERROR))
        running.event(event, event_id=envelope["event_id"], **{"X-Slack-Retry-Num": "1"})
        running.settle(2)
        assert _posted(running) == [("C0000CHAN", event["ts"])]
        assert _health(running)[1]["state_persistent"] is False


# -- a listener crashes -------------------------------------------------------------------------


def test_a_payload_a_listener_cannot_handle_is_logged_and_the_others_are_answered(running: Running, caplog):
    caplog.set_level(logging.WARNING)
    bad = [_dm(text) for text in (42, ["a", "list"], {"not": "text"})]  # type: ignore[arg-type]
    bad_ids = [running.event(event)[1]["event_id"] for event in bad]
    odd = running.send(*as_json({**event_callback(message_event(KEY_ERROR)), "event": "not an object"}))
    assert odd.status == 400  # signed but not Slack's shape: refused in one log line, no traceback
    assert "refused a signed request to /slack/events: 'event' is a str, not an object" in caplog.text
    good = message_event(RATE_ERROR)
    running.event(good)
    running.settle(4)
    assert _posted(running) == [("C0000CHAN", good["ts"])]
    for event_id in bad_ids:
        assert f"handling message {event_id} failed" in caplog.text
    assert "TypeError" in caplog.text
    assert _health(running)[0] == 200


# -- /healthz follows the knowledge-base file ----------------------------------------------------


def _health(running: Running) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{running.server.url}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_healthz_turns_503_when_the_knowledge_base_file_goes_and_200_when_it_is_back(
    kb_path: Path, slack: SlackStub, tmp_path: Path
):
    path = tmp_path / "kb.sqlite"
    shutil.copy(kb_path, path)
    with running_bot(KnowledgeBase(path), slack, tmp_path / "state.sqlite") as running:
        status, data = _health(running)
        assert status == 200 and data["kb_loaded"] is True and data["entries"] > 40
        path.unlink()
        status, data = _health(running)
        assert status == 503 and data["kb_loaded"] is False and "unreadable" in data["error"]
        path.write_bytes(b"not a database" * 100)
        assert _health(running)[0] == 503
        shutil.copy(kb_path, path)
        assert _health(running)[0] == 200
