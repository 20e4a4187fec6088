"""The run-time state store, the same tests on both back ends (SQLite and PostgreSQL): exactly-once claims
across replicas, redacted pastes, one summary for the deployment, check budgets, durable work, migrations."""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.state import STORED_PASTE_CHARS, StateBase, StateDB, StateError
from bot.state_contract import PendingJob
from bot.state_migrations import LATEST

KEY = "AIzaSyD3mo-Leak3dKey_0123456789abcdefgh"
MakeState = Callable[..., StateBase]


def _paste(state: StateBase, entry: str | None, confident: bool, text: str = "") -> None:
    state.record_paste(
        source="channel",
        channel="C1",
        entry_id=entry,
        confidence=0.9 if confident else 0.2,
        confident=confident,
        text=text,
    )


def _race(workers: int, work: Callable[[int], None]) -> None:
    """Run `work(i)` on `workers` threads released at the same moment."""
    gate = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            gate.wait(10)
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


# -- claims ---------------------------------------------------------------------------------------


def test_a_claim_succeeds_once_across_replicas_sharing_the_store(make_state: MakeState):
    one, two = make_state(), make_state()
    assert one.claim("event:Ev1")
    assert not one.claim("event:Ev1")
    assert not two.claim("event:Ev1")  # another replica, same store
    assert two.claim("event:Ev2")
    assert not one.claim("event:Ev2")


def test_replicas_racing_for_the_same_keys_from_threads_each_key_is_won_once(make_state: MakeState):
    replicas = [make_state(), make_state()]
    keys = [f"answer:C1:{n}.0001" for n in range(150)]
    wins: list[str] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        store, order = replicas[i % 2], keys[:]
        random.Random(i).shuffle(order)
        for key in order:
            if store.claim(key):
                with lock:
                    wins.append(key)

    _race(8, work)
    assert Counter(wins) == Counter(keys)  # every key won, none twice
    assert not any(store.fallbacks for store in replicas)  # no win came from a memory fallback


# -- records and the summary ---------------------------------------------------------------------


def test_only_unmatched_pastes_are_kept_and_only_redacted(make_state: MakeState):
    state = make_state()
    _paste(state, "api-key-invalid", True, f"API key not valid {KEY}")
    long_text = ("x" * (STORED_PASTE_CHARS - 10)) + f" {KEY} " + "tail" * 100
    _paste(state, None, False, long_text)
    _paste(state, None, False, f"<https://generativelanguage.googleapis.com/v1beta/models?key={KEY}|link> broke")
    rows = state.fetch("SELECT confident, text FROM pastes ORDER BY id")
    assert rows[0] == (1, None)
    assert all(KEY[4:16] not in (text or "") for _, text in rows)
    assert len(rows[1][1]) == STORED_PASTE_CHARS
    assert "[REDACTED" in rows[2][1]


def test_the_summary_counts_the_last_days_for_the_whole_deployment(make_state: MakeState):
    now = [1_000_000.0]
    one, two = make_state(clock=lambda: now[0]), make_state(clock=lambda: now[0])
    _paste(one, "rate-limit-exceeded", True)
    now[0] += 8 * 86400  # a week later: the first paste falls out of the window
    _paste(one, "api-key-invalid", True)
    _paste(two, "api-key-invalid", True)  # the other replica's records count too
    _paste(two, None, False, "what is this")
    one.record_feedback(
        user="U1", channel="C1", message_ts="1.1", entry_id="api-key-invalid", verdict="fixed", confidence=0.9
    )
    two.record_feedback(
        user="U1", channel="C1", message_ts="1.1", entry_id="api-key-invalid", verdict="not_it", confidence=0.9
    )
    two.record_check(
        source="slash",
        user="U1",
        kinds=["key"],
        target=f"key {KEY}",
        ok=False,
        failed=["key"],
        entry_ids=["api-key-invalid"],
        ms=5,
    )
    s = one.summary(days=7)
    assert (s.pastes, s.matched, s.unmatched) == (3, 2, 1)
    assert s.top_entries == [("api-key-invalid", 2)]
    assert s.feedback == {"api-key-invalid": {"not_it": 1}}  # a second click replaces the first, on any replica
    assert (s.checks, s.checks_failed, s.check_failures) == (1, 1, [("api-key-invalid", 1)])
    assert s.recent_unmatched[0]["text"] == "what is this"
    assert two.summary(days=7).as_dict() | {"path": ""} == s.as_dict() | {"path": ""}  # one answer for all
    assert KEY[4:16] not in str(one.fetch("SELECT target FROM checks"))


def test_export_gives_feedback_misses_and_checks_redacted(make_state: MakeState):
    state = make_state()
    _paste(state, None, False, f"weird failure with {KEY}")
    _paste(state, "api-key-invalid", True, "API key not valid")
    state.record_feedback(user="U1", channel="C1", message_ts="1.1", entry_id="x", verdict="fixed", confidence=0.5)
    state.record_check(
        source="slash", user="U2", kinds=["key"], target="key AIza…fgh", ok=True, failed=[], entry_ids=[], ms=3
    )
    rows = list(state.export())
    assert [r["kind"] for r in rows] == ["feedback", "misses", "checks"]
    assert rows[0]["user"] == "U1" and rows[0]["verdict"] == "fixed"
    assert "[REDACTED" in rows[1]["text"] and KEY[4:16] not in str(rows)
    assert rows[2]["user"] == "U2" and rows[2]["ok"] == 1
    assert [r["kind"] for r in state.export(("checks",))] == ["checks"]


# -- check budgets ---------------------------------------------------------------------------------


def test_check_budgets_hold_for_the_deployment_under_concurrency(make_state: MakeState):
    now = [5_000.0]
    replicas = [make_state(clock=lambda: now[0]), make_state(clock=lambda: now[0])]
    allowed: list[str] = []
    refused: Counter[str] = Counter()
    lock = threading.Lock()

    def work(i: int) -> None:
        store = replicas[i % 2]
        for n in range(6):
            user = f"U{(i + n) % 5}"
            decision = store.check_budget(user, per_user=3, overall=10, window_s=60)
            with lock:
                if decision.allowed:
                    allowed.append(user)
                else:
                    refused[decision.limited_by or "?"] += 1

    _race(8, work)
    assert len(allowed) == 10  # 48 attempts, one budget of 10 for everyone
    assert max(Counter(allowed).values()) <= 3
    assert sum(refused.values()) == 38 and set(refused) <= {"user", "overall"}
    ok, wait = replicas[0].take_check_budget("U9", per_user=3, overall=10, window_s=60)
    assert not ok and 59 <= wait <= 60
    now[0] += 61  # the window has slid past every use
    assert replicas[1].take_check_budget("U9", per_user=3, overall=10, window_s=60) == (True, 0.0)


def test_a_person_over_their_limit_spends_none_of_the_overall_budget(make_state: MakeState):
    now = [5_000.0]
    state = make_state(clock=lambda: now[0])
    assert [state.check_budget("U1", per_user=2, overall=3, window_s=60).allowed for _ in range(4)] == [
        True,
        True,
        False,
        False,
    ]
    now[0] += 10
    assert state.check_budget("U2", per_user=2, overall=3, window_s=60).allowed
    refused = state.check_budget("U3", per_user=2, overall=3, window_s=60)
    assert (refused.allowed, refused.limited_by, round(refused.wait_s)) == (False, "overall", 50)
    assert state.take_check_budget("U4", per_user=0, overall=0, window_s=60) == (True, 0.0)  # 0 = no limit


# -- durable work -----------------------------------------------------------------------------------


def _job(key: str, **extra: object) -> PendingJob:
    fields: dict[str, object] = dict(kind="answer", channel="C1", thread_ts="1.1", user="U1", text="429 quota")
    fields.update(extra)
    return PendingJob(key=key, **fields)  # type: ignore[arg-type]


def test_a_job_is_enqueued_once_across_replicas_and_a_claimed_key_cannot_be_enqueued(make_state: MakeState):
    one, two = make_state(), make_state()
    assert one.enqueue(_job("event:Ev1", text=f"my key {KEY} fails", secrets=["google-api-key"], payload={"k": KEY}))
    assert not two.enqueue(_job("event:Ev1"))
    assert not two.claim("event:Ev1")  # enqueue claims the key
    assert one.claim("event:Ev2") and not two.enqueue(_job("event:Ev2"))
    assert one.pending_count() == two.pending_count() == 1
    stored = str(one.fetch("SELECT * FROM pending_jobs"))
    assert KEY[4:16] not in stored and "google-api-key" in stored
    one.finish("event:Ev1")
    assert two.pending_count() == 0


def test_stale_jobs_are_taken_over_by_exactly_one_of_two_racing_replicas(make_state: MakeState):
    now = [10_000.0]
    first = make_state(clock=lambda: now[0], owner="dead-replica")
    for n in range(60):
        assert first.enqueue(_job(f"event:Ev{n}", created_at=now[0] + n))
    first.mark_posted("event:Ev7", "1700000000.000700")
    first.finish("event:Ev8")
    now[0] += 120
    replicas = [make_state(clock=lambda: now[0]) for _ in range(2)]
    taken: list[tuple[str, PendingJob]] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        owner = f"replica-{i % 2}"
        while jobs := replicas[i % 2].take_over(owner=owner, older_than=60, limit=7):
            with lock:
                taken.extend((owner, job) for job in jobs)

    _race(6, work)
    keys = Counter(job.key for _, job in taken)
    assert keys == Counter(f"event:Ev{n}" for n in range(60) if n != 8)  # each job exactly once, finished ones not
    by_key = {job.key: job for _, job in taken}
    assert by_key["event:Ev7"].posted_ts == "1700000000.000700"  # the taker knows not to post again
    assert by_key["event:Ev3"].posted_ts is None and by_key["event:Ev3"].attempts == 1
    assert replicas[0].take_over(owner="x", older_than=60) == []  # the new leases are fresh
    now[0] += 61
    assert len(replicas[1].take_over(owner="x", older_than=60)) == 59  # a taker that died is taken over too


# -- migrations ---------------------------------------------------------------------------------------


def test_migrations_apply_once_and_a_newer_database_is_refused(make_state: MakeState, state_target: str):
    fresh = make_state()
    assert (fresh.migration.before, fresh.migration.applied) == (0, list(range(1, LATEST + 1)))
    again = make_state()
    assert (again.migration.before, again.migration.applied) == (LATEST, [])
    assert fresh.fetch("SELECT version FROM schema_migrations ORDER BY version") == [(v,) for v in range(1, LATEST + 1)]
    fresh.claim("kept")
    fresh.fetch("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0) RETURNING version")
    with pytest.raises(StateError, match=f"schema version 99 but this gemini-kb knows only up to {LATEST}"):
        make_state()


def test_a_store_at_the_curation_schema_gets_the_feedback_migration_on_top(make_state: MakeState):
    """Two branches both wrote a migration 3: curation kept 3, feedback reasons became 4. A store that already
    runs the curation schema (version 3) gets only 4, and keeps its rows."""
    fresh = make_state()
    names = dict(fresh.fetch("SELECT version, name FROM schema_migrations"))
    assert names[3].startswith("curation: misses queue") and names[4] == "feedback reasons, user settings"
    miss = fresh.record_miss(kind="abstain", channel="C1", message_ts="1.1", user="U1", text="429", bot_said="none")
    drop = (
        "DROP TABLE feedback_reasons",
        "DROP TABLE user_settings",
        "DELETE FROM schema_migrations WHERE version > 3",
    )
    fresh._run(lambda c: [c.execute(sql) for sql in drop], tx=True)  # back to what the curation release left
    upgraded = make_state()
    assert (upgraded.migration.before, upgraded.migration.applied) == (3, list(range(4, LATEST + 1)))
    assert miss is not None and [m["id"] for m in upgraded.misses()] == [miss]
    upgraded.set_user_setting("U1", "diagnose", "private")
    assert upgraded.user_setting("U1", "diagnose") == "private"


def test_migrations_run_once_when_replicas_start_together(make_state: MakeState):
    stores: list[StateBase] = []
    lock = threading.Lock()

    def start(_: int) -> None:
        store = make_state()
        with lock:
            stores.append(store)

    _race(3, start)
    assert sorted(len(s.migration.applied) for s in stores) == [0, 0, LATEST]


def test_a_file_from_before_migrations_is_adopted_with_its_rows(tmp_path: Path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('schema_version', '1');"
        "CREATE TABLE processed_events (key TEXT PRIMARY KEY, at REAL NOT NULL);"
        "INSERT INTO processed_events VALUES ('event:old', 1e12);"
    )
    conn.close()
    state = StateDB(path)
    assert state.migration.applied == list(range(1, LATEST + 1))
    assert not state.claim("event:old")
    assert state.fetch("SELECT value FROM meta WHERE key = 'schema_version'") == [(str(LATEST),)]


# -- SQLite's own failures ------------------------------------------------------------------------------


def test_a_locked_database_is_logged_and_the_bot_carries_on(tmp_path: Path, caplog):
    path = tmp_path / "s.sqlite"
    state = StateDB(path, busy_timeout=0.05)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING, logger="bot.state"):
            _paste(state, None, False, "x")
            assert state.claim("event:locked")  # answered once...
            assert not state.claim("event:locked")  # ...and remembered in memory
            assert state.summary().pastes == 0
            budget = [state.take_check_budget("U1", per_user=1, overall=5, window_s=60)[0] for _ in range(2)]
            assert budget == [True, False]  # the memory budget stands in
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "could not record a paste" in caplog.text and "database is locked" in caplog.text
    _paste(state, None, False, "after the lock")
    assert state.summary().pastes == 1


def test_an_unusable_path_falls_back_to_memory(tmp_path: Path, caplog):
    (tmp_path / "dir.sqlite").mkdir()
    with caplog.at_level(logging.ERROR, logger="bot.state"):
        state = StateDB(tmp_path / "dir.sqlite")
    assert not state.persistent and "in-memory" in caplog.text
    assert state.claim("k") and not state.claim("k")
    assert state.health()["state"] == "degraded"


def test_gemini_check_limits_are_one_budget_for_replicas_sharing_the_store(make_state: MakeState, kb):
    from bot.checker import Checker
    from bot.service import AnswerService
    from kb.settings import ChannelMode

    def replica() -> AnswerService:
        checker = Checker(kb, timeout=1.0, per_user_per_minute=2, global_per_minute=3)
        return AnswerService(kb, make_state(), checker, mode=ChannelMode.ERRORS)

    a, b = replica(), replica()
    try:
        assert a.allow_check("U1") == (True, "") and b.allow_check("U1") == (True, "")
        ok, why = a.allow_check("U1")  # the person's third, on either replica
        assert not ok and why.startswith("You have run 2 checks in the last minute")
        assert b.allow_check("U2") == (True, "")  # the deployment's third
        ok, why = a.allow_check("U3")
        assert not ok and why.startswith("The team has run 3 checks in the last minute")
    finally:
        a.close()
        b.close()
