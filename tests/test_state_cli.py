"""`gemini-kb state migrate|export` and `gemini-kb stats`, on both back ends."""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from bot.state_migrations import LATEST

KEY = "AIzaSyD3mo-Leak3dKey_0123456789abcdefgh"


@pytest.fixture
def configured(backend: str, state_target: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI pointed at this test's store, the way an operator's environment would."""
    monkeypatch.setenv("GEMINI_KB_STATE_URL" if backend == "postgresql" else "GEMINI_KB_STATE_DB", state_target)
    return state_target


def test_migrate_applies_then_says_there_is_nothing_to_do(configured: str, capsys):
    assert main(["state", "migrate"]) == 0
    assert f"schema version 0 -> {LATEST} (applied " in capsys.readouterr().out
    assert main(["state", "migrate", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) | {"store": ""} == {
        "store": "",
        "before": LATEST,
        "after": LATEST,
        "applied": [],
    }


def test_export_writes_json_lines_of_what_the_replicas_recorded(configured: str, make_state, capsys):
    one, two = make_state(), make_state()
    one.record_paste(source="dm", channel="D1", entry_id=None, confidence=0.1, confident=False, text=f"odd {KEY}")
    two.record_feedback(user="U1", channel="C1", message_ts="1.2", entry_id="e", verdict="fixed", confidence=0.8)
    two.record_check(
        source="slash", user="U2", kinds=["key"], target="key", ok=False, failed=["key"], entry_ids=[], ms=1
    )
    assert main(["state", "export", "--jsonl"]) == 0
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["kind"] for r in rows] == ["feedback", "misses", "checks"]
    assert KEY[4:16] not in out and "[REDACTED" in rows[1]["text"]
    assert main(["state", "export", "--kind", "checks"]) == 0
    assert [json.loads(line)["user"] for line in capsys.readouterr().out.splitlines()] == ["U2"]
    assert main(["stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["pastes"], stats["checks"], stats["feedback"]) == (1, 1, {"e": {"fixed": 1}})


def test_export_of_a_missing_sqlite_file_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GEMINI_KB_STATE_DB", str(tmp_path / "none.sqlite"))
    assert main(["state", "export"]) == 1
    assert "no state database at" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists()
