"""The run-time state database: exactly-once claims, redacted pastes, summaries, and a locked file."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from bot.state import STORED_PASTE_CHARS, StateDB

KEY = "AIzaSyD3mo-Leak3dKey_0123456789abcdefgh"


def _paste(state: StateDB, entry: str | None, confident: bool, text: str = "") -> None:
    state.record_paste(
        source="channel",
        channel="C1",
        entry_id=entry,
        confidence=0.9 if confident else 0.2,
        confident=confident,
        text=text,
    )


def test_a_claim_succeeds_once_across_processes_sharing_the_file(tmp_path: Path):
    one, two = StateDB(tmp_path / "s.sqlite"), StateDB(tmp_path / "s.sqlite")
    assert one.claim("event:Ev1")
    assert not one.claim("event:Ev1")
    assert not two.claim("event:Ev1")  # another replica, same file
    assert two.claim("event:Ev2")


def test_only_unmatched_pastes_are_kept_and_only_redacted(tmp_path: Path):
    state = StateDB(tmp_path / "s.sqlite")
    _paste(state, "api-key-invalid", True, f"API key not valid {KEY}")
    long_text = ("x" * (STORED_PASTE_CHARS - 10)) + f" {KEY} " + "tail" * 100
    _paste(state, None, False, long_text)
    _paste(state, None, False, f"<https://generativelanguage.googleapis.com/v1beta/models?key={KEY}|link> broke")
    rows = state.db.execute("SELECT confident, text FROM pastes ORDER BY id").fetchall()
    assert rows[0] == (1, None)
    assert all(KEY[4:16] not in (text or "") for _, text in rows)
    assert len(rows[1][1]) == STORED_PASTE_CHARS
    assert "[REDACTED" in rows[2][1]


def test_summary_counts_the_last_days(tmp_path: Path):
    now = [1_000_000.0]
    state = StateDB(tmp_path / "s.sqlite", clock=lambda: now[0])
    _paste(state, "rate-limit-exceeded", True)
    now[0] += 8 * 86400  # a week later: the first paste falls out of the window
    for _ in range(2):
        _paste(state, "api-key-invalid", True)
    _paste(state, None, False, "what is this")
    state.record_feedback(
        user="U1", channel="C1", message_ts="1.1", entry_id="api-key-invalid", verdict="fixed", confidence=0.9
    )
    state.record_feedback(
        user="U1", channel="C1", message_ts="1.1", entry_id="api-key-invalid", verdict="not_it", confidence=0.9
    )
    state.record_check(
        source="slash",
        user="U1",
        kinds=["key"],
        target="key AIza…fgh",
        ok=False,
        failed=["key"],
        entry_ids=["api-key-invalid"],
        ms=5,
    )
    s = state.summary(days=7)
    assert (s.pastes, s.matched, s.unmatched) == (3, 2, 1)
    assert s.top_entries == [("api-key-invalid", 2)]
    assert s.feedback == {"api-key-invalid": {"not_it": 1}}  # a second click replaces the first
    assert (s.checks, s.checks_failed, s.check_failures) == (1, 1, [("api-key-invalid", 1)])
    assert s.recent_unmatched[0]["text"] == "what is this"


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
