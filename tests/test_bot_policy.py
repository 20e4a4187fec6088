"""When the bot speaks: event classification, the channel policy, the rate limit, command parsing."""

from __future__ import annotations

import pytest

from bot.chat_command import parse_command
from bot.policy import RateLimiter, delivery_key, error_shapes, looks_like_error, message_key
from bot.slack_events import Trigger, classify, should_answer
from kb.matcher import match
from kb.settings import ChannelMode

BOT = "UBOT0001"
ERROR = (
    "google.genai.errors.ClientError: 400 INVALID_ARGUMENT. {'error': {'code': 400, 'message': "
    "'API key not valid. Please pass a valid API key.', 'status': 'INVALID_ARGUMENT'}}"
)


def _event(text: str = ERROR, **extra: object) -> dict:
    return {
        "type": "message",
        "user": "U1",
        "text": text,
        "ts": "1.000001",
        "channel": "C1",
        "channel_type": "channel",
    } | extra


def _classify(event: dict, event_type: str = "message"):
    return classify(event, event_type=event_type, event_id="Ev1", bot_user_id=BOT, bot_id="BBOT")


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({"bot_id": "B2"}, "from a bot"),
        ({"subtype": "bot_message", "user": None}, "from a bot"),
        ({"user": BOT}, "from this bot"),
        ({"subtype": "message_changed"}, "subtype message_changed"),
        ({"subtype": "message_deleted"}, "subtype message_deleted"),
        ({"subtype": "channel_join"}, "subtype channel_join"),
        ({"hidden": True}, "hidden"),
    ],
)
def test_bots_edits_deletes_and_joins_are_ignored(extra: dict, why: str):
    incoming, reason = _classify(_event(**extra))
    assert incoming is None and reason == why


def test_a_channel_message_mentioning_the_bot_yields_to_app_mention():
    text = f"<@{BOT}> {ERROR}"
    assert _classify(_event(text))[0] is None
    incoming, _ = _classify(_event(text, type="app_mention"), "app_mention")
    assert incoming.trigger is Trigger.MENTION and BOT not in incoming.text and incoming.reply_thread == "1.000001"


def test_dms_answer_inline_and_threads_stay_threads():
    dm, _ = _classify(_event(channel="D1", channel_type="im"))
    assert dm.trigger is Trigger.DM and dm.reply_thread is None
    threaded, _ = _classify(_event(thread_ts="0.5"))
    assert threaded.reply_thread == "0.5"
    shared, _ = _classify(_event(subtype="file_share"))
    assert shared is not None


def test_delivery_keys_name_the_event_and_the_message():
    incoming, _ = _classify(_event())
    assert delivery_key(incoming.event_id) == "event:Ev1"
    assert message_key(incoming.channel, incoming.ts) == "answer:C1:1.000001"
    assert message_key(incoming.channel, incoming.ts, "warn") == "warn:C1:1.000001"


def test_channel_policy_modes(kb):
    incoming, _ = _classify(_event())
    result = match(ERROR, kb)
    assert result.confident
    assert should_answer(incoming, result, mode=ChannelMode.ERRORS)
    assert should_answer(incoming, result, mode=ChannelMode.CONFIDENT)
    assert not should_answer(incoming, result, mode=ChannelMode.MENTIONS)
    # Confident, but talk about an error rather than an error report: only the "confident" mode answers.
    # (A bare reason code in chat is no longer enough for a confident match; a quoted message is.)
    talk, _ = _classify(
        _event("TIL gemini calls a leaked key out: Your API key was reported as leaked. Please use another API key.")
    )
    talk_result = match(talk.text, kb)
    assert talk_result.confident and not looks_like_error(talk.text, talk_result.signals)
    assert not should_answer(talk, talk_result, mode=ChannelMode.ERRORS)
    assert should_answer(talk, talk_result, mode=ChannelMode.CONFIDENT)
    unsure = match("hello there", kb)
    mention, _ = _classify(_event("hello there", type="app_mention"), "app_mention")
    assert should_answer(mention, unsure, mode=ChannelMode.MENTIONS)


def test_error_shapes_are_named():
    assert error_shapes("Traceback (most recent call last):\n  File x") == ["traceback"]
    assert "json_error" in error_shapes('{"error": {"code": 400}}')
    assert error_shapes("lunch at noon?") == []


def test_rate_limiter_is_a_sliding_window_per_user():
    now = [0.0]
    limiter = RateLimiter(2, 60.0, clock=lambda: now[0])
    assert limiter.allow("a")[0] and limiter.allow("a")[0]
    allowed, wait = limiter.allow("a")
    assert not allowed and wait == pytest.approx(60.0)
    assert limiter.allow("b")[0]
    now[0] = 61.0
    assert limiter.allow("a")[0]


@pytest.mark.parametrize(
    ("text", "action", "kinds"),
    [
        ("", "checks", ("key", "endpoint")),
        ("help", "help", ()),
        ("key", "checks", ("key",)),
        ("endpoint https://example.test", "checks", ("endpoint",)),
        ("model gemini-2.5-flash", "checks", ("model",)),
        ("model", "usage", ()),
        ("list", "list", ()),
        ("429 RESOURCE_EXHAUSTED", "lookup", ()),
        ("share", "checks", ("key", "endpoint")),
    ],
)
def test_parse_command(text: str, action: str, kinds: tuple):
    cmd = parse_command(text)
    assert (cmd.action, cmd.kinds) == (action, kinds)


def test_a_typed_key_is_kept_out_of_the_repr():
    key = "AIzaSyD3mo-Leak3dKey_0123456789abcdefgh"
    for text in (f"key {key}", key, f"key {key} share"):
        cmd = parse_command(text)
        assert cmd.kinds == ("key",) and cmd.key == key and key not in repr(cmd)
    assert parse_command(f"key {key} share").share
    lookup = parse_command("API key not valid share")
    assert lookup.action == "lookup" and lookup.share and lookup.text == "API key not valid"
