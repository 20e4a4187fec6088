"""Why an answer was wrong, stored through the answer service on both state back ends: only known reasons and
the knowledge base's ids, the note redacted before it is cut; per-person settings; escalation claimed once."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bot.checker import Checker
from bot.service import FEEDBACK_REASONS, NO_ENTRY, NOTE_CHARS, AnswerService, Context
from bot.state import StateBase
from kb.settings import ChannelMode
from kb.store import KnowledgeBase
from tests.bot_harness import LEAKED_KEY

MakeState = Callable[..., StateBase]


@pytest.fixture
def service(kb: KnowledgeBase, make_state: MakeState) -> Iterator[AnswerService]:
    checker = Checker(kb, timeout=1.0, per_user_per_minute=0)
    try:
        yield AnswerService(kb, make_state(), checker, mode=ChannelMode.ERRORS)
    finally:
        checker.close()


def _reasons(service: AnswerService) -> list[tuple]:
    assert service.state is not None
    return service.state.fetch(
        'SELECT "user", entry_id, reason, actual_entry_id, note FROM feedback_reasons ORDER BY id'
    )


def test_reasons_are_kept_only_for_known_reasons_and_entries(service: AnswerService):
    base = {"user": "U1", "channel": "C1", "message_ts": "1.0"}
    assert service.record_feedback_reason(
        **base, entry_id="api-key-invalid", reason="wrong_family", actual_entry_id="api-key-leaked"
    )
    assert service.record_feedback_reason(**base, entry_id=NO_ENTRY, reason="other", actual_entry_id="no-such-id")
    assert not service.record_feedback_reason(**base, entry_id="api-key-invalid", reason="drop table")
    assert not service.record_feedback_reason(**base, entry_id="not-an-entry", reason="other")
    assert _reasons(service) == [
        ("U1", "api-key-invalid", "wrong_family", "api-key-leaked", None),
        ("U1", NO_ENTRY, "other", None, None),  # a family id the knowledge base does not know is dropped
    ]
    assert set(FEEDBACK_REASONS) == {"wrong_family", "fix_did_not_help", "out_of_date", "other"}


def test_the_note_is_redacted_before_it_is_cut(service: AnswerService):
    # The key straddles the cut: cutting first would leave a fragment no rule recognises.
    note = "x" * (NOTE_CHARS - 10) + f" {LEAKED_KEY} and more"
    assert service.record_feedback_reason(
        user="U1", channel="C1", message_ts="1.0", entry_id="api-key-invalid", reason="other", note=note
    )
    [(*_, stored)] = _reasons(service)
    assert len(stored) <= NOTE_CHARS and LEAKED_KEY[:9] not in stored and stored.endswith("[REDACTED")
    exported = list(service.state.export(("reasons",)))
    assert [r["kind"] for r in exported] == ["reasons"] and exported[0]["note"] == stored


def test_the_shortcut_setting_is_per_person_and_survives_a_new_replica(
    kb: KnowledgeBase, service: AnswerService, make_state: MakeState
):
    assert not service.answers_privately("U1")
    reply = service.run_command("diagnose private", "U1", Context("slash", user="U1"))
    assert reply.kind == "notice" and "privately" in reply.text
    assert service.answers_privately("U1") and not service.answers_privately("U2")
    other = AnswerService(kb, make_state(), service.checker, mode=ChannelMode.ERRORS)
    assert other.answers_privately("U1")
    service.run_command("diagnose thread", "U1", Context("slash", user="U1"))
    assert not other.answers_privately("U1")
    assert service.run_command("diagnose loudly", "U1", Context("slash", user="U1")).kind == "usage"


def test_escalation_is_claimed_once_across_replicas(kb: KnowledgeBase, service: AnswerService, make_state: MakeState):
    other = AnswerService(kb, make_state(), service.checker, mode=ChannelMode.ERRORS)
    assert service.claim_escalation("C1", "1.0")
    assert not other.claim_escalation("C1", "1.0") and not service.claim_escalation("C1", "1.0")
    assert other.claim_escalation("C1", "2.0")


def test_text_a_paste_points_at_is_fetched_once_per_delivery(service: AnswerService):
    calls: list[int] = []

    def more() -> str:
        calls.append(1)
        return "google.genai.errors.ClientError: 400 INVALID_ARGUMENT. API key not valid. Please pass a valid API key."

    ctx = Context("mention", user="U1", channel="C1", message_id="5.0", delivery_id="Ev1")
    answer = service.answer("what is this?", ctx, more=more)
    assert answer.action == "answer" and answer.result.top.id == "api-key-invalid"
    assert service.answer("what is this?", ctx, more=more).why == "already handled (a redelivery)"
    assert calls == [1]
