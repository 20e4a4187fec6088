"""The knowledge-base file at start-up, through the real CLI: missing, garbage, truncated, a damaged page,
an old schema, someone else's SQLite file, an unwritable location, guides gone. `ask`, `show` and `serve`
rebuild where they can and otherwise exit 1 with one clear line; never a traceback."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.state import StateDB
from ingest.bootstrap import staleness
from ingest.build import build
from kb.settings import GUIDES_DIR
from kb.store import PROJECT_ROOT
from tests.bot_harness import RATE_ERROR


def _run(capsys, db: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--db", str(db), *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _damage_entries_page(db: Path) -> None:
    """Overwrite the page holding the entries table: the meta table stays readable, the rest is broken."""
    conn = sqlite3.connect(db)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'entries'").fetchone()[0]
    finally:
        conn.close()
    data = bytearray(db.read_bytes())
    data[(root - 1) * page_size : root * page_size] = b"\xa5" * page_size
    db.write_bytes(bytes(data))


def _usable(db: Path) -> bool:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA quick_check").fetchone()[0] == "ok" and staleness(db) is None
    finally:
        conn.close()


def _old_schema(db: Path) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        conn.execute("DROP TABLE models")
    conn.close()


# A knowledge base this program built (its meta table says so) is rebuilt when damaged or old; a file that
# is not one (garbage, empty) is never overwritten (tests/test_kb_files.py).
DAMAGE = {
    "damaged page": _damage_entries_page,
    "old schema": _old_schema,
}


@pytest.fixture
def db(kb_path: Path, tmp_path: Path) -> Path:
    path = tmp_path / "kb.sqlite"
    shutil.copy(kb_path, path)
    return path


def test_a_missing_knowledge_base_is_built_at_start(capsys, tmp_path: Path):
    db = tmp_path / "new" / "kb.sqlite"
    code, out, _ = _run(capsys, db, "show", "rate-limit-exceeded")
    assert code == 0 and "rate-limit-exceeded" in out and _usable(db)


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_broken_or_old_knowledge_base_is_rebuilt_and_answers(capsys, db: Path, damage: str):
    DAMAGE[damage](db)
    code, out, _ = _run(capsys, db, "ask", RATE_ERROR)
    assert code == 0 and "rate-limit-exceeded" in out
    assert _usable(db)
    code, out, _ = _run(capsys, db, "show", "api-key-invalid", "--json")
    assert code == 0 and json.loads(out)["id"] == "api-key-invalid"


@pytest.mark.parametrize("kind", ["notes", "state"])
def test_an_sqlite_file_that_is_not_a_knowledge_base_is_never_overwritten(capsys, tmp_path: Path, kind: str):
    db = tmp_path / "precious.sqlite"
    if kind == "state":  # GEMINI_KB_DB pointed at the bot's state database by mistake
        state = StateDB(db)
        state.claim("event:keep-me")
        state.close()
    else:
        conn = sqlite3.connect(db)
        with conn:
            conn.execute("CREATE TABLE notes (text TEXT)")
            conn.execute("INSERT INTO notes VALUES ('keep me')")
        conn.close()
    before = db.read_bytes()
    for args in (["ask", RATE_ERROR], ["show", "rate-limit-exceeded"]):
        code, out, err = _run(capsys, db, *args)
        assert code == 1 and out == ""
        assert "is an SQLite database but not a gemini-kb knowledge base" in err and "not overwriting it" in err
        assert len(err.strip().splitlines()) == 1
    assert db.read_bytes() == before


def test_an_unwritable_location_fails_with_one_clear_line(capsys, tmp_path: Path):
    (tmp_path / "a-file").write_text("")
    db = tmp_path / "a-file" / "kb.sqlite"  # its folder cannot be created (root can write anywhere else)
    code, out, err = _run(capsys, db, "show", "rate-limit-exceeded")
    assert code == 1 and out == ""
    assert err.startswith(f"gemini-kb: cannot build the knowledge base at {db} (missing)")
    assert "set GEMINI_KB_DB (or --db) to a writable file" in err and len(err.strip().splitlines()) == 1


def _from_own_guides(tmp_path: Path) -> tuple[Path, Path]:
    guides = tmp_path / "guides"
    shutil.copytree(GUIDES_DIR, guides)
    db = tmp_path / "kb.sqlite"
    build([guides], db, root=PROJECT_ROOT)
    return guides, db


def test_a_stale_knowledge_base_whose_guides_are_gone_is_used_as_it_is(capsys, tmp_path: Path, caplog):
    guides, db = _from_own_guides(tmp_path)
    for guide in guides.glob("*.md"):
        guide.unlink()
    assert staleness(db) == "guides changed since the last build"
    code, out, _ = _run(capsys, db, "ask", RATE_ERROR)
    assert code == 0 and "rate-limit-exceeded" in out
    assert "cannot be rebuilt" in caplog.text and "using it as it is" in caplog.text


def test_a_damaged_knowledge_base_whose_guides_are_gone_fails_clearly(capsys, tmp_path: Path):
    guides, db = _from_own_guides(tmp_path)
    for guide in guides.glob("*.md"):
        guide.unlink()
    _damage_entries_page(db)
    code, out, err = _run(capsys, db, "show", "rate-limit-exceeded")
    assert code == 1 and out == ""
    assert f"cannot build the knowledge base at {db} (damaged): no guides in {guides}" in err


def _serve(db: Path, tmp_path: Path, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "--db", str(db), "serve"],  # no Slack tokens: the console
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )


def test_serve_rebuilds_a_damaged_knowledge_base_and_answers(db: Path, tmp_path: Path):
    DAMAGE["damaged page"](db)
    done = _serve(db, tmp_path, RATE_ERROR + "\n")
    assert done.returncode == 0 and "rate-limit-exceeded" in done.stdout
    assert "Traceback" not in done.stderr


def test_serve_with_someone_elses_sqlite_file_exits_1_with_one_line(tmp_path: Path):
    db = tmp_path / "other.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    done = _serve(db, tmp_path, RATE_ERROR + "\n")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("gemini-kb: ") and "not a gemini-kb knowledge base" in done.stderr
    assert "Traceback" not in done.stderr
