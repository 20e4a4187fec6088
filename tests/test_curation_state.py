"""The curation tables (migration 3), the same tests on SQLite and PostgreSQL: the misses queue, posted answers,
signature proposals, channel settings and digest claims across replicas."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from bot.state import StateBase
from bot.state_migrations import LATEST

KEY = "AIzaSyD3mo-Leak3dKey_0123456789abcdefgh"
MakeState = Callable[..., StateBase]


def _miss(state: StateBase, ts: str, *, kind: str = "abstain", said: str = "") -> int | None:
    return state.record_miss(
        kind=kind,
        channel="C1",
        message_ts=ts,
        user="U1",
        text=f"400 INVALID_ARGUMENT weird {KEY}",
        bot_said="abstained",
        person_said=said,
        candidates=["invalid-argument"],
    )


def test_the_schema_has_the_curation_tables(make_state: MakeState):
    state = make_state()
    assert LATEST >= 3
    assert state.fetch("SELECT count(*) FROM miss_queue") == [(0,)]
    assert state.fetch("SELECT count(*) FROM proposals") == [(0,)]


def test_a_miss_is_queued_once_per_message_redacted_and_keeps_the_latest_words(make_state: MakeState):
    one, two = make_state(), make_state()
    first = _miss(one, "1.1")
    again = _miss(two, "1.1", said="it was the MIME type")  # another replica, same message: one row
    other = _miss(one, "1.1", kind="not_it")  # another kind of report on the same message: its own row
    assert first is not None and first == again and other != first
    assert _miss(one, "1.1") == first  # a report without words keeps the words already there
    rows = one.misses()
    assert len(rows) == 2
    assert {r["person_said"] for r in rows} == {"it was the MIME type", ""}
    assert all(KEY[4:16] not in r["text"] and "[REDACTED" in r["text"] for r in rows)
    assert rows[0]["candidates"] in (["invalid-argument"], [])


def test_label_and_dismiss_change_the_status_and_are_seen_by_every_replica(make_state: MakeState):
    one, two = make_state(), make_state()
    a, b = _miss(one, "2.1"), _miss(one, "2.2")
    assert a is not None and b is not None
    assert two.decide_miss(a, status="labelled", by="UMAINT", label="unsupported-mime-type")
    assert two.decide_miss(b, status="dismissed", by="UMAINT")
    assert not two.decide_miss(999_999, status="dismissed", by="UMAINT")
    assert one.misses(status="open") == []
    labelled = one.misses(status="labelled")
    assert [(m["id"], m["label"], m["decided_by"]) for m in labelled] == [(a, "unsupported-mime-type", "UMAINT")]
    with pytest.raises(ValueError):
        one.decide_miss(a, status="bogus", by="U")


def test_a_posted_answer_is_found_by_channel_and_ts(make_state: MakeState):
    one, two = make_state(), make_state()
    one.note_answer(
        channel="C1",
        ts="9.9",
        paste_ts="9.1",
        thread_ts=None,
        poster="U1",
        entry_id="rate-limit-exceeded",
        confident=True,
        errors=f"429 RESOURCE_EXHAUSTED key={KEY}",
    )
    found = two.posted_answer("C1", "9.9")
    assert found is not None and found["entry_id"] == "rate-limit-exceeded" and found["poster"] == "U1"
    assert KEY[4:16] not in found["errors"]
    assert two.posted_answer("C1", "9.8") is None


def test_the_same_proposal_twice_is_one_and_decisions_stick(make_state: MakeState):
    one, two = make_state(), make_state()
    pid, new = one.propose(
        entry_id="e1", text="Unsupported MIME type", channel="C1", day="2026-11-29", origin="x", by="U"
    )
    assert new
    again, new_again = two.propose(
        entry_id="e1", text="Unsupported MIME type", channel="C2", day="2026-11-30", origin="y", by="V"
    )
    assert (again, new_again) == (pid, False)
    assert [p["status"] for p in two.proposals()] == ["unreviewed"]
    assert one.decide_proposal(pid, status="approved", by="UMAINT")
    assert [p["id"] for p in two.proposals(status="approved")] == [pid]
    assert two.proposals(status="unreviewed") == []
    assert not one.decide_proposal(pid + 100, status="rejected", by="UMAINT")


def test_a_digest_is_claimed_by_one_replica_per_channel_and_week(make_state: MakeState):
    replicas = [make_state(), make_state()]
    replicas[0].set_channel_setting("C1", "digest", "on")
    replicas[1].set_channel_setting("C2", "digest", "on")
    replicas[1].set_channel_setting("C2", "digest", "off")
    assert replicas[0].channels_with("digest", "on") == ["C1"]
    wins: list[int] = []
    gate = threading.Barrier(8)

    def race(i: int) -> None:
        gate.wait(10)
        if replicas[i % 2].claim_digest("C1", "2026-W48"):
            wins.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(wins) == 1
    assert replicas[1].claim_digest("C1", "2026-W49")  # next week is another claim
    replicas[0].prune(older_than=0)  # pruning old processed events does not free a digest claim
    assert not replicas[0].claim_digest("C1", "2026-W48")


def test_channel_activity_counts_one_channel(make_state: MakeState):
    state = make_state()
    for channel, entry in (("C1", "rate-limit-exceeded"), ("C1", "rate-limit-exceeded"), ("C2", "api-key-invalid")):
        state.record_paste(source="channel", channel=channel, entry_id=entry, confidence=0.9, confident=True)
    _miss(state, "3.1")
    state.record_check(
        source="slash", user="U", kinds=["key"], target="k", ok=False, failed=["key"], entry_ids=[], ms=1, channel="C1"
    )
    activity = state.channel_activity("C1", since=0)
    assert activity == {"top": [("rate-limit-exceeded", 2)], "misses": 1, "open": 1, "checks": 1, "checks_failed": 1}
    assert state.channel_activity("C2", since=0)["top"] == [("api-key-invalid", 1)]
