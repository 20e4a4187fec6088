"""The one start-up step that decides whether the knowledge base must be built: the CLI, `serve` and
the tests call it; `kb.store` itself only ever reads."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.inputs import GuideError, input_hash, source_files
from kb.schema import SCHEMA_VERSION
from kb.settings import GUIDES_DIR
from kb.store import (
    PROJECT_ROOT,
    KnowledgeBase,
    KnowledgeBaseError,
    NotAKnowledgeBase,
    inputs_of,
    open_kb,
    read_meta,
)

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


def ensure_built(path: Path, *, reason: str | None = None) -> BuildReport | None:
    """Build `path` when missing or stale, or because of `reason` (e.g. damaged); return the report, or None
    when the file was kept. Only a missing file or a knowledge base this program built is ever written
    (`ingest.build.refuse_foreign`); when the build fails and the old file is a knowledge base of this schema
    that is merely stale, it is kept (a warning). Builds of one file take turns (`ingest.build.kb_lock`)."""
    forced = reason is not None
    try:
        reason = reason or staleness(path)
    except (ValueError, TypeError, OSError) as exc:  # a meta table with garbage in it
        reason = f"unreadable build record ({exc})"
    if reason is None:
        return None
    from ingest.build import build, kb_lock  # only when a build is due: the usual start-up only hashes the inputs

    meta = read_meta(path)
    inputs = [p for p in inputs_of(meta) if p.exists()] or [GUIDES_DIR]
    try:
        with kb_lock(path):  # another process may be building it: wait, then decide again on what it left
            if not forced and (reason := staleness(path) or "") == "":
                return None
            log.info("building knowledge base at %s (%s)", path, reason)
            return build(inputs, path, root=PROJECT_ROOT)
    except NotAKnowledgeBase:
        raise
    except (OSError, sqlite3.Error, RuntimeError, GuideError, KnowledgeBaseError) as exc:
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
