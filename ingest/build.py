"""Build the knowledge-base SQLite file from guides, atomically.

The new database is written beside the target under a temporary name, checked,
and renamed over the old one: a failed build leaves the previous file intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from ingest.guides import Guide, GuideError, display_path, guide_files, load_guides
from kb.normalize import normalize

SCHEMA_VERSION = 2


@dataclass(frozen=True)
class BuildReport:
    """What a build produced."""

    path: str
    entries: int
    signatures: int
    sources: int
    models: int
    input_hash: str
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def input_hash(files: list[Path], *, root: Path | None = None) -> str:
    """A stable hash of the inputs' names and bytes, and of the schema version."""
    digest = hashlib.sha256(f"schema:{SCHEMA_VERSION}\n".encode())
    for path in sorted(files, key=lambda p: display_path(p, root)):
        digest.update(f"{display_path(path, root)}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _source_id(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:16]


def _create_schema(db: sqlite_utils.Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["entries"].create(
        {
            "id": str,
            "title": str,
            "http_status": int,
            "status": str,
            "summary": str,
            "causes": str,
            "fix": str,
            "diagnosis": str,
            "example": str,
            "example_lang": str,
            "notes": str,
            "docs": str,
            "retryable": str,
            "related": str,
            "specialises": str,
            "reviewed": int,
        },
        pk="id",
    )
    db["signatures"].create(
        {"id": int, "entry_id": str, "kind": str, "text": str, "norm": str, "source_id": str},
        pk="id",
        foreign_keys=[("entry_id", "entries", "id")],
    )
    db["sources"].create({"id": str, "kind": str, "title": str, "path": str, "sha256": str}, pk="id")
    db["entry_sources"].create(
        {"entry_id": str, "source_id": str, "section": str, "advice": str},
        pk=("entry_id", "source_id", "section"),
        foreign_keys=[("entry_id", "entries", "id"), ("source_id", "sources", "id")],
    )
    db["models"].create(
        {"name": str, "status": str, "date": str, "replacement": str, "entry_id": str},
        pk="name",
        foreign_keys=[("entry_id", "entries", "id")],
    )
    db["signatures"].create_index(["entry_id"])
    db["signatures"].create_index(["kind", "text"])


def _entry_row(guide: Guide) -> dict[str, object]:
    return {
        "id": guide.id,
        "title": guide.title,
        "http_status": guide.http_status,
        "status": guide.status,
        "summary": guide.summary,
        "causes": json.dumps(guide.causes),
        "fix": json.dumps(guide.fix),
        "diagnosis": json.dumps(guide.diagnosis),
        "example": guide.example,
        "example_lang": guide.example_lang,
        "notes": guide.notes,
        "docs": json.dumps(guide.docs),
        "retryable": guide.retryable,
        "related": json.dumps(guide.related),
        "specialises": guide.specialises,
        "reviewed": 1,
    }


def _write(
    db: sqlite_utils.Database,
    guides: list[Guide],
    inputs: list[Path],
    source_hashes: dict[str, str],
    digest: str,
) -> None:
    _create_schema(db)
    entries = [_entry_row(g) for g in guides]
    sources, links, signatures, models = [], [], [], []
    for guide in guides:
        sid = _source_id(guide.path)
        sources.append(
            {
                "id": sid,
                "kind": "guide",
                "title": guide.title,
                "path": guide.path,
                "sha256": source_hashes.get(guide.path, ""),
            }
        )
        links.append({"entry_id": guide.id, "source_id": sid, "section": "", "advice": "{}"})
        prose = "\n".join([guide.title, guide.summary, *guide.causes])
        rows = [(s.kind, s.text) for s in guide.signatures] + [("prose", prose)]
        for kind, text in rows:
            signatures.append(
                {"entry_id": guide.id, "kind": kind, "text": text, "norm": normalize(text), "source_id": sid}
            )
        for m in guide.models:
            models.append(
                {
                    "name": m.name.lower(),
                    "status": m.status,
                    "date": m.date,
                    "replacement": m.replacement,
                    "entry_id": guide.id,
                }
            )
    for i, row in enumerate(signatures, start=1):
        row["id"] = i
    db["entries"].insert_all(entries)
    db["sources"].insert_all(sources)
    db["entry_sources"].insert_all(links)
    db["signatures"].insert_all(signatures)
    if models:
        db["models"].insert_all(models, replace=True)
    # Populated once after loading: no triggers, because the file is read-only at run time.
    db["signatures"].enable_fts(["norm"], tokenize="unicode61")
    db["meta"].insert_all(
        [
            {"key": "schema_version", "value": str(SCHEMA_VERSION)},
            {"key": "input_hash", "value": digest},
            {"key": "inputs", "value": json.dumps([str(p.resolve()) for p in inputs])},
            {"key": "built_at", "value": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        ]
    )


def _validate(path: Path, expected_entries: int) -> None:
    """Open the new file as a reader would and check it is whole."""
    conn = sqlite3.connect(path)
    try:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise RuntimeError("integrity check failed")
        count = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        if count != expected_entries:
            raise RuntimeError(f"expected {expected_entries} entries, found {count}")
        conn.execute("SELECT rowid FROM signatures_fts WHERE signatures_fts MATCH '\"error\"' LIMIT 1").fetchall()
    finally:
        conn.close()


def write_database(
    guides: list[Guide],
    db_path: Path,
    *,
    digest: str,
    inputs: list[Path],
    source_hashes: dict[str, str],
    before_rename: Callable[[Path], None] | None = None,
) -> None:
    """Write parsed guides to a new file beside `db_path`, check it, and rename it into place."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{db_path.name}.", suffix=".tmp", dir=db_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        db = sqlite_utils.Database(tmp, recreate=True)
        try:
            with db.conn:
                _write(db, guides, inputs, source_hashes, digest)
            db.execute("VACUUM")
        finally:
            db.close()
        _validate(tmp, len(guides))
        if before_rename is not None:
            before_rename(tmp)
        os.replace(tmp, db_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def build(
    inputs: list[Path],
    db_path: Path,
    *,
    root: Path | None = None,
    before_rename: Callable[[Path], None] | None = None,
) -> BuildReport:
    """Build `db_path` from guide files and folders; raise GuideError on bad guides.

    `before_rename` is called with the finished temporary file (tests use it to
    simulate a failure half-way).
    """
    started = time.perf_counter()
    files = guide_files(inputs)
    guides, problems = load_guides(inputs, root=root)
    if problems:
        raise GuideError(problems)
    if not guides:
        raise GuideError([])
    hashes = {display_path(f, root): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    digest = input_hash(files, root=root)
    write_database(
        guides,
        db_path,
        digest=digest,
        inputs=inputs,
        source_hashes=hashes,
        before_rename=before_rename,
    )
    conn = sqlite3.connect(db_path)
    try:
        counts = [
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("entries", "signatures", "sources", "models")
        ]
    finally:
        conn.close()
    return BuildReport(str(db_path), *counts, input_hash=digest, seconds=time.perf_counter() - started)
