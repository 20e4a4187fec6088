"""The one start-up step that decides whether the knowledge base must be built: the CLI, `serve` and
the tests call it; `kb.store` itself only ever reads."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.inputs import GuideError, input_hash, source_files
from kb.schema import SCHEMA_VERSION, connect_ro
from kb.settings import GUIDES_DIR
from kb.store import PROJECT_ROOT, KnowledgeBase, KnowledgeBaseError, inputs_of, open_kb, read_meta

if TYPE_CHECKING:
    from ingest.build import BuildReport

log = logging.getLogger(__name__)


def staleness(path: Path) -> str | None:
    """Why `path` needs a rebuild (missing, corrupt, old schema, inputs changed), or None."""
    if not path.exists():
        return "missing"
    meta = read_meta(path)
    if meta is None:
        return "not a readable knowledge base"
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        return f"schema version {meta.get('schema_version')} is not {SCHEMA_VERSION}"
    existing = [p for p in inputs_of(meta) if p.exists()]
    files = [f for f in source_files(existing) if f.exists()]
    root = Path(meta["input_root"]) if meta.get("input_root") else None
    if not existing or input_hash(files, root=root) != meta.get("input_hash"):
        return "guides changed since the last build"
    return None


def _tables(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    try:
        conn = connect_ro(path)
        try:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error:
        return set()  # not SQLite at all, or damaged: nothing there worth keeping


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
    meta = read_meta(path) if path.exists() else None
    tables = _tables(path)
    if tables and not tables & {"entries", "signatures"} and "input_hash" not in (meta or {}):
        raise KnowledgeBaseError(
            f"{path} is an SQLite database but not a gemini-kb knowledge base (tables: "
            f"{', '.join(sorted(tables)[:5])}); not overwriting it: point GEMINI_KB_DB (or --db) at another file"
        )
    inputs = [p for p in inputs_of(meta) if p.exists()] or [GUIDES_DIR]
    from ingest.build import build  # only when a build is due: the usual start-up only hashes the inputs

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


def open_or_build(path: Path) -> KnowledgeBase:
    """The start-up step: build `path` when missing or stale, open it, and rebuild once if it turns out damaged."""
    ensure_built(path)
    try:
        return open_kb(path)
    except KnowledgeBaseError as exc:
        log.warning("%s; rebuilding it", exc)
        ensure_built(path, reason="damaged")
    return open_kb(path)
