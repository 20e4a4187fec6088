"""Read access to the knowledge-base file, built on first use when missing or stale."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz, process

from ingest.build import SCHEMA_VERSION, BuildReport, build, input_hash
from ingest.guides import guide_files
from kb.settings import GUIDES_DIR, PACKAGE_DIR

log = logging.getLogger(__name__)
PROJECT_ROOT = PACKAGE_DIR.parent


class KnowledgeBaseError(Exception):
    """The knowledge base cannot be opened or built; the message says why."""


@dataclass(frozen=True)
class SourceRef:
    """Where an entry's advice comes from."""

    kind: str
    title: str
    path: str
    section: str = ""
    advice: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """One error family."""

    id: str
    title: str
    http_status: int | None
    status: str | None
    summary: str
    causes: list[str]
    fix: list[str]
    diagnosis: list[str]
    example: str
    example_lang: str
    notes: str
    docs: list[str]
    retryable: str
    related: list[str]
    specialises: str | None
    reviewed: bool
    sources: list[SourceRef] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        data = dict(self.__dict__)
        data["sources"] = [dict(s.__dict__) for s in self.sources]
        return data


@dataclass(frozen=True)
class SignatureRow:
    """A signature as stored: its entry, kind, original text and normalised form."""

    id: int
    entry_id: str
    kind: str
    text: str
    norm: str


@dataclass(frozen=True)
class ModelInfo:
    """A model's lifecycle record."""

    name: str
    status: str
    date: str | None
    replacement: str | None
    entry_id: str

    def shut_down(self, today: str) -> bool:
        """Retired, or deprecated with a shutdown date that has passed (ISO dates compare as text)."""
        return self.status == "retired" or bool(self.date and self.date <= today)


def _read_meta(path: Path) -> dict[str, str] | None:
    """The meta table of a knowledge-base file, or None when it is not one."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def staleness(path: Path) -> str | None:
    """Why `path` needs a rebuild (missing, corrupt, old schema, inputs changed), or None."""
    if not path.exists():
        return "missing"
    meta = _read_meta(path)
    if meta is None:
        return "not a readable knowledge base"
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        return f"schema version {meta.get('schema_version')} is not {SCHEMA_VERSION}"
    inputs = [Path(p) for p in json.loads(meta.get("inputs", "[]"))]
    existing = [p for p in inputs if p.exists()]
    if not existing or input_hash(guide_files(existing), root=PROJECT_ROOT) != meta.get("input_hash"):
        return "guides changed since the last build"
    return None


def ensure_built(path: Path) -> BuildReport | None:
    """Build `path` when missing or stale; return the report, or None when it was current."""
    reason = staleness(path)
    if reason is None:
        return None
    inputs = [GUIDES_DIR]
    meta = _read_meta(path) if path.exists() else None
    if meta:
        recorded = [Path(p) for p in json.loads(meta.get("inputs", "[]"))]
        inputs = [p for p in recorded if p.exists()] or inputs
    log.info("building knowledge base at %s (%s)", path, reason)
    try:
        return build(inputs, path, root=PROJECT_ROOT)
    except OSError as exc:
        raise KnowledgeBaseError(f"cannot build the knowledge base at {path}: {exc}") from exc


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
                self.entries[row["id"]] = _entry(row, sources.get(row["id"], []))
            self.signatures = [
                SignatureRow(r["id"], r["entry_id"], r["kind"], r["text"], r["norm"])
                for r in conn.execute("SELECT id, entry_id, kind, text, norm FROM signatures ORDER BY id")
            ]
            self.models = {
                r["name"]: ModelInfo(r["name"], r["status"], r["date"], r["replacement"], r["entry_id"])
                for r in conn.execute("SELECT * FROM models")
            }
        except sqlite3.Error as exc:
            raise KnowledgeBaseError(f"{path} is not a usable knowledge base: {exc}") from exc
        self.signature_by_id = {s.id: s for s in self.signatures}

    def _conn(self) -> sqlite3.Connection:
        """A read-only connection for the calling thread."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
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

    def version(self) -> str:
        return f"{self.meta.get('input_hash', '?')[:12]} built {self.meta.get('built_at', '?')}"


def _entry(row: sqlite3.Row, sources: list[SourceRef]) -> Entry:
    return Entry(
        id=row["id"],
        title=row["title"],
        http_status=row["http_status"],
        status=row["status"],
        summary=row["summary"],
        causes=json.loads(row["causes"]),
        fix=json.loads(row["fix"]),
        diagnosis=json.loads(row["diagnosis"]),
        example=row["example"] or "",
        example_lang=row["example_lang"] or "",
        notes=row["notes"] or "",
        docs=json.loads(row["docs"]),
        retryable=row["retryable"],
        related=json.loads(row["related"] or "[]"),
        specialises=row["specialises"],
        reviewed=bool(row["reviewed"]),
        sources=sources,
    )


def open_kb(path: Path, *, auto_build: bool = True) -> KnowledgeBase:
    """Open the knowledge base at `path`, building it first when missing or stale."""
    if auto_build:
        ensure_built(path)
    elif not path.exists():
        raise KnowledgeBaseError(f"no knowledge base at {path}: run 'gemini-kb ingest'")
    return KnowledgeBase(path)
