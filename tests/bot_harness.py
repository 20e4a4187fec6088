"""The running bot for end-to-end tests: the real bolt App behind waitress on 127.0.0.1, the Slack
stand-in as its Web API, and helpers to send correctly signed Slack requests."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.app import GeminiBot, build_app
from bot.serve import HttpServer, make_wsgi
from bot.state import StateBase, StateDB
from kb.settings import load_bot_settings
from kb.store import KnowledgeBase
from tests.gemini_stub import stub_key
from tests.slack_stub import Reply, SlackStub, as_json, event_callback, post, signed_headers

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-1111-2222-stubtokenvalue"
KEY_ERROR = (
    "Traceback (most recent call last):\n"
    '  File "app.py", line 9, in <module>\n'
    "google.genai.errors.ClientError: 400 INVALID_ARGUMENT. "
    "{'error': {'code': 400, 'message': 'API key not valid. Please pass a valid API key.', "
    "'status': 'INVALID_ARGUMENT', 'details': [{'@type': 'type.googleapis.com/google.rpc.ErrorInfo', "
    "'reason': 'API_KEY_INVALID', 'domain': 'googleapis.com'}]}}"
)
RATE_ERROR = (
    "google.genai.errors.ClientError: 429 RESOURCE_EXHAUSTED. {'error': {'code': 429, 'message': "
    "'You exceeded your current quota, please check your plan and billing details.', 'status': 'RESOURCE_EXHAUSTED', "
    "'details': [{'@type': 'type.googleapis.com/google.rpc.QuotaFailure', 'violations': [{'quotaMetric': "
    "'generativelanguage.googleapis.com/generate_content_free_tier_requests', "
    "'quotaId': 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier'}]}]}}"
)
LEAKED_KEY = "AIzaSyD3mo-Leak3dKey_0123456789abcdefgh"  # shaped like a real key; never valid


@dataclass
class Running:
    bot: GeminiBot
    server: HttpServer
    slack: SlackStub
    state: StateBase
    state_path: Path

    @property
    def events_url(self) -> str:
        return f"{self.server.url}/slack/events"

    def send(self, body: str, content_type: str, *, secret: str = SECRET, timestamp: int | None = None, **headers: str):
        all_headers = signed_headers(secret, body, content_type=content_type, timestamp=timestamp)
        all_headers.update(headers)
        return post(self.events_url, body, all_headers)

    def event(self, event: dict, *, event_id: str | None = None, **headers: str) -> tuple[Reply, dict]:
        envelope = event_callback(event, event_id=event_id)
        reply = self.send(*as_json(envelope), **headers)
        assert reply.status == 200, reply
        return reply, envelope

    def settle(self, runs: int) -> None:
        """Wait until the listeners have finished `runs` times (bounded)."""
        assert self.bot.wait_for_events(runs, timeout=10), f"only {self.bot.events_done} listener runs finished"

    def messages(self) -> list[dict]:
        return [c.params for c in self.slack.calls("chat.postMessage")]


@contextmanager
def running_bot(
    kb: KnowledgeBase, slack: SlackStub, state_path: Path, *, state: StateBase | None = None, **overrides: object
) -> Iterator[Running]:
    """A bot serving HTTP on 127.0.0.1 (any free port) until the block ends; `overrides` go to BotSettings.

    `state` is a store the caller owns (another back end, or one shared by several bots); by default the
    bot gets a SQLite file at `state_path`."""
    owned = state is None
    state = state or StateDB(state_path)
    options: dict[str, object] = dict(
        bot_token=TOKEN,
        signing_secret=SECRET,
        api_url=slack.api_url,
        check_timeout=1.0,
        checks_per_minute=3,
        team_key=stub_key("valid"),
    )
    options.update(overrides)
    settings = dataclasses.replace(load_bot_settings(dict(os.environ)), **options)  # as at start-up
    bot = build_app(settings, kb, state)
    server = HttpServer(make_wsgi(bot), host="127.0.0.1", port=0, threads=4).start()
    try:
        yield Running(bot, server, slack, state, state_path)
    finally:
        server.stop()
        bot.close()
        if owned:
            state.close()


def state_rows(path: Path, sql: str) -> list[tuple]:
    """Rows of a query on a state database file, read with a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()
