"""The bot end to end on loopback: the real bolt App behind waitress, signed Slack-shaped requests,
the Slack stand-in as the Web API and the Gemini stand-in behind /gemini-check."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from tests.bot_harness import KEY_ERROR, LEAKED_KEY, RATE_ERROR, SECRET, Running, state_rows
from tests.gemini_stub import GeminiStub, stub_key
from tests.slack_stub import (
    BOT_ID,
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
    signed_headers,
    slash_command,
)


def _state_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


# -- channel messages ------------------------------------------------------------------------


def test_error_in_channel_gets_one_threaded_reply_naming_the_entry(running: Running):
    event = message_event(KEY_ERROR)
    running.event(event)
    assert running.slack.wait_for(lambda: running.messages())
    running.settle(1)
    [reply] = running.messages()
    assert reply["channel"] == event["channel"]
    assert reply["thread_ts"] == event["ts"]
    assert "api-key-invalid" in reply["text"]
    header = reply["blocks"][0]
    assert header["type"] == "header" and header["text"]["text"] == "API key rejected as not valid"
    buttons = [e["action_id"] for b in reply["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons[:2] == ["feedback_fixed", "run_check"]
    [feedback] = [b for b in reply["blocks"] if b["type"] == "context_actions"]
    assert feedback["elements"][0]["type"] == "feedback_buttons" and reply["blocks"][-1] is feedback
    assert state_rows(running.state_path, "SELECT entry_id, confident, text FROM pastes") == [
        ("api-key-invalid", 1, None)
    ]


def test_chatter_in_channel_gets_nothing(running: Running):
    for text in ("anyone up for lunch?", "has anyone tried gemini 2.5 flash for summaries? it's pretty good"):
        running.event(message_event(text))
    running.settle(2)
    assert running.slack.posts() == []


def test_messages_from_bots_edits_and_joins_get_nothing(running: Running):
    running.event(message_event(KEY_ERROR, user=BOT_USER_ID, bot_id=BOT_ID))  # our own: bolt drops it
    running.event(message_event(KEY_ERROR, subtype="bot_message", bot_id="B0OTHER01", user=None))
    running.event(message_event(KEY_ERROR, bot_id="B0OTHER02", app_id="A0OTHER"))
    edited = message_event("", subtype="message_changed", message={"text": KEY_ERROR, "user": "U0000USER"})
    running.event(edited)
    running.event(message_event("", subtype="message_deleted", previous_message={"text": KEY_ERROR}))
    running.event(message_event("<@U0000USER> has joined the channel", subtype="channel_join"))
    running.settle(5)  # the bot's own message never reaches a listener
    assert running.slack.posts() == []


def test_retried_event_posts_once(running: Running):
    event = message_event(RATE_ERROR)
    _, envelope = running.event(event)
    for attempt in (1, 2):
        running.event(
            event,
            event_id=envelope["event_id"],
            **{"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_timeout"},
        )
    running.settle(3)
    [reply] = running.messages()
    assert "rate-limit-exceeded" in reply["text"]


def test_mention_fired_as_app_mention_and_message_posts_once(running: Running):
    ts = new_ts()
    text = f"<@{BOT_USER_ID}> what is this?\n{RATE_ERROR}"
    running.event(message_event(text, type="app_mention", ts=ts))
    running.event(message_event(text, ts=ts))
    # Two event ids for one DM message (both paths would answer): the (channel, ts) key holds.
    dm_ts = new_ts()
    running.event(message_event(KEY_ERROR, channel="D0000DM01", channel_type="im", ts=dm_ts))
    running.event(message_event(KEY_ERROR, channel="D0000DM01", type="app_mention", ts=dm_ts))
    running.settle(4)
    replies = running.messages()
    assert sorted((r["channel"], r.get("thread_ts")) for r in replies) == [("C0000CHAN", ts), ("D0000DM01", None)]


def test_mention_without_a_match_gets_an_honest_answer(running: Running):
    event = message_event(f"<@{BOT_USER_ID}> why is our nightly pipeline so slow?", type="app_mention")
    running.event(event)
    running.settle(1)
    [reply] = running.messages()
    assert reply["thread_ts"] == event["ts"]
    assert "couldn't match" in reply["blocks"][0]["text"]["text"]
    assert "/gemini-check" in json.dumps(reply["blocks"])
    assert state_rows(running.state_path, "SELECT source, confident, text FROM pastes") == [
        ("mention", 0, "why is our nightly pipeline so slow?")
    ]


def test_dm_without_a_match_gets_an_honest_answer_with_candidates(running: Running):
    event = message_event("429 from the API again", channel="D0000DM01", channel_type="im")
    running.event(event)
    running.settle(1)
    [reply] = running.messages()
    assert reply["channel"] == "D0000DM01" and "thread_ts" not in reply
    assert "couldn't match" in reply["text"] or "No confident match" in reply["text"]
    assert "couldn't match" in reply["blocks"][0]["text"]["text"]


def test_empty_mention_gets_the_help(running: Running):
    running.event(message_event(f"<@{BOT_USER_ID}>", type="app_mention"))
    running.settle(1)
    [reply] = running.messages()
    assert "/gemini-check key" in reply["text"]


def test_paste_with_a_key_warns_ephemerally_and_the_key_goes_nowhere(running: Running, caplog):
    caplog.set_level(logging.DEBUG)
    channel_paste = KEY_ERROR + f"\ncurl 'https://generativelanguage.googleapis.com/v1beta/models?key={LEAKED_KEY}'"
    event = message_event(channel_paste)
    running.event(event)
    dm = message_event(f"my key {LEAKED_KEY} stopped working", channel="D0000DM01", channel_type="im")
    running.event(dm)
    running.settle(2)
    [warning_channel, warning_dm] = sorted(
        (c.params for c in running.slack.calls("chat.postEphemeral")), key=lambda p: p["channel"]
    )
    assert warning_channel["user"] == event["user"] and "rotate" in warning_channel["text"]
    assert warning_dm["channel"] == "D0000DM01"
    assert len(running.messages()) == 2  # the answers themselves
    assert LEAKED_KEY not in running.slack.everything_received()
    running.state.close()
    stored = _state_bytes(running.state_path)
    assert LEAKED_KEY.encode() not in stored and LEAKED_KEY[4:20].encode() not in stored
    assert b"[REDACTED google-api-key]" in stored
    assert LEAKED_KEY not in caplog.text


# -- requests that must be refused ------------------------------------------------------------


def test_bad_or_stale_signature_is_rejected_and_nothing_is_posted(running: Running):
    body, ctype = as_json(event_callback(message_event(KEY_ERROR)))
    assert running.send(body, ctype, secret="not-the-secret").status == 401
    assert running.send(body, ctype, timestamp=int(time.time()) - 600).status == 401
    unsigned = post(running.events_url, body, {"Content-Type": ctype})
    assert unsigned.status == 401
    tampered = signed_headers(SECRET, body, content_type=ctype)
    assert post(running.events_url, body.replace("API key", "API kay"), tampered).status == 401
    form, form_type = as_form(slash_command("key", response_url=running.slack.response_url()))
    assert running.send(form, form_type, secret="nope").status == 401
    assert running.bot.events_done == 0
    assert running.slack.posts() == []


def test_url_verification_answers_the_challenge(running: Running):
    body, ctype = as_json(
        {"token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}
    )
    reply = running.send(body, ctype)
    assert reply.status == 200 and "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in reply.body


def test_healthz_reports_the_knowledge_base(running: Running):
    import urllib.request

    with urllib.request.urlopen(f"{running.server.url}/healthz", timeout=5) as response:
        data = json.loads(response.read())
    assert response.status == 200 and data["kb_loaded"] is True and data["entries"] == len(running.bot.kb.entries)


# -- /gemini-check ----------------------------------------------------------------------------


def _slash(running: Running, text: str, name: str = "r1", **fields: str) -> Reply:
    form = slash_command(text, response_url=running.slack.response_url(name), **fields)
    return running.send(*as_form(form))


def _responses(running: Running, name: str) -> list[dict]:
    return [c.params for c in running.slack.calls("response_url") if c.path.endswith("/" + name)]


def test_slash_check_acks_at_once_and_posts_results_to_the_response_url(running: Running, gemini: GeminiStub, caplog):
    caplog.set_level(logging.DEBUG)
    typed = stub_key("invalid")
    ack = _slash(running, f"key {typed}", "bad")
    assert ack.status == 200 and ack.seconds < 1.0
    assert "Running the api key check" in ack.json()["text"] and typed not in ack.body
    assert running.slack.wait_for(lambda: _responses(running, "bad"), timeout=10)
    [result] = _responses(running, "bad")
    assert result["response_type"] == "ephemeral"
    text = json.dumps(result, ensure_ascii=False)
    assert "api-key-invalid" in text and "failed" in result["text"]
    assert typed not in text and "AIza…k3Q" in text

    ack = _slash(running, "key share", "good")  # the team key
    assert running.slack.wait_for(lambda: _responses(running, "good"), timeout=10)
    [result] = _responses(running, "good")
    assert result["response_type"] == "in_channel" and "all passed" in result["text"]
    assert running.slack.calls("chat.postMessage") == []
    assert typed.encode() not in _state_bytes(running.state_path)
    assert typed not in caplog.text and typed not in running.slack.everything_received()
    assert state_rows(running.state_path, "SELECT kinds, ok, entry_ids FROM checks ORDER BY id") == [
        ("key", 0, "api-key-invalid"),
        ("key", 1, ""),
    ]


def test_slash_check_is_bounded_in_time(running: Running, gemini: GeminiStub):
    ack = _slash(running, f"key {stub_key('slow')}", "slow")
    assert ack.seconds < 1.0
    assert running.slack.wait_for(lambda: _responses(running, "slow"), timeout=running.bot.checker.budget + 2)
    [result] = _responses(running, "slow")
    assert "failed" in result["text"] or "did not finish" in result["text"]


def test_slash_checks_are_rate_limited_per_user(running: Running, gemini: GeminiStub):
    for i in range(3):
        assert "Running" in _slash(running, "key", f"ok{i}").json()["text"]
    refused = _slash(running, "key", "refused")
    assert "try again in" in refused.json()["text"]
    other_user = _slash(running, "key", "other", user="U0000OTHER")
    assert "Running" in other_user.json()["text"]
    assert running.slack.wait_for(lambda: len(running.slack.calls("response_url")) == 4, timeout=10)
    assert _responses(running, "refused") == []


def test_slash_help_lookup_and_list_answer_in_the_ack(running: Running):
    assert "/gemini-check key" in _slash(running, "help").json()["text"]
    by_id = _slash(running, "rate-limit-exceeded").json()
    assert by_id["blocks"][0]["text"]["text"].startswith("429 RESOURCE_EXHAUSTED")
    pasted = _slash(running, KEY_ERROR + " share").json()
    assert pasted["response_type"] == "in_channel" and "api-key-invalid" in pasted["text"]
    listing = _slash(running, "list").json()
    assert "rate-limit-exceeded" in json.dumps(listing["blocks"]) and len(listing["blocks"]) <= 50
    assert running.slack.posts() == []


# -- buttons and App Home ---------------------------------------------------------------------


def _answer_then_click(running: Running, action_id: str) -> tuple[dict, dict]:
    event = message_event(KEY_ERROR)
    running.event(event)
    running.settle(1)
    [posted] = running.slack.calls("chat.postMessage")
    message = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "text": posted.params["text"],
        "blocks": posted.params["blocks"],
        "ts": posted.response["ts"],
        "thread_ts": event["ts"],
    }
    button = next(
        e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action_id
    )
    payload = block_actions(message, button, response_url=running.slack.response_url("click"))
    reply = running.send(*as_payload_form(payload))
    assert reply.status == 200 and reply.seconds < 1.0
    return message, payload


def test_fixed_it_click_stores_feedback_and_updates_the_message(running: Running):
    message, _ = _answer_then_click(running, "feedback_fixed")
    assert running.slack.wait_for(lambda: running.slack.calls("chat.update"))
    [update] = running.slack.calls("chat.update")
    assert update.params["channel"] == "C0000CHAN" and update.params["ts"] == message["ts"]
    text = json.dumps(update.params["blocks"])
    assert "fixed it" in text and "feedback_fixed" not in text and "run_check" in text
    running.settle(2)
    assert state_rows(running.state_path, "SELECT user, entry_id, verdict FROM feedback") == [
        ("U0000USER", "api-key-invalid", "fixed")
    ]


def test_run_key_check_button_answers_the_clicker_ephemerally(running: Running, gemini: GeminiStub):
    message, _ = _answer_then_click(running, "run_check")
    assert running.slack.wait_for(lambda: running.slack.calls("chat.postEphemeral"), timeout=10)
    [answer] = running.slack.calls("chat.postEphemeral")
    assert answer.params["user"] == "U0000USER" and answer.params["thread_ts"] == message["thread_ts"]
    assert "all passed" in answer.params["text"]


def test_app_home_shows_the_quick_reference_and_recent_errors(running: Running):
    running.event(message_event(RATE_ERROR))
    running.settle(1)
    running.event(message_event("", type="app_home_opened", user="U0000USER", tab="home", channel="D0000DM01"))
    assert running.slack.wait_for(lambda: running.slack.calls("views.publish"))
    [publish] = running.slack.calls("views.publish")
    view = publish.params["view"]
    assert publish.params["user_id"] == "U0000USER" and view["type"] == "home"
    text = json.dumps(view)
    assert "429 RESOURCE_EXHAUSTED" in text and "Most frequent" in text and "rate-limit-exceeded" in text
    assert "Knowledge base" in text and len(view["blocks"]) <= 100
