"""Building the knowledge base: atomic, deterministic, rebuilt when stale; list and show."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from ingest.bootstrap import open_or_build, staleness
from ingest.build import SCHEMA_VERSION, build
from ingest.inputs import GuideError
from kb.settings import GUIDES_DIR
from kb.store import PROJECT_ROOT, NotAKnowledgeBase

TABLES = ("entries", "signatures", "sources", "entry_sources", "models")


def dump(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        data = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}
        data["meta"] = conn.execute("SELECT * FROM meta WHERE key != 'built_at' ORDER BY key").fetchall()
        return data
    finally:
        conn.close()


def copy_guides(dest: Path) -> Path:
    folder = dest / "guides"
    shutil.copytree(GUIDES_DIR, folder)
    return folder


def test_shipped_build_has_every_table_and_a_working_fts_index(kb_path):
    conn = sqlite3.connect(kb_path)
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    assert len(meta["input_hash"]) == 64
    assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] >= 45
    hits = conn.execute(
        "SELECT s.entry_id FROM signatures_fts f JOIN signatures s ON s.id = f.rowid "
        "WHERE signatures_fts MATCH '\"leaked\"'"
    ).fetchall()
    assert ("api-key-leaked",) in hits


def test_two_builds_of_the_same_input_are_identical(tmp_path):
    a = build([GUIDES_DIR], tmp_path / "a.sqlite", root=PROJECT_ROOT)
    b = build([GUIDES_DIR], tmp_path / "b.sqlite", root=PROJECT_ROOT)
    assert a.input_hash == b.input_hash
    assert dump(tmp_path / "a.sqlite") == dump(tmp_path / "b.sqlite")


def test_failed_build_leaves_previous_database_intact(tmp_path):
    db = tmp_path / "kb.sqlite"
    build([GUIDES_DIR], db, root=PROJECT_ROOT)
    before = dump(db)

    def explode(_tmp: Path) -> None:
        raise RuntimeError("disk died half-way")

    with pytest.raises(RuntimeError):
        build([GUIDES_DIR], db, root=PROJECT_ROOT, before_rename=explode)
    assert dump(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb.sqlite", "kb.sqlite.lock"]  # no temporary left


def test_bad_guide_fails_the_build_and_keeps_the_old_file(tmp_path):
    guides = copy_guides(tmp_path)
    db = tmp_path / "kb.sqlite"
    build([guides], db, root=tmp_path)
    before = dump(db)
    (guides / "rate-limit-exceeded.md").write_text("---\nid: [oops\n---\n")
    with pytest.raises(GuideError) as err:
        build([guides], db, root=tmp_path)
    assert "guides/rate-limit-exceeded.md:" in str(err.value)
    assert dump(db) == before


def test_stale_database_is_rebuilt_on_first_use(tmp_path):
    guides = copy_guides(tmp_path)
    db = tmp_path / "kb.sqlite"
    build([guides], db, root=PROJECT_ROOT)
    assert staleness(db) is None
    path = guides / "internal-error.md"
    path.write_text(path.read_text().replace("title: ", "title: Edited ", 1))
    assert staleness(db) == "guides changed since the last build"
    kb = open_or_build(db)
    assert kb.entries["internal-error"].title.startswith("Edited ")
    assert staleness(db) is None


def test_a_missing_database_is_built_and_a_file_of_another_kind_is_refused(tmp_path):
    db = tmp_path / "kb.sqlite"
    assert staleness(db) == "missing"
    assert "rate-limit-exceeded" in open_or_build(db).entries
    other = tmp_path / "notes.sqlite"
    other.write_bytes(b"this is not sqlite" * 100)
    assert staleness(other) == "not a readable knowledge base"
    with pytest.raises(NotAKnowledgeBase, match="not overwriting it"):
        open_or_build(other)
    assert other.read_bytes() == b"this is not sqlite" * 100


def test_ingest_check_reports_path_and_line(tmp_path, capsys):
    extra = tmp_path / "extra"
    extra.mkdir()
    text = (GUIDES_DIR / "internal-error.md").read_text().replace("id: internal-error", "id: my-fam")
    (extra / "my-fam.md").write_text(text.replace("retryable:", "stauts: 1\nretryable:"))
    assert main(["ingest", "--check", str(extra)]) == 1
    err = capsys.readouterr().err
    assert "my-fam.md:6: unknown field 'stauts'" in err
    (extra / "my-fam.md").write_text(text)
    assert main(["ingest", "--check", str(extra)]) == 1
    assert "also claimed by 'internal-error' (kb/guides/internal-error.md:" in capsys.readouterr().err


def test_ingest_builds_and_prints_a_summary(tmp_path, capsys):
    db = tmp_path / "out.sqlite"
    assert main(["--db", str(db), "ingest", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["entries"] >= 45 and report["signatures"] > 300 and report["path"] == str(db)


def test_list_json_has_every_entry(kb_path, capsys):
    assert main(["--db", str(kb_path), "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_id = {r["id"]: r for r in rows}
    assert by_id["rate-limit-exceeded"]["http_status"] == 429
    assert by_id["rate-limit-exceeded"]["status"] == "RESOURCE_EXHAUSTED"
    assert set(rows[0]) >= {"id", "title", "http_status", "status"}


def test_list_text_is_a_quick_reference(kb_path, capsys):
    assert main(["--db", str(kb_path), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "HTTP", "STATUS", "TITLE"]
    assert any(line.startswith("model-overloaded") and " 503 " in line for line in lines)


def test_show_prints_the_whole_entry(kb_path, capsys):
    assert main(["--db", str(kb_path), "show", "api-key-invalid"]) == 0
    out = capsys.readouterr().out
    for part in ("API key", "Likely causes:", "Fix:", "1. ", "How to confirm:", "Docs:", "Retry helps: no"):
        assert part in out


def test_show_unknown_id_suggests_the_closest(kb_path, capsys):
    assert main(["--db", str(kb_path), "show", "rate-limit"]) == 1
    err = capsys.readouterr().err
    assert "no entry 'rate-limit'" in err and "rate-limit-exceeded" in err


def test_a_build_without_a_root_is_not_stale_at_once(tmp_path: Path):
    """The hash root is recorded with the build, so the start-up check hashes the inputs the same way."""
    db = tmp_path / "kb.sqlite"
    build([GUIDES_DIR], db)  # no root: paths as given
    assert staleness(db) is None
