"""Read access to the knowledge-base file, built on first use when missing or stale."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz, process

from ingest.build import SCHEMA_VERSION, BuildReport, build, input_hash, source_files
from ingest.guides import GuideError
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
    advice: dict[str, list] = field(default_factory=dict)  # summary, causes, diagnosis, fix, code; faq as {q, a}


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


def _inputs_of(meta: dict[str, str] | None) -> list[Path]:
    try:
        return [Path(p) for p in json.loads((meta or {}).get("inputs", "[]"))]
    except (ValueError, TypeError):
        return []


def recorded_inputs(path: Path) -> list[Path]:
    """The guide and article paths the knowledge base at `path` was built from (none if unreadable)."""
    return _inputs_of(_read_meta(path)) if path.exists() else []


def staleness(path: Path) -> str | None:
    """Why `path` needs a rebuild (missing, corrupt, old schema, inputs changed), or None."""
    if not path.exists():
        return "missing"
    meta = _read_meta(path)
    if meta is None:
        return "not a readable knowledge base"
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        return f"schema version {meta.get('schema_version')} is not {SCHEMA_VERSION}"
    existing = [p for p in _inputs_of(meta) if p.exists()]
    files = [f for f in source_files(existing) if f.exists()]
    if not existing or input_hash(files, root=PROJECT_ROOT) != meta.get("input_hash"):
        return "guides changed since the last build"
    return None


def ensure_built(path: Path, *, reason: str | None = None) -> BuildReport | None:
    """Build `path` when missing or stale, or because of `reason` (e.g. damaged); return the report, or None
    when the file was kept. An SQLite file that is not a knowledge base is never overwritten; when the build
    fails and the old file is a knowledge base of this schema that is merely stale, it is kept (a warning)."""
    forced = reason is not None
    try:
        reason = reason or staleness(path)
    except (ValueError, TypeError, OSError) as exc:  # a meta table with garbage in it
        reason = f"unreadable build record ({exc})"
    if reason is None:
        return None
    meta = _read_meta(path) if path.exists() else None
    tables: set[str] = set()
    if path.is_file():
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            finally:
                conn.close()
        except sqlite3.Error:
            pass  # not SQLite at all, or damaged: nothing there worth keeping
    if tables and not tables & {"entries", "signatures"} and "input_hash" not in (meta or {}):
        raise KnowledgeBaseError(
            f"{path} is an SQLite database but not a gemini-kb knowledge base (tables: "
            f"{', '.join(sorted(tables)[:5])}); not overwriting it: point GEMINI_KB_DB (or --db) at another file"
        )
    inputs = [p for p in _inputs_of(meta) if p.exists()] or [GUIDES_DIR]
    log.info("building knowledge base at %s (%s)", path, reason)
    try:
        return build(inputs, path, root=PROJECT_ROOT)
    except (OSError, sqlite3.Error, RuntimeError, GuideError) as exc:
        if isinstance(exc, GuideError):
            problem = str(exc) or "no guides in " + ", ".join(str(p) for p in inputs)
        else:
            problem = f"{exc}; set GEMINI_KB_DB (or --db) to a writable file, or run 'gemini-kb ingest' where it is"
        if not forced and meta and meta.get("schema_version") == str(SCHEMA_VERSION):
            log.warning(
                "knowledge base at %s is stale (%s) but cannot be rebuilt: %s; using it as it is", path, reason, problem
            )
            return None
        raise KnowledgeBaseError(f"cannot build the knowledge base at {path} ({reason}): {problem}") from exc


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

    def close(self) -> None:
        """Close the calling thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

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
    """Open the knowledge base at `path`, building it first when missing or stale, and once more when it
    turns out damaged (SQLite's quick_check runs at every open: about a millisecond for the shipped file)."""

    def checked() -> KnowledgeBase:
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                check = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            finally:
                conn.close()
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {check}")
            return KnowledgeBase(path)
        except (sqlite3.Error, KnowledgeBaseError, ValueError, KeyError, TypeError) as exc:
            cause = exc.__cause__ or exc
            detail = "".join(c if c.isprintable() else "?" for c in str(cause))[:120]
            raise KnowledgeBaseError(f"{path} is not a usable knowledge base ({detail})") from exc

    if auto_build:
        ensure_built(path)
    elif not path.exists():
        raise KnowledgeBaseError(f"no knowledge base at {path}: run 'gemini-kb ingest'")
    try:
        return checked()
    except KnowledgeBaseError as exc:
        if not auto_build:
            raise KnowledgeBaseError(f"{exc}: rebuild it with 'gemini-kb ingest'") from exc
        log.warning("%s; rebuilding it", exc)
        ensure_built(path, reason="damaged")
    return checked()
