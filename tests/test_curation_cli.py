"""`gemini-kb misses` and `gemini-kb proposals`, on both state back ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from kb import corpus

KEY = "AIzaSyD3mo-Leak3dKey_0123456789abcdefgh"
ERROR = "google.genai.errors.ClientError: 400 INVALID_ARGUMENT. {'error': {'message': 'Unsupported MIME type: x/y'}}"


@pytest.fixture
def configured(backend: str, state_target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI pointed at this test's store; the path the approved proposals are exported to."""
    monkeypatch.setenv("GEMINI_KB_STATE_URL" if backend == "postgresql" else "GEMINI_KB_STATE_DB", state_target)
    approved = tmp_path / "approved.jsonl"
    monkeypatch.setenv("GEMINI_KB_APPROVED", str(approved))
    return approved


def test_misses_list_json_and_corpus_lines(configured: Path, make_state, capsys):
    state = make_state()
    ids = [
        state.record_miss(
            kind="abstain", channel="C1", message_ts=f"{n}.1", user="U1", text=f"{ERROR} {KEY}", bot_said="abstained"
        )
        for n in range(3)
    ]
    state.decide_miss(ids[0], status="labelled", by="UM", label="unsupported-mime-type")
    state.decide_miss(ids[1], status="dismissed", by="UM")
    assert main(["misses"]) == 0
    listing = capsys.readouterr().out
    assert "unsupported-mime-type" in listing and "labelled" in listing and "dismissed" not in listing
    assert main(["misses", "--json", "--all"]) == 0
    assert sorted(m["status"] for m in json.loads(capsys.readouterr().out)) == ["dismissed", "labelled", "open"]
    assert main(["misses", "--jsonl"]) == 0
    out = capsys.readouterr().out
    [record] = [json.loads(line) for line in out.splitlines()]
    assert set(record) == {"id", "text", "label", "alt", "shape", "source", "lang"}
    assert record["label"] == "unsupported-mime-type" and record["shape"] == "python-genai"
    assert record["source"].startswith("slack:C1/") and KEY[4:16] not in out
    assert corpus.problems([record], corpus.coverage_ids()) == []


def test_proposals_list_approve_and_reject_write_the_approved_file(configured: Path, make_state, capsys):
    state = make_state()
    first, _ = state.propose(entry_id="e1", text="first error", channel="C1", day="2026-11-29", origin="x", by="U")
    second, _ = state.propose(entry_id="e2", text="second error", channel="C2", day="2026-11-29", origin="x", by="U")
    assert main(["proposals"]) == 0
    listing = capsys.readouterr().out
    assert "first error" in listing and "second error" in listing
    assert main(["proposals", "approve", str(first)]) == 0
    assert "1 approved proposals in" in capsys.readouterr().out
    rows = [json.loads(line) for line in configured.read_text().splitlines()]
    assert rows == [{"id": first, "entry_id": "e1", "text": "first error", "channel": "C1", "date": "2026-11-29"}]
    assert main(["proposals", "reject", str(second)]) == 0
    assert main(["proposals", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1]) == []  # nothing left to review
    assert main(["proposals", "approve", "999999"]) == 1
    assert "There is no proposal 999999" in capsys.readouterr().err
    assert main(["proposals", "reject", str(first)]) == 0  # withdrawn: the file goes
    assert not configured.exists()


def test_misses_without_a_state_store_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("GEMINI_KB_STATE_DB", str(tmp_path / "none.sqlite"))
    assert main(["misses"]) == 1
    assert "no state database at" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists()
