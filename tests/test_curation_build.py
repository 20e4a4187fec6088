"""Approved proposals as a build input, the error lines a proposal is made of, and the curation settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.bootstrap import staleness
from ingest.build import build
from kb.excerpt import error_lines
from kb.matcher import match
from kb.settings import GUIDES_DIR, ConfigError, load_settings
from kb.store import PROJECT_ROOT, open_kb

KEY = "AIzaSyD3mo-Leak3dKey_0123456789abcdefgh"
MIME = "Error 400 INVALID_ARGUMENT. {'error': {'code': 400, 'message': 'Unsupported MIME type: application/x-zz'}}"


def test_error_lines_keep_the_machine_output_and_drop_the_person():
    paste = (
        "hey all, since this morning every upload fails :( any idea?\n"
        "Traceback (most recent call last):\n"
        '  File "/home/me/app.py", line 12, in <module>\n'
        f"    client = genai.Client(api_key='{KEY}')\n"
        f"so weird. {MIME}\n"
        f'{{"error": {{"code": 400, "message": "bad key {KEY}"}}}}\n'
        "thanks in advance!"
    )
    lines = error_lines(paste).splitlines()
    assert lines[0] == MIME  # "so weird. " is the person's, cut off
    assert len(lines) == 2 and "[REDACTED" in lines[1]
    joined = "\n".join(lines)
    assert "hey all" not in joined and "thanks" not in joined and "/home/me" not in joined and KEY[4:16] not in joined
    assert error_lines("lunch at noon? the new office is great") == ""


def _approved(path: Path, *rows: dict) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n", encoding="utf-8")
    return path


def test_the_build_adds_approved_signatures_with_provenance_and_skips_what_it_cannot_use(tmp_path: Path):
    approved = _approved(
        tmp_path / "approved.jsonl",
        {"id": 1, "entry_id": "unsupported-mime-type", "text": f"look: {MIME}", "channel": "C9", "date": "2026-11-29"},
        {"id": 2, "entry_id": "no-such-family", "text": MIME, "channel": "C9", "date": "2026-11-29"},
        {"id": 3, "entry_id": "unsupported-mime-type", "text": "just chatting", "channel": "C9", "date": "2026-11-29"},
    )
    db = tmp_path / "kb.sqlite"
    report = build([GUIDES_DIR, approved], db, root=PROJECT_ROOT)
    assert report.approved == 1
    assert any("no-such-family" in w for w in report.warnings)
    assert any("not JSON" in w for w in report.warnings) and any("no error lines" in w for w in report.warnings)
    kb = open_kb(db)
    rows = (
        kb._conn()
        .execute(
            "SELECT s.text, src.kind, src.path FROM signatures s JOIN sources src ON src.id = s.source_id "
            "WHERE src.kind = 'slack'"
        )
        .fetchall()
    )
    assert [tuple(r) for r in rows] == [(MIME, "slack", "slack:C9/2026-11-29")]  # "look: " left out
    result = match(MIME, kb)
    assert result.confident and result.top is not None and result.top.id == "unsupported-mime-type"
    assert staleness(db) is None
    approved.write_text("", encoding="utf-8")  # a proposal withdrawn: the knowledge base is stale
    assert staleness(db) == "guides changed since the last build"


def test_maintainers_and_digest_settings_are_read_and_checked():
    settings = load_settings({"HOME": "/tmp", "GEMINI_KB_MAINTAINERS": "U012AB, S0GROUP ,W99", "XDG_DATA_HOME": "/d"})
    assert settings.bot.maintainers == ("U012AB", "S0GROUP", "W99")
    assert settings.bot.digest_every == 3600.0
    with pytest.raises(ConfigError, match="GEMINI_KB_MAINTAINERS"):
        load_settings({"HOME": "/tmp", "GEMINI_KB_MAINTAINERS": "@alice"})
    with pytest.raises(ConfigError, match="GEMINI_KB_DIGEST_EVERY"):
        load_settings({"HOME": "/tmp", "GEMINI_KB_DIGEST_EVERY": "-1"})
