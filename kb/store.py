"""Read access to the knowledge-base file. Opening never builds: whether to build is decided once at
start-up (`ingest.bootstrap`)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from rapidfuzz import fuzz, process

from kb.schema import SCHEMA_VERSION, Entry, ModelInfo, SourceRef, connect_ro, entry_from_row, model_from_row
from kb.settings import PACKAGE_DIR

log = logging.getLogger(__name__)
PROJECT_ROOT = PACKAGE_DIR.parent
T = TypeVar("T")


class KnowledgeBaseError(Exception):
    """The knowledge base cannot be opened or built; the message says why."""


class NotAKnowledgeBase(KnowledgeBaseError):
    """The path holds something else (a file of another kind, a device, a FIFO): it is never written."""


def regular_file(path: Path) -> bool:
    """`path` is a regular file (or a link to one): never a FIFO (opening it would hang), device or folder."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


@dataclass(frozen=True)
class SignatureRow:
    """A signature as stored: its entry, kind, original text and normalised form."""

    id: int
    entry_id: str
    kind: str
    text: str
    norm: str


def read_meta(path: Path) -> dict[str, str] | None:
    """The meta table of a knowledge-base file, or None when it is not one."""
    if not regular_file(path):
        return None
    try:
        conn = connect_ro(path)
        try:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def inputs_of(meta: dict[str, str] | None) -> list[Path]:
    try:
        return [Path(p) for p in json.loads((meta or {}).get("inputs", "[]"))]
    except (ValueError, TypeError):
        return []


def recorded_inputs(path: Path) -> list[Path]:
    """The guide and article paths the knowledge base at `path` was built from (none if unreadable)."""
    return inputs_of(read_meta(path)) if path.exists() else []


class KnowledgeBase:
    """A read-only view of the knowledge base; entries and signatures are held in memory."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        conn = self._conn()
        try:
            self.meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            sources = self._load_sources(conn)
            self.entries: dict[str, Entry] = {}
            for row in conn.execute("SELECT * FROM entries ORDER BY id"):
                self.entries[row["id"]] = entry_from_row(row, sources.get(row["id"], []))
            self.signatures = [
                SignatureRow(r["id"], r["entry_id"], r["kind"], r["text"], r["norm"])
                for r in conn.execute("SELECT id, entry_id, kind, text, norm FROM signatures ORDER BY id")
            ]
            self.models: dict[str, ModelInfo] = {
                r["name"]: model_from_row(r) for r in conn.execute("SELECT * FROM models ORDER BY rowid")
            }
        except sqlite3.Error as exc:
            raise KnowledgeBaseError(f"{path} is not a usable knowledge base: {exc}") from exc
        self.signature_by_id = {s.id: s for s in self.signatures}
        self._derived: dict[str, object] = {}
        self._derived_lock = threading.Lock()

    def derived(self, name: str, make: Callable[[KnowledgeBase], T]) -> T:
        """What is computed once from this knowledge base (the matcher's indexes): it lives and dies
        with this object, so nothing module-level keeps an old knowledge base alive."""
        with self._derived_lock:
            found = self._derived.get(name)
            if found is None:
                found = self._derived[name] = make(self)
        return found  # type: ignore[return-value]

    def _conn(self) -> sqlite3.Connection:
        """A read-only connection for the calling thread."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect_ro(self.path, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    @staticmethod
    def _load_sources(conn: sqlite3.Connection) -> dict[str, list[SourceRef]]:
        found: dict[str, list[SourceRef]] = {}
        rows = conn.execute(
            "SELECT es.entry_id, es.section, es.advice, s.kind, s.title, s.path "
            "FROM entry_sources es JOIN sources s ON s.id = es.source_id ORDER BY s.kind DESC, s.path, es.section"
        )
        for r in rows:
            found.setdefault(r["entry_id"], []).append(
                SourceRef(r["kind"], r["title"], r["path"], r["section"], json.loads(r["advice"] or "{}"))
            )
        return found

    def search_signatures(self, fts_query: str, limit: int = 60) -> list[tuple[int, float]]:
        """Signature ids matching an already-escaped FTS5 query, best bm25 first."""
        if not fts_query:
            return []
        rows = (
            self._conn()
            .execute(
                "SELECT rowid, bm25(signatures_fts) AS rank FROM signatures_fts "
                "WHERE signatures_fts MATCH ? ORDER BY rank LIMIT ?",
                (fts_query, limit),
            )
            .fetchall()
        )
        return [(r[0], r[1]) for r in rows]

    def entry(self, entry_id: str) -> Entry | None:
        return self.entries.get(entry_id)

    def closest_ids(self, text: str, limit: int = 3) -> list[str]:
        """Entry ids closest to `text` (for 'did you mean')."""
        found = process.extract(text.lower(), list(self.entries), scorer=fuzz.WRatio, limit=limit)
        return [name for name, _score, _ in found]

    def close(self) -> None:
        """Close the calling thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def version(self) -> str:
        return f"{self.meta.get('input_hash', '?')[:12]} built {self.meta.get('built_at', '?')}"


def open_kb(path: Path) -> KnowledgeBase:
    """Open the knowledge base at `path` for reading; it must exist, be whole (SQLite's quick_check, about
    a millisecond for the shipped file) and be of this schema. Nothing is written."""
    if not path.exists():
        raise KnowledgeBaseError(f"no knowledge base at {path}: run 'gemini-kb ingest'")
    if not regular_file(path):
        raise NotAKnowledgeBase(f"{path} is not a regular file: point GEMINI_KB_DB (or --db) at a knowledge base")
    try:
        conn = connect_ro(path)
        try:
            check = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            version = dict(conn.execute("SELECT key, value FROM meta").fetchall()).get("schema_version")
        finally:
            conn.close()
        if check != "ok":
            raise sqlite3.DatabaseError(f"integrity check: {check}")
        if version != str(SCHEMA_VERSION):  # before reading rows whose columns may differ
            raise KnowledgeBaseError(
                f"{path} has schema version {version}, not {SCHEMA_VERSION}: rebuild it with 'gemini-kb ingest'"
            )
        return KnowledgeBase(path)
    except KnowledgeBaseError:
        raise
    except (sqlite3.Error, ValueError, LookupError, TypeError) as exc:
        cause = exc.__cause__ or exc
        detail = "".join(c if c.isprintable() else "?" for c in str(cause))[:120]
        raise KnowledgeBaseError(f"{path} is not a usable knowledge base ({detail})") from exc
