"""Issue 17, end to end on loopback: the bot (real bolt App behind HTTP) against the Slack stand-in, a real
state store, real builds into temporary folders and the real matcher.

The paste is a real one from the TRAIN side of tests/data/real/pastes.jsonl that the shipped knowledge base
abstains on (b0244, labelled model-overloaded: a Dart client's wording of a 503 that no guide quotes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from ingest.bootstrap import open_or_build
from kb import corpus
from kb.matcher import match
from kb.store import KnowledgeBase
from tests.bot_harness import KEY_ERROR, RATE_ERROR, Running, running_bot
from tests.slack_stub import (
    BOT_USER_ID,
    SlackStub,
    as_form,
    as_payload_form,
    block_actions,
    home_opened_event,
    message_event,
    reaction_event,
    slash_command,
    view_actions,
)

PASTE_ID = "b0244"
MARK = "GeminiException"  # words of the paste's error line, shown in the queue and carried into the proposal
MAINTAINER = "UMAINT001"
GROUP, GROUP_MEMBER = "SMAINTS01", "UGROUP001"
POSTER, STRANGER = "U0000USER", "USTRANGER"


@pytest.fixture(scope="module")
def paste() -> dict:
    return _record(PASTE_ID)


def _record(rid: str) -> dict:
    record = next(r for r in corpus.load() if r["id"] == rid)
    assert rid not in corpus.test_ids(), "only TRAIN pastes are used to build"
    return record


@pytest.fixture
def curating(kb: KnowledgeBase, slack: SlackStub, tmp_path: Path):
    slack.usergroups[GROUP] = [GROUP_MEMBER]
    with running_bot(kb, slack, tmp_path / "state.sqlite", maintainers=(MAINTAINER, GROUP), digest_every=0) as bot:
        yield bot


# -- helpers ----------------------------------------------------------------------------------------


def _home(running: Running, user: str) -> dict:
    """Open the Home tab as `user`; the view published for them."""
    before = len([c for c in running.slack.calls("views.publish") if c.params["user_id"] == user])
    running.event(home_opened_event(user))
    assert running.slack.wait_for(
        lambda: len([c for c in running.slack.calls("views.publish") if c.params["user_id"] == user]) > before
    )
    return [c for c in running.slack.calls("views.publish") if c.params["user_id"] == user][-1].params["view"]


def _element(view: dict, block_id: str, action_id: str) -> dict:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    return {**next(e for e in block["elements"] if e["action_id"] == action_id), "block_id": block_id}


def _click(running: Running, action: dict, user: str, runs: int) -> None:
    reply = running.send(*as_payload_form(view_actions(action, user=user)))
    assert reply.status == 200
    running.settle(runs)


def _label(action: dict, family: str) -> dict:
    option = next(o for o in action["options"] if o["value"] == family)
    return {**action, "selected_option": option}


def _misses(running: Running) -> list[dict]:
    return running.state.misses()


# -- App Home -----------------------------------------------------------------------------------------


def test_app_home_shows_the_queue_to_maintainers_only(curating: Running, paste: dict):
    curating.event(message_event(paste["text"], channel="C0000CHAN"))  # overheard: the bot abstains, silently
    curating.settle(1)
    assert curating.messages() == []
    [miss] = _misses(curating)
    assert miss["kind"] == "abstain" and miss["status"] == "open" and MARK in miss["text"]

    for who in (MAINTAINER, GROUP_MEMBER, GROUP_MEMBER):
        text = json.dumps(_home(curating, who))
        assert "Misses to review (1 open)" in text and f"miss:{miss['id']}" in text and MARK in text
    other = json.dumps(_home(curating, STRANGER))
    assert "Misses to review" not in other and MARK not in other and "rate-limit-exceeded" in other
    # The group's members were asked once: the second home of the member and the stranger's used the cache.
    assert [c.params["usergroup"] for c in curating.slack.calls("usergroups.users.list")] == [GROUP]


def test_label_and_dismiss_from_app_home_update_the_store_and_strangers_change_nothing(curating: Running):
    for rid in ("b0129", "b0126"):  # two real pastes the shipped knowledge base abstains on
        curating.event(message_event(_record(rid)["text"]))
    curating.settle(2)
    first, second = sorted(_misses(curating), key=lambda m: m["id"])
    view = _home(curating, MAINTAINER)
    runs = curating.bot.events_done

    forged = _label(_element(view, f"miss:{first['id']}", "curation_label"), "rate-limit-exceeded")
    _click(curating, forged, STRANGER, runs + 1)
    assert curating.state.miss(first["id"])["status"] == "open"  # a stranger's click changed nothing

    _click(curating, forged, MAINTAINER, runs + 2)
    _click(curating, _element(view, f"miss:{second['id']}", "curation_add_signature"), MAINTAINER, runs + 3)
    assert f"Label miss {second['id']} with a family first" in json.dumps(
        curating.slack.calls("views.publish")[-1].params
    )
    assert curating.state.proposals() == []
    _click(curating, _element(view, f"miss:{second['id']}", "curation_dismiss"), GROUP_MEMBER, runs + 4)
    labelled, dismissed = curating.state.miss(first["id"]), curating.state.miss(second["id"])
    assert (labelled["status"], labelled["label"], labelled["decided_by"]) == (
        "labelled",
        "rate-limit-exceeded",
        MAINTAINER,
    )
    assert (dismissed["status"], dismissed["decided_by"]) == ("dismissed", GROUP_MEMBER)
    republished = json.dumps(curating.slack.calls("views.publish")[-1].params["view"])
    assert "Misses to review (0 open)" in republished


# -- ✅ on an answer: a proposal, the next build, a match ---------------------------------------------------


def test_a_check_mark_by_the_poster_proposes_the_error_and_the_next_build_matches_it(
    curating: Running, paste: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    kb_before = curating.bot.kb
    assert not match(paste["text"], kb_before).confident
    event = message_event(f"<@{BOT_USER_ID}> what is this? {paste['text']}", type="app_mention")
    curating.event(event)  # addressed: the bot answers that it has no match
    curating.settle(1)
    [answer] = curating.slack.calls("chat.postMessage")
    answer_ts = answer.response["ts"]
    [miss] = _misses(curating)

    curating.event(reaction_event("white_check_mark", message_ts=answer_ts, user=POSTER))
    curating.settle(2)  # no family yet: the poster is told to wait for a label, nothing is proposed
    assert curating.state.proposals() == []
    assert "labels it in my App Home" in curating.slack.calls("chat.postEphemeral")[-1].params["text"]

    view = _home(curating, MAINTAINER)
    _click(curating, _label(_element(view, f"miss:{miss['id']}", "curation_label"), paste["label"]), MAINTAINER, 4)
    curating.event(reaction_event("heavy_check_mark", message_ts=answer_ts, user=STRANGER))
    curating.event(reaction_event("white_check_mark", message_ts=answer_ts, user=POSTER))
    curating.settle(6)
    [proposal] = curating.state.proposals()
    assert (proposal["entry_id"], proposal["status"], proposal["origin"]) == (paste["label"], "unreviewed", "reaction")
    assert "what is this" not in proposal["text"]  # the poster's words stay out; the error lines go in
    assert f"**{MARK}** => This exception was thrown" in proposal["text"]
    assert proposal["proposed_by"] == POSTER  # the stranger's ✅ proposed nothing

    monkeypatch.setenv("GEMINI_KB_STATE_DB", str(curating.state_path))
    monkeypatch.setenv("GEMINI_KB_DB", str(tmp_path / "next" / "kb.sqlite"))
    monkeypatch.setenv("GEMINI_KB_APPROVED", str(tmp_path / "approved.jsonl"))
    assert main(["proposals", "--json"]) == 0
    assert [p["id"] for p in json.loads(capsys.readouterr().out)] == [proposal["id"]]
    assert main(["proposals", "approve", str(proposal["id"])]) == 0
    assert main(["ingest", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert report["approved"] == 1
    after = open_or_build(tmp_path / "next" / "kb.sqlite")
    result = match(paste["text"], after)
    assert result.confident and result.top is not None and result.top.id == paste["label"]
    sources = after._conn().execute("SELECT kind, path FROM sources WHERE kind = 'slack'").fetchall()
    assert [tuple(s) for s in sources] == [("slack", f"slack:C0000CHAN/{proposal['day']}")]


def test_a_thumbs_down_reaction_and_the_legacy_not_it_button_queue_the_answer_as_a_miss(curating: Running):
    event = message_event(RATE_ERROR)
    curating.event(event)
    curating.settle(1)
    [answer] = curating.slack.calls("chat.postMessage")
    curating.event(reaction_event("thumbsdown::skin-tone-2", message_ts=answer.response["ts"], user=STRANGER))
    curating.event(reaction_event("-1", message_ts="1.000001", user=STRANGER))  # not one of the bot's answers
    curating.settle(3)
    message = {**answer.params, "ts": answer.response["ts"], "thread_ts": event["ts"], "user": BOT_USER_ID}
    actions = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert "feedback_not_it" not in {e["action_id"] for e in actions}  # new answers carry the native 👎 instead
    # An answer posted before the native 👍/👎 still has "Not it" in its actions; its clicks still count.
    legacy = {"type": "button", "action_id": "feedback_not_it", "value": json.dumps({"e": "rate-limit-exceeded"})}
    older = {
        **message,
        "blocks": [*message["blocks"], {"type": "actions", "block_id": "answer_actions", "elements": [legacy]}],
    }
    curating.send(*as_payload_form(block_actions(older, legacy, response_url=curating.slack.response_url())))
    curating.settle(4)
    down, not_it = sorted(_misses(curating), key=lambda m: m["id"])
    assert (down["kind"], down["entry_id"], down["user"]) == ("thumbs_down", "rate-limit-exceeded", STRANGER)
    assert "RESOURCE_EXHAUSTED" in down["text"] and down["bot_said"] == "answered rate-limit-exceeded"
    assert (not_it["kind"], not_it["entry_id"], not_it["user"]) == ("not_it", "rate-limit-exceeded", POSTER)
    assert not_it["message_ts"] == down["message_ts"] == event["ts"]  # both point at the paste


def test_add_to_kb_appears_after_fixed_it_and_proposes_for_the_answered_family(curating: Running):
    event = message_event(KEY_ERROR)
    curating.event(event)
    curating.settle(1)
    [answer] = curating.slack.calls("chat.postMessage")
    message = {**answer.params, "ts": answer.response["ts"], "thread_ts": event["ts"], "user": BOT_USER_ID}
    actions = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    fixed = next(e for e in actions if e["action_id"] == "feedback_fixed")
    curating.send(*as_payload_form(block_actions(message, fixed, response_url=curating.slack.response_url())))
    curating.settle(2)
    [update] = curating.slack.calls("chat.update")
    updated = {**message, "blocks": update.params["blocks"]}
    add = next(e for b in updated["blocks"] if b.get("block_id") == "add_to_kb" for e in b["elements"])
    for runs, user in enumerate((STRANGER, POSTER), start=3):  # one after the other: the replies' order is known
        payload = block_actions(updated, add, response_url=curating.slack.response_url(), user=user)
        curating.send(*as_payload_form(payload))
        curating.settle(runs)
    [proposal] = curating.state.proposals()
    assert (proposal["entry_id"], proposal["origin"], proposal["proposed_by"]) == ("api-key-invalid", "button", POSTER)
    assert "API_KEY_INVALID" in proposal["text"] and 'File "app.py"' not in proposal["text"]
    told = [c.params for c in curating.slack.calls("chat.postEphemeral")]
    assert [t["user"] for t in told] == [STRANGER, POSTER] and "Only the person who asked" in told[0]["text"]
    # A reaction Slack delivers twice is handled once.
    again = reaction_event("white_check_mark", message_ts=message["ts"], user=POSTER)
    curating.event(again, event_id="EvTWICE0001")
    curating.event(again, event_id="EvTWICE0001")
    curating.settle(6)
    assert len(curating.slack.calls("chat.postEphemeral")) == 3


# -- the weekly digest ---------------------------------------------------------------------------------


def test_the_digest_is_off_by_default_and_posts_once_per_week_with_two_replicas(
    kb: KnowledgeBase, slack: SlackStub, tmp_path: Path, make_state
):
    one_state, two_state = make_state(), make_state()  # two replicas on one store (SQLite file or PostgreSQL)
    path = tmp_path / "unused.sqlite"
    with (
        running_bot(kb, slack, path, state=one_state, digest_every=0.05) as one,
        running_bot(kb, slack, path, state=two_state, digest_every=0.05) as two,
    ):
        one.event(message_event(RATE_ERROR, channel="CDIGEST01"))
        one.settle(1)
        assert one.bot.curation.digest.wait_rounds(3, timeout=10)
        assert not [c for c in slack.calls("chat.postMessage") if "Weekly digest" in c.params.get("text", "")]

        reply = one.send(*as_form(slash_command("digest on", response_url=slack.response_url(), channel="CDIGEST01")))
        assert reply.status == 200 and "Weekly digest on" in reply.json()["text"]
        rounds = (one.bot.curation.digest.rounds, two.bot.curation.digest.rounds)
        assert one.bot.curation.digest.wait_rounds(rounds[0] + 4, timeout=10)
        assert two.bot.curation.digest.wait_rounds(rounds[1] + 4, timeout=10)
    digests = [c for c in slack.calls("chat.postMessage") if "Weekly digest" in c.params.get("text", "")]
    assert len(digests) == 1
    assert digests[0].params["channel"] == "CDIGEST01"
    assert "rate-limit-exceeded" in json.dumps(digests[0].params["blocks"])


# -- the closing figure: a miss, labelled in App Home, approved, rebuilt, answered -----------------------


def test_misses_round_trip_from_abstention_to_a_confident_answer(
    curating: Running, paste: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    curating.event(message_event(paste["text"], channel="CROUNDTRP"))
    curating.settle(1)
    assert curating.messages() == []  # before: the bot abstains
    [miss] = _misses(curating)

    view = _home(curating, MAINTAINER)
    _click(curating, _label(_element(view, f"miss:{miss['id']}", "curation_label"), paste["label"]), MAINTAINER, 3)
    _click(curating, _element(view, f"miss:{miss['id']}", "curation_add_signature"), MAINTAINER, 4)
    [proposal] = curating.state.proposals()
    view = curating.slack.calls("views.publish")[-1].params["view"]
    assert "Signature proposals (1 unreviewed)" in json.dumps(view)
    _click(curating, _element(view, f"proposal:{proposal['id']}", "curation_approve"), MAINTAINER, 5)
    assert curating.state.proposal(proposal["id"])["status"] == "approved"

    monkeypatch.setenv("GEMINI_KB_STATE_DB", str(curating.state_path))
    monkeypatch.setenv("GEMINI_KB_DB", str(tmp_path / "next" / "kb.sqlite"))
    monkeypatch.setenv("GEMINI_KB_APPROVED", str(tmp_path / "approved.jsonl"))
    capsys.readouterr()
    assert main(["misses", "--jsonl"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["label"], r["source"].split("/")[0]) for r in records] == [(paste["label"], "slack:CROUNDTRP")]
    assert corpus.problems(records, corpus.coverage_ids()) == []  # ready for the labelled data as it is
    assert main(["ingest"]) == 0
    assert "1 approved proposals" in capsys.readouterr().out

    rebuilt = open_or_build(tmp_path / "next" / "kb.sqlite")
    with running_bot(rebuilt, curating.slack, tmp_path / "after.sqlite", digest_every=0) as after:
        after.event(message_event(paste["text"], channel="CROUNDTRP"))
        after.settle(1)
        [answer] = after.messages()
    assert f"`{paste['label']}`" in json.dumps(answer["blocks"])  # after: answered, with the labelled family
    assert "couldn't match" not in answer["text"]
