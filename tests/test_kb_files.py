"""Where the knowledge base is written: only to a path that does not exist or that holds a knowledge base
this program built (its meta table says so). Everything else (text, empty, garbage, a FIFO, a device) is
refused with one line and left as it was; builds of one file take turns; `#` and `?` in a path are names,
not URI syntax; a full disk leaves the old knowledge base as it was. Through the real CLI in subprocesses."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.bot_harness import RATE_ERROR

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = ROOT / "tests" / "data" / "articles"


def gemini_kb(*args: str, db: Path, timeout: float = 120, preexec=None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GEMINI_KB_DB": str(db), "XDG_CACHE_HOME": str(db.parent), "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec,
    )


def _make(kind: str, path: Path) -> None:
    if kind == "text file":
        path.write_text("my notes, please keep\n")
    elif kind == "empty file":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(bytes(range(256)) * 64)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        try:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a null device of our own, in tmp_path
        except PermissionError:
            pytest.skip("creating a device node needs root")


def _snapshot(path: Path) -> tuple[int, bytes]:
    mode = os.lstat(path).st_mode
    return mode, path.read_bytes() if stat.S_ISREG(mode) else b""


@pytest.mark.parametrize("kind", ["text file", "empty file", "garbage", "fifo", "device"])
@pytest.mark.parametrize("command", [("ask", RATE_ERROR), ("list",), ("ingest",)])
def test_a_path_that_is_not_a_knowledge_base_is_refused_in_one_line_and_left_alone(tmp_path, kind, command):
    db = tmp_path / "kb.sqlite"
    _make(kind, db)
    before = _snapshot(db)
    done = gemini_kb(*command, db=db, timeout=60)  # a FIFO once made `list` hang
    assert done.returncode == 1, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "not overwriting it" in done.stderr, done.stderr
    assert _snapshot(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb.sqlite"]  # no stray file, no lock file


def test_a_path_with_hash_and_question_mark_is_a_name(tmp_path):
    folder = tmp_path / "team#1?x=y"
    db = folder / "kb#v2?.sqlite"
    assert gemini_kb("ingest", db=db).returncode == 0
    listed = gemini_kb("list", db=db)
    assert listed.returncode == 0 and "rate-limit-exceeded" in listed.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["kb#v2?.sqlite", "kb#v2?.sqlite.lock"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team#1?x=y"]


def _article_paths(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return sorted(path for (path,) in conn.execute("SELECT path FROM sources WHERE kind = 'article'"))
    finally:
        conn.close()


def test_concurrent_ingests_of_one_file_take_turns_and_keep_every_article(tmp_path):
    articles = sorted(p for p in ARTICLES.iterdir() if p.suffix in {".md", ".txt", ".html"})[:5]
    assert len(articles) == 5
    db = tmp_path / "kb.sqlite"
    with ThreadPoolExecutor(5) as pool:
        runs = list(pool.map(lambda article: gemini_kb("ingest", str(article), db=db, timeout=240), articles))
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    kept = _article_paths(db)
    assert len(kept) == 5, kept
    assert all(any(a.name in k for k in kept) for a in articles)


def _limit_file_size() -> None:
    """In the child: files may not grow past 200 KB (as on a nearly full disk); writes then fail with EFBIG
    instead of the default SIGXFSZ kill."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def test_a_full_disk_during_ingest_is_one_line_and_the_old_knowledge_base_stays(tmp_path, kb_path):
    db = tmp_path / "kb.sqlite"
    shutil.copy(kb_path, db)
    before = db.read_bytes()
    done = gemini_kb("ingest", db=db, preexec=_limit_file_size)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1 and "cannot write the knowledge base" in line and "unchanged" in line, line
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb.sqlite", "kb.sqlite.lock"]  # no half-written file
