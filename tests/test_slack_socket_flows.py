"""The same paste flows over Socket Mode: bolt's Socket Mode handler on a WebSocket to tests.socket_stub (Slack's
endpoint on loopback), the Slack stand-in as the Web API. Interactive payloads arrive as `interactive`
envelopes; the ack (with a body for a refused form) goes back over the socket."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.app import GeminiBot, build_app
from bot.state import StateDB
from kb.settings import load_bot_settings
from kb.store import KnowledgeBase
from tests.bot_harness import KEY_ERROR, LEAKED_KEY, RATE_ERROR, TOKEN, state_rows
from tests.slack_stub import (
    BOT_USER_ID,
    SlackStub,
    block_actions,
    event_callback,
    feedback_action,
    message_action,
    message_event,
    new_ts,
    view_submission,
)
from tests.socket_stub import SocketStub, events_api_envelope

APP_TOKEN = "xapp-1-A0000TEST-0000-stubappleveltoken"
ONCALL = "S0SOCKET1"


@dataclass
class SocketBot:
    bot: GeminiBot
    slack: SlackStub
    sockets: SocketStub
    state_path: Path

    def interact(self, payload: dict) -> dict:
        """Push an interactive payload and wait for its ack; the ack's payload (or {})."""
        envelope_id = str(uuid.uuid4())
        self.sockets.push(
            {"envelope_id": envelope_id, "type": "interactive", "payload": payload, "accepts_response_payload": True}
        )
        assert self.sockets.wait_for(lambda: self.sockets.acked(envelope_id), timeout=5), "no ack over the socket"
        return self.sockets.acked(envelope_id).payload or {}

    def event(self, event: dict) -> None:
        envelope = events_api_envelope(event_callback(event))
        self.sockets.push(envelope)
        assert self.sockets.wait_for(lambda: self.sockets.acked(envelope["envelope_id"]), timeout=5)

    def settle(self, runs: int) -> None:
        assert self.bot.wait_for_events(runs, timeout=10), f"only {self.bot.events_done} listener runs finished"

    def messages(self) -> list[dict]:
        return [c.params for c in self.slack.calls("chat.postMessage")]


@contextmanager
def socket_bot(kb: KnowledgeBase, tmp_path: Path) -> Iterator[SocketBot]:
    with SlackStub(token=TOKEN, app_token=APP_TOKEN) as slack, SocketStub() as sockets:
        slack.socket_url = sockets.url
        state_path = tmp_path / "state.sqlite"
        state = StateDB(state_path)
        settings = dataclasses.replace(
            load_bot_settings(dict(os.environ)),
            bot_token=TOKEN,
            app_token=APP_TOKEN,
            api_url=slack.api_url,
            oncall_group=ONCALL,
        )
        bot = build_app(settings, kb, state)
        handler = SocketModeHandler(bot.app, APP_TOKEN)
        handler.connect()
        try:
            assert sockets.wait_connected()
            yield SocketBot(bot, slack, sockets, state_path)
        finally:
            handler.close()
            bot.close()
            state.close()


def test_shortcut_over_the_socket_is_acked_and_answered_in_the_thread(kb: KnowledgeBase, tmp_path: Path):
    with socket_bot(kb, tmp_path) as sb:
        parent = sb.slack.add_message("C0000CHAN", {"type": "message", "user": "U0000P", "text": "hi", "ts": new_ts()})
        message = {"type": "message", "user": "U0000P", "text": KEY_ERROR, "ts": new_ts(), "thread_ts": parent["ts"]}
        sb.slack.add_message("C0000CHAN", message)
        assert sb.interact(message_action(message, response_url=sb.slack.response_url())) == {}
        sb.settle(1)
        [reply] = sb.messages()
        assert reply["thread_ts"] == parent["ts"] and "api-key-invalid" in reply["text"]


def test_mention_in_a_thread_over_the_socket_reads_the_parent_once(kb: KnowledgeBase, tmp_path: Path):
    with socket_bot(kb, tmp_path) as sb:
        parent = sb.slack.add_message(
            "C0000CHAN", {"type": "message", "user": "U0000P", "text": RATE_ERROR, "ts": new_ts()}
        )
        ts = new_ts()
        text = f"<@{BOT_USER_ID}> what now?"
        sb.event(message_event(text, type="app_mention", ts=ts, thread_ts=parent["ts"]))
        sb.event(message_event(text, ts=ts, thread_ts=parent["ts"]))
        sb.settle(2)
        assert len(sb.slack.calls("conversations.replies")) == 1
        [reply] = sb.messages()
        assert reply["thread_ts"] == parent["ts"] and "rate-limit-exceeded" in reply["text"]


def test_snippet_over_the_socket_is_read(kb: KnowledgeBase, tmp_path: Path):
    with socket_bot(kb, tmp_path) as sb:
        snippet = sb.slack.add_file("err.json", KEY_ERROR.encode(), filetype="json", mimetype="application/json")
        binary = sb.slack.add_file("core.bin", b"\x00\x01" * 64, filetype="binary", mimetype="application/octet-stream")
        sb.event(message_event("", subtype="file_share", files=[binary, snippet]))
        sb.settle(1)
        assert [c.params["file"] for c in sb.slack.calls("file_download")] == [snippet["id"]]
        [reply] = sb.messages()
        assert "api-key-invalid" in reply["text"]


def test_thumbs_down_form_over_the_socket_is_stored_redacted(kb: KnowledgeBase, tmp_path: Path):
    with socket_bot(kb, tmp_path) as sb:
        sb.event(message_event(KEY_ERROR))
        sb.settle(1)
        [posted] = sb.slack.calls("chat.postMessage")
        message = {**posted.response["message"], "blocks": posted.params["blocks"]}
        sb.interact(block_actions(message, feedback_action(message, "down"), response_url=sb.slack.response_url()))
        assert sb.slack.wait_for(lambda: sb.slack.calls("views.open"))
        sb.settle(2)
        [opened] = sb.slack.calls("views.open")
        view = opened.response["view"]
        refused = sb.interact(view_submission(view, {}))
        assert refused == {"response_action": "errors", "errors": {"reason": "Pick a reason."}}
        values = {
            "reason": {"reason": {"type": "radio_buttons", "selected_option": {"value": "out_of_date"}}},
            "note": {"note": {"type": "plain_text_input", "value": f"key {LEAKED_KEY} in my note"}},
        }
        assert sb.interact(view_submission(view, values)) == {}
        sb.settle(4)
        [(reason, actual, note)] = state_rows(
            sb.state_path, "SELECT reason, actual_entry_id, note FROM feedback_reasons"
        )
        assert (reason, actual) == ("out_of_date", None)
        assert LEAKED_KEY not in note and "[REDACTED google-api-key]" in note


def test_escalation_over_the_socket_pages_once_for_two_clicks(kb: KnowledgeBase, tmp_path: Path):
    with socket_bot(kb, tmp_path) as sb:
        event = message_event(f"<@{BOT_USER_ID}> the export job is slow again", type="app_mention")
        sb.event(event)
        sb.settle(1)
        [posted] = sb.slack.calls("chat.postMessage")
        message = {**posted.response["message"], "blocks": posted.params["blocks"]}
        button = next(
            e
            for b in message["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == "escalate"
        )
        for user in ("U0000ONE", "U0000TWO"):
            sb.interact(block_actions(message, button, response_url=sb.slack.response_url(), user=user))
        sb.settle(3)
        pages = [m for m in sb.messages() if f"<!subteam^{ONCALL}>" in m["text"]]
        assert len(pages) == 1 and pages[0]["thread_ts"] == event["ts"]
