"""Block Kit rendering: every entry fits Slack's limits, text is escaped, secrets are scrubbed."""

from __future__ import annotations

import dataclasses
import json

from bot import blocks
from bot.checks.result import CheckReport, CheckResult
from bot.state import StateSummary
from kb.matcher import Match, MatchResult
from kb.signals import Signals


def _limits(message_blocks: list[dict], max_blocks: int = blocks.MAX_BLOCKS) -> None:
    assert 0 < len(message_blocks) <= max_blocks
    for block in message_blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
        if block["type"] == "actions":
            assert len(block["elements"]) <= 25
            for button in block["elements"]:
                assert len(button["text"]["text"]) <= 75 and len(button["value"]) <= 2000
        if block["type"] == "context_actions":  # Slack's reference: up to 5 feedback_buttons / icon_button
            assert 0 < len(block["elements"]) <= 5 and len(block.get("block_id", "")) <= 255
            for element in block["elements"]:
                assert element["type"] == "feedback_buttons" and len(element["action_id"]) <= 255
                for side in ("positive_button", "negative_button"):
                    button = element[side]
                    assert button["text"]["type"] == "plain_text" and len(button["text"]["text"]) <= 75
                    assert 0 < len(button["value"]) <= 2000 and len(button.get("accessibility_label", "")) <= 75


def _confident(entry_id: str, kb, *others: str, models: list[str] | None = None) -> MatchResult:
    matches = [Match(entry_id, kb.entries[entry_id].title, 0.93, "reason API_KEY_INVALID + 400 INVALID_ARGUMENT")]
    matches += [Match(o, kb.entries[o].title, 0.3, "") for o in others]
    return MatchResult(matches, True, False, signals=Signals(models=models or []))


def test_every_entry_renders_within_slack_limits(kb):
    for entry_id in kb.entries:
        message = blocks.answer_message(_confident(entry_id, kb, "internal-error"), kb)
        _limits(message.blocks)
        assert message.text and len(message.text) <= 3000
        assert message.blocks[0]["text"]["text"] == kb.entries[entry_id].title[:150]


def test_an_oversized_entry_is_cut_to_fit(kb):
    base = kb.entries["rate-limit-exceeded"]
    huge = dataclasses.replace(
        base,
        id="huge",
        title="T" * 400,
        fix=[f"step {i} " + "x" * 300 for i in range(60)],
        causes=["c" * 5000],
        example="print('x')\n" * 2000,
        docs=[f"https://example.test/{i}" for i in range(30)],
    )
    rendered = blocks.entry_blocks(huge)
    _limits(rendered)
    assert rendered[0]["text"]["text"].endswith("…")
    assert any("more in `gemini-kb show`" in b.get("text", {}).get("text", "") for b in rendered)
    assert len(blocks.fit([{"type": "divider"}] * 80)) == 50


def test_guide_markdown_becomes_escaped_mrkdwn():
    assert blocks.mrkdwn("a <b> & **bold** [docs](https://x.test/a?b=1&c=2)") == (
        "a &lt;b&gt; &amp; *bold* <https://x.test/a?b=1&amp;c=2|docs>"
    )


def test_buttons_follow_the_family(kb):
    def actions(message):
        return [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]

    key = blocks.answer_message(_confident("api-key-invalid", kb), kb)
    assert actions(key) == ["feedback_fixed", "run_check"]
    rate = blocks.answer_message(_confident("rate-limit-exceeded", kb, "quota-daily-exhausted"), kb)
    assert actions(rate) == ["feedback_fixed", "show_candidates"]
    model = blocks.answer_message(_confident("model-not-found", kb, models=["gemini-9-ultra"]), kb)
    run = next(
        e for b in model.blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "run_check"
    )
    assert json.loads(run["value"]) == {"k": "model", "m": "gemini-9-ultra"} and "gemini-9-ultra" in run["text"]["text"]


def test_no_match_is_honest_and_offers_the_candidates(kb):
    result = MatchResult([Match("internal-error", "x", 0.3, "HTTP 500")], False, False, abstain_reason="too weak")
    message = blocks.no_match_message(result, kb)
    assert "couldn't match" in message.blocks[0]["text"]["text"]
    assert "show_entry" in json.dumps(message.blocks) and "/gemini-check" in json.dumps(message.blocks)


def test_feedback_replaces_the_feedback_buttons_with_a_thank_you(kb):
    answer = blocks.answer_message(_confident("api-key-invalid", kb, "api-key-expired"), kb)
    once = blocks.feedback_acknowledged(answer.blocks, user="U1", verdict="fixed")
    twice = blocks.feedback_acknowledged(once, user="U2", verdict="not_it")
    text = json.dumps(twice)
    assert "feedback_fixed" not in text and "run_check" in text and "show_candidates" in text
    assert text.count('"feedback_ack"') == 1 and "<@U2> says this was not it" in text


def test_check_report_explains_failures_and_never_shows_a_key():
    key = "AIzaSyD3mo-Leak3dKey_0123456789abcdefgh"
    report = CheckReport(
        [
            CheckResult("dns", True, 3.2, "generativelanguage.googleapis.com -> 142.250.1.1"),
            CheckResult(
                "key",
                False,
                120.0,
                f"400 API key not valid (key={key})",
                "api-key-invalid",
                "API key rejected",
                ["Copy it again"],
            ),
        ],
        target="key AIza…fgh",
    )
    message = blocks.scrub(blocks.check_report_message(report, ["key", "endpoint"]), key)
    text = json.dumps(message.blocks, ensure_ascii=False) + message.text
    assert key not in text and "api-key-invalid" in text and "1 of 2 failed" in text
    _limits(message.blocks)


def test_home_view_fits_and_groups_by_status(kb):
    summary = StateSummary(path="x", days=7, pastes=5, matched=4, unmatched=1, top_entries=[("rate-limit-exceeded", 4)])
    view = blocks.home_view(kb, summary)
    _limits(view["blocks"], blocks.MAX_HOME_BLOCKS)
    text = json.dumps(view)
    assert "429 RESOURCE_EXHAUSTED" in text and "with no match" in text and "Most frequent" in text
    assert all(f"`{e}`" in text for e in kb.entries)


def test_every_answer_ends_with_thumbs_and_low_confidence_ones_offer_escalation(kb):
    sure = blocks.answer_message(_confident("api-key-invalid", kb), kb, escalate=True)
    unsure = MatchResult([Match("api-key-invalid", "t", 0.7, "")], True, False, signals=Signals())
    nothing = MatchResult([], False, False, signals=Signals())
    for message in (sure, blocks.answer_message(unsure, kb, escalate=True), blocks.answer_message(nothing, kb)):
        _limits(message.blocks)
        feedback = message.blocks[-1]
        assert feedback["type"] == "context_actions" and feedback["elements"][0]["type"] == "feedback_buttons"
    votes = [json.loads(sure.blocks[-1]["elements"][0][s]["value"]) for s in ("positive_button", "negative_button")]
    assert [v["v"] for v in votes] == ["up", "down"] and {v["e"] for v in votes} == {"api-key-invalid"}

    def ids(message):
        return [e.get("action_id") for b in message.blocks for e in b.get("elements", [])]

    assert "escalate" not in ids(sure)
    assert "escalate" in ids(blocks.answer_message(unsure, kb, escalate=True))
    assert "escalate" in ids(blocks.answer_message(nothing, kb, escalate=True))
    assert "escalate" not in ids(blocks.answer_message(nothing, kb))  # no on-call group: no button


def test_the_reasons_form_is_a_valid_modal(kb):
    view = blocks.feedback_view(kb, entry_id="api-key-invalid", metadata='{"ch":"C1"}')
    assert view["type"] == "modal" and len(view["title"]["text"]) <= 24 and len(view["blocks"]) <= 100
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert set(inputs) == {"reason", "family", "note"}
    assert not inputs["reason"].get("optional") and inputs["family"]["optional"] and inputs["note"]["optional"]
    options = inputs["family"]["element"]["options"]
    assert 0 < len(options) <= 100 and all(len(o["text"]["text"]) <= 75 for o in options)
    assert {o["value"] for o in options} == set(kb.entries) or len(options) == 100
