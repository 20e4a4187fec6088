"""Acting where people paste, end to end over HTTP on loopback: the "Diagnose this error" message shortcut,
a mention inside someone's thread (the thread's first message is read), long pastes kept as text snippets,
the 👎 form (stored redacted) and the Escalate button (one page per answer, even across two replicas)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.slack_context import MAX_FILE_BYTES, SlackFetcher
from bot.state import StateDB
from kb.store import KnowledgeBase
from tests.bot_harness import KEY_ERROR, LEAKED_KEY, RATE_ERROR, Running, running_bot, state_rows
from tests.slack_stub import (
    BOT_USER_ID,
    SlackStub,
    as_form,
    as_payload_form,
    block_actions,
    feedback_action,
    message_action,
    message_event,
    new_ts,
    slash_command,
    view_submission,
)

ONCALL = "S0123ABC"
UNMATCHED = "our nightly pipeline keeps stalling and nobody knows why"


@pytest.fixture
def oncall(kb: KnowledgeBase, slack: SlackStub, tmp_path: Path) -> Iterator[Running]:
    """The bot with an on-call group configured (GEMINI_KB_ONCALL_GROUP)."""
    with running_bot(kb, slack, tmp_path / "state.sqlite", oncall_group=ONCALL) as bot:
        yield bot


def _user_message(slack: SlackStub, text: str, *, channel: str = "C0000CHAN", **extra: object) -> dict:
    message = {"type": "message", "user": "U0000POSTER", "text": text, "ts": new_ts(), **extra}
    return slack.add_message(channel, message)


def _shortcut(running: Running, message: dict, name: str = "sc", **fields: str):
    payload = message_action(message, response_url=running.slack.response_url(name), **fields)
    reply = running.send(*as_payload_form(payload))
    assert reply.status == 200 and reply.body == ""  # an empty 200 is the ack
    return payload


def _answer_blocks(params: dict) -> list[dict]:
    blocks = params["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else blocks


# -- "Diagnose this error" -----------------------------------------------------------------------


def test_shortcut_answers_the_message_in_its_thread(running: Running):
    message = _user_message(running.slack, KEY_ERROR)
    _shortcut(running, message)
    running.settle(1)
    [reply] = running.messages()
    assert reply["channel"] == "C0000CHAN" and reply["thread_ts"] == message["ts"]
    assert "api-key-invalid" in reply["text"]
    # Inside a thread (where a slash command cannot be used) the answer stays in that thread.
    parent = _user_message(running.slack, "deploy went out at 10:00")
    threaded = _user_message(running.slack, RATE_ERROR, thread_ts=parent["ts"])
    _shortcut(running, threaded, "sc2")
    running.settle(2)
    second = running.messages()[1]
    assert second["thread_ts"] == parent["ts"] and "rate-limit-exceeded" in second["text"]
    assert running.slack.calls("conversations.replies") == []  # the message itself was the paste
    assert state_rows(running.state_path, "SELECT source, entry_id FROM pastes ORDER BY id") == [
        ("shortcut", "api-key-invalid"),
        ("shortcut", "rate-limit-exceeded"),
    ]


def test_shortcut_after_the_bot_answered_says_so_instead_of_repeating(running: Running):
    event = message_event(KEY_ERROR)
    running.event(event)
    running.settle(1)
    message = {"type": "message", "user": event["user"], "text": event["text"], "ts": event["ts"]}
    _shortcut(running, message)
    running.settle(2)
    assert len(running.messages()) == 1
    [note] = [c.params for c in running.slack.calls("response_url")]
    assert note["response_type"] == "ephemeral" and "already answered" in note["text"]


def test_shortcut_answers_privately_for_who_asked_for_it(running: Running):
    form = slash_command("diagnose private", response_url=running.slack.response_url("set"))
    ack = running.send(*as_form(form)).json()
    assert "privately" in ack["text"]
    message = _user_message(running.slack, f"{KEY_ERROR}\nkey={LEAKED_KEY}")
    _shortcut(running, message)
    running.settle(1)
    assert running.messages() == []
    answers = [c.params for c in running.slack.calls("chat.postEphemeral")]
    [answer] = [a for a in answers if "api-key-invalid" in a["text"]]
    assert answer["user"] == "U0000USER" and answer["thread_ts"] == message["ts"]
    [warning] = [a for a in answers if "rotate" in a["text"]]
    assert warning["user"] == "U0000POSTER"  # the secret's owner is told, not the person who asked
    assert LEAKED_KEY not in running.slack.everything_received()
    # Another person still gets the answer in the thread (the setting is per person).
    _shortcut(running, message, "sc2", user="U0000OTHER")
    running.settle(2)
    [public] = running.messages()
    assert public["thread_ts"] == message["ts"]


def test_shortcut_on_a_message_with_nothing_to_read_tells_only_the_asker(running: Running):
    image = running.slack.add_file("shot.png", b"\x89PNG\r\n", filetype="png", mimetype="image/png", mode="hosted")
    message = _user_message(running.slack, "", files=[image])
    _shortcut(running, message)
    running.settle(1)
    assert running.messages() == [] and running.slack.calls("file_download") == []
    [note] = [c.params for c in running.slack.calls("response_url")]
    assert note["response_type"] == "ephemeral" and "Nothing to diagnose" in note["text"]


def test_shortcut_in_a_channel_the_bot_is_not_in_answers_privately(running: Running):
    message = _user_message(running.slack, RATE_ERROR, channel="C0000ELSE")
    running.slack.script("chat.postMessage", _not_in_channel())
    _shortcut(running, message, "else", channel="C0000ELSE")
    running.settle(1)
    [answer] = [c.params for c in running.slack.calls("response_url")]
    assert answer["response_type"] == "ephemeral" and "rate-limit-exceeded" in answer["text"]


def _not_in_channel():
    from tests.slack_stub import Scripted

    return Scripted(status=200, body={"ok": False, "error": "not_in_channel"})


# -- thread context and snippets ------------------------------------------------------------------


def test_mention_in_someone_elses_thread_reads_the_parent_once(running: Running):
    parent = _user_message(running.slack, KEY_ERROR)
    _user_message(running.slack, "same here since this morning", thread_ts=parent["ts"])
    ts = new_ts()
    text = f"<@{BOT_USER_ID}> any idea what this is?"
    running.event(message_event(text, type="app_mention", ts=ts, thread_ts=parent["ts"]))
    running.event(message_event(text, ts=ts, thread_ts=parent["ts"]))  # the same message as message.channels
    running.settle(2)
    [read] = running.slack.calls("conversations.replies")
    assert read.params["ts"] == parent["ts"] and int(read.params["limit"]) <= 2
    [reply] = running.messages()
    assert reply["thread_ts"] == parent["ts"] and "api-key-invalid" in reply["text"]


def test_mention_in_a_thread_under_the_bots_own_message_ignores_that_message(running: Running):
    running.event(message_event(RATE_ERROR))
    running.settle(1)
    [answer] = running.slack.calls("chat.postMessage")
    top = answer.response["message"]  # the bot's own answer, as if it had started a thread
    running.slack.add_message("C0000CHAN", {**top, "thread_ts": None})
    running.event(message_event(f"<@{BOT_USER_ID}> {KEY_ERROR}", type="app_mention", thread_ts=top["ts"], ts=new_ts()))
    running.settle(2)
    second = running.messages()[1]
    assert "api-key-invalid" in second["text"] and "rate-limit-exceeded" not in second["text"]


def test_a_text_snippet_is_read_and_a_binary_file_is_not(running: Running):
    snippet = running.slack.add_file(
        "error.txt", RATE_ERROR.encode(), filetype="text", mimetype="text/plain", mode="snippet"
    )
    running.event(message_event("", subtype="file_share", files=[snippet]))
    image = running.slack.add_file(
        "screenshot.png", b"\x89PNG\r\n\x1a\n" + KEY_ERROR.encode(), filetype="png", mimetype="image/png", mode="hosted"
    )
    running.event(message_event("", subtype="file_share", files=[image]))
    # A file whose Slack metadata says text but whose size is past the bound is not fetched either.
    big = running.slack.add_file("big.log", b"x" * (MAX_FILE_BYTES + 1), filetype="text", mimetype="text/plain")
    running.event(message_event("", subtype="file_share", files=[big]))
    running.settle(3)
    downloads = running.slack.calls("file_download")
    assert [d.params for d in downloads] == [{"file": snippet["id"], "authorized": True}]
    [reply] = running.messages()
    assert "rate-limit-exceeded" in reply["text"]


def test_a_snippet_event_without_the_file_details_asks_files_info(running: Running):
    snippet = running.slack.add_file("trace.py", KEY_ERROR.encode(), filetype="python", mimetype="text/plain")
    stub = {"id": snippet["id"], "mode": "snippet", "file_access": "check_file_info"}
    running.event(message_event(f"<@{BOT_USER_ID}> this one", type="app_mention", files=[stub]))
    running.settle(1)
    [info] = running.slack.calls("files.info")
    assert info.params["file"] == snippet["id"]
    [reply] = running.messages()
    assert "api-key-invalid" in reply["text"]


def test_a_file_url_off_slack_never_gets_the_token(running: Running):
    with SlackStub(token=None) as elsewhere:
        forged = elsewhere.add_file("error.txt", KEY_ERROR.encode(), filetype="text", mimetype="text/plain")
        running.event(message_event(f"<@{BOT_USER_ID}> look", type="app_mention", files=[forged]))
        running.settle(1)
        assert elsewhere.calls("file_download") == []
    fetcher = SlackFetcher(token="xoxb-t", api_url=None)
    assert fetcher.allowed_url("https://files.slack.com/files-pri/T1-F1/error.txt")
    assert not fetcher.allowed_url("http://files.slack.com/files-pri/T1-F1/error.txt")
    assert not fetcher.allowed_url("https://files.slack.com.evil.example/x")


# -- 👍/👎 and the reasons form -----------------------------------------------------------------------


def _posted_message(running: Running, index: int = 0) -> dict:
    posted = running.slack.calls("chat.postMessage")[index]
    return {**posted.response["message"], "blocks": _answer_blocks(posted.params)}


def _feedback_click(running: Running, message: dict, vote: str, name: str = "fb") -> dict:
    payload = block_actions(message, feedback_action(message, vote), response_url=running.slack.response_url(name))
    assert running.send(*as_payload_form(payload)).status == 200
    return payload


def test_thumbs_down_opens_the_reasons_form_and_the_note_is_stored_redacted(running: Running):
    running.event(message_event(KEY_ERROR))
    running.settle(1)
    message = _posted_message(running)
    _feedback_click(running, message, "down")
    assert running.slack.wait_for(lambda: running.slack.calls("views.open"))
    running.settle(2)
    [opened] = running.slack.calls("views.open")
    view = opened.params["view"]
    assert opened.params["trigger_id"] and view["type"] == "modal"
    reasons = next(b for b in view["blocks"] if b.get("block_id") == "reason")["element"]["options"]
    assert [o["value"] for o in reasons] == ["wrong_family", "fix_did_not_help", "out_of_date", "other"]
    families = next(b for b in view["blocks"] if b.get("block_id") == "family")["element"]["options"]
    assert {o["value"] for o in families} <= set(running.bot.kb.entries) and len(families) >= 50

    values = {
        "reason": {"reason": {"type": "radio_buttons", "selected_option": reasons[0]}},
        "family": {"family": {"type": "static_select", "selected_option": {"value": "api-key-leaked"}}},
        "note": {"note": {"type": "plain_text_input", "value": f"it said invalid but the key {LEAKED_KEY} leaked"}},
    }
    reply = running.send(*as_payload_form(view_submission(opened.response["view"], values)))
    assert reply.status == 200 and reply.body == ""  # the modal closes
    running.settle(3)
    [row] = state_rows(
        running.state_path,
        "SELECT user, channel, message_ts, entry_id, reason, actual_entry_id, note FROM feedback_reasons",
    )
    assert row[:6] == ("U0000USER", "C0000CHAN", message["ts"], "api-key-invalid", "wrong_family", "api-key-leaked")
    assert "[REDACTED google-api-key]" in row[6] and LEAKED_KEY not in row[6]
    assert state_rows(running.state_path, "SELECT entry_id, verdict FROM feedback") == [("api-key-invalid", "not_it")]
    # The 👎 queued the answer as a miss; the form added the reason, the family named (offered first) and the note.
    [miss] = running.state.misses()
    assert (miss["kind"], miss["entry_id"], miss["user"], miss["status"]) == (
        "not_it",
        "api-key-invalid",
        "U0000USER",
        "open",
    )
    assert miss["message_ts"] == message["thread_ts"] and "API_KEY_INVALID" in miss["text"]
    assert miss["person_said"].startswith("Wrong error family; they say it is api-key-leaked: it said invalid")
    assert "[REDACTED google-api-key]" in miss["person_said"] and LEAKED_KEY not in miss["person_said"]
    assert miss["candidates"] == ["api-key-leaked", "api-key-invalid"]
    running.state.close()
    stored = b"".join(p.read_bytes() for p in running.state_path.parent.glob(running.state_path.name + "*"))
    assert LEAKED_KEY.encode() not in stored and LEAKED_KEY[4:20].encode() not in stored


def test_thumbs_up_is_recorded_and_opens_nothing(running: Running):
    running.event(message_event(KEY_ERROR))
    running.settle(1)
    _feedback_click(running, _posted_message(running), "up")
    running.settle(2)
    assert running.slack.calls("views.open") == []
    assert state_rows(running.state_path, "SELECT entry_id, verdict FROM feedback") == [("api-key-invalid", "helpful")]


def test_a_submission_without_a_reason_is_refused_in_the_form(running: Running):
    running.event(message_event(KEY_ERROR))
    running.settle(1)
    _feedback_click(running, _posted_message(running), "down")
    running.settle(2)
    [opened] = running.slack.calls("views.open")
    reply = running.send(*as_payload_form(view_submission(opened.response["view"], {})))
    assert reply.json() == {"response_action": "errors", "errors": {"reason": "Pick a reason."}}
    running.settle(3)
    assert state_rows(running.state_path, "SELECT count(*) FROM feedback_reasons") == [(0,)]


# -- escalation -----------------------------------------------------------------------------------


def _escalate(running: Running, message: dict, name: str, user: str = "U0000USER") -> None:
    button = next(
        e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "escalate"
    )
    payload = block_actions(message, button, response_url=running.slack.response_url(name), user=user)
    assert running.send(*as_payload_form(payload)).status == 200


def test_escalate_mentions_the_oncall_group_once_for_two_clicks(oncall: Running):
    event = message_event(f"<@{BOT_USER_ID}> {UNMATCHED}", type="app_mention")
    oncall.event(event)
    oncall.settle(1)
    message = _posted_message(oncall)
    _escalate(oncall, message, "e1")
    _escalate(oncall, message, "e2", user="U0000OTHER")
    oncall.settle(3)
    pages = [m for m in oncall.messages() if f"<!subteam^{ONCALL}>" in m["text"]]
    assert len(pages) == 1 and pages[0]["thread_ts"] == event["ts"]
    [again] = [c.params for c in oncall.slack.calls("chat.postEphemeral")]
    assert again["user"] == "U0000OTHER" and "already" in again["text"]


def test_confident_answers_offer_no_escalation(oncall: Running):
    oncall.event(message_event(KEY_ERROR))
    oncall.settle(1)
    ids = [e.get("action_id") for b in _posted_message(oncall)["blocks"] for e in b.get("elements", [])]
    assert "escalate" not in ids and "answer_feedback" in ids


def test_two_replicas_sharing_the_state_page_once(kb: KnowledgeBase, slack: SlackStub, tmp_path: Path):
    path = tmp_path / "shared.sqlite"
    with (
        running_bot(kb, slack, path, state=StateDB(path), oncall_group=ONCALL) as a,
        running_bot(kb, slack, path, state=StateDB(path), oncall_group=ONCALL) as b,
    ):
        event = message_event(f"<@{BOT_USER_ID}> {UNMATCHED}", type="app_mention")
        a.event(event)
        a.settle(1)
        message = _posted_message(a)
        _escalate(a, message, "a")
        _escalate(b, message, "b", user="U0000OTHER")
        a.settle(2)
        b.settle(1)
        pages = [c.params for c in slack.calls("chat.postMessage") if f"<!subteam^{ONCALL}>" in c.params["text"]]
        assert len(pages) == 1
        a.state.close()
        b.state.close()
