"""The app manifest is a valid Slack manifest and asks for exactly what the code uses: every Web API method the
bot calls has its scope, every listener the app registers is subscribed or declared, and nothing more."""

from __future__ import annotations

import ast
from pathlib import Path

import jsonschema
import pytest
import yaml
from slack_sdk import WebClient

from bot.app import GeminiBot, web_client
from bot.state import StateDB
from kb.settings import BotSettings
from kb.store import KnowledgeBase
from tests.bot_harness import TOKEN
from tests.manifest_schema import MANIFEST_SCHEMA
from tests.slack_stub import SlackStub

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "bot" / "manifest.yaml"

# The bot-token scopes each Web API method needs (Slack's method reference). conversations.replies needs the
# history scope of the conversation's type; the bot reads threads in all four kinds it is in.
METHOD_SCOPES: dict[str, set[str]] = {
    "auth.test": set(),
    "chat.postMessage": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.update": {"chat:write"},
    "views.open": set(),
    "views.publish": set(),
    "conversations.replies": {"channels:history", "groups:history", "im:history", "mpim:history"},
    # bot.durable: looks for a reply that may already have been posted (inline answers in DMs)
    "conversations.history": {"channels:history", "groups:history", "im:history", "mpim:history"},
    "apps.connections.open": set(),  # bot.socket_mode, with the app-level token (connections:write), not a bot scope
    "files.info": {"files:read"},
    "usergroups.users.list": {"usergroups:read"},  # GEMINI_KB_MAINTAINERS naming a user group
}
# Events API subscriptions, the scope each needs, and the bolt listener that receives it.
EVENT_SCOPES = {
    "app_mention": "app_mentions:read",
    "app_home_opened": None,
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
    "message.mpim": "mpim:history",
    "reaction_added": "reactions:read",
}


def _manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


class _Recorder:
    """Stands where the bolt App is while GeminiBot registers its listeners, and writes down what it asked for."""

    def __init__(self) -> None:
        self.seen: dict[str, list[str]] = {}

    def __getattr__(self, kind: str):
        def register(name=None, *args, **kwargs):
            self.seen.setdefault(kind, []).append(name if isinstance(name, str) else repr(name))
            return lambda fn: fn

        return register


@pytest.fixture
def registered(kb: KnowledgeBase, slack: SlackStub, tmp_path: Path) -> dict[str, list[str]]:
    state = StateDB(tmp_path / "state.sqlite")
    settings = BotSettings(bot_token=TOKEN, api_url=slack.api_url)  # bolt checks the token with auth.test
    bot = GeminiBot(kb=kb, state=state, settings=settings, client=web_client(settings))
    try:
        recorder = _Recorder()
        bot.app = recorder  # type: ignore[assignment]
        bot._register()
        return recorder.seen
    finally:
        bot.close()
        state.close()


def _web_api_methods() -> set[str]:
    """Slack Web API methods the bot's code calls (`client.chat_postMessage(...)` -> chat.postMessage)."""
    api = {name for name in vars(WebClient) if not name.startswith("_") and callable(getattr(WebClient, name))}
    found = set()
    for path in (ROOT / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in api:
                found.add(node.func.attr.replace("_", "."))
    return found


def test_manifest_is_valid_against_the_manifest_schema():
    jsonschema.validate(_manifest(), MANIFEST_SCHEMA)


@pytest.mark.parametrize(
    "broken",
    [
        {"features": {"shortcuts": [{"name": "x", "type": "message", "callback_id": "x"}]}},  # no description
        {"features": {"shortcuts": [{"name": "x", "type": "reaction", "callback_id": "x", "description": "d"}]}},
        {"oauth_config": {"scopes": {"bot": ["chat:write", "chat:write"]}}},
        {"display_information": {"name": "gemini-kb", "long_description": "too short"}},
        {"settings": {"interactivity": {"request_url": "https://x.example/slack/events"}}},  # no is_enabled
        {"settings": {"event_subscription": {"bot_events": ["app_mention"]}}},  # a typo of a key
    ],
)
def test_the_schema_rejects_what_slack_rejects(broken: dict):
    manifest = _manifest()
    for key, value in broken.items():
        manifest[key] = {**manifest.get(key, {}), **value}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(manifest, MANIFEST_SCHEMA)


def test_every_web_api_method_the_code_calls_has_its_scope():
    methods = _web_api_methods()
    assert {"chat.postMessage", "conversations.replies", "files.info", "views.open", "usergroups.users.list"} <= methods
    unknown = methods - set(METHOD_SCOPES)
    assert not unknown, f"add the scopes of {sorted(unknown)} to METHOD_SCOPES (and the manifest)"
    scopes = set(_manifest()["oauth_config"]["scopes"]["bot"])
    for method in sorted(methods):
        assert METHOD_SCOPES[method] <= scopes, f"{method} needs {sorted(METHOD_SCOPES[method] - scopes)}"


def test_every_listener_is_subscribed_and_every_subscription_has_a_listener(registered: dict[str, list[str]]):
    manifest = _manifest()
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    wanted = set()
    for name in registered.get("event", []):
        wanted |= {e for e in EVENT_SCOPES if e.split(".")[0] == name}
    assert wanted == events
    shortcuts = {(s["callback_id"], s["type"]) for s in manifest["features"].get("shortcuts", [])}
    assert {(c, "message") for c in registered.get("shortcut", [])} == shortcuts
    assert set(registered.get("command", [])) == {c["command"] for c in manifest["features"]["slash_commands"]}
    if registered.get("action") or registered.get("view") or registered.get("shortcut"):
        assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is ("app_home_opened" in events)


def test_the_manifest_asks_for_no_scope_the_code_does_not_use(registered: dict[str, list[str]]):
    manifest = _manifest()
    needed = set().union(*(METHOD_SCOPES[m] for m in _web_api_methods()))
    needed |= {EVENT_SCOPES[e] for e in manifest["settings"]["event_subscriptions"]["bot_events"] if EVENT_SCOPES[e]}
    if registered.get("command") or registered.get("shortcut"):
        needed.add("commands")
    if any("url_private" in p.read_text() for p in (ROOT / "bot").rglob("*.py")):
        needed.add("files:read")  # downloading a file Slack hosts
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed
    assert manifest["settings"]["socket_mode_enabled"] is True
