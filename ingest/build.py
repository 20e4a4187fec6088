"""Build the knowledge-base SQLite file from guides, atomically.

The new database is written beside the target under a temporary name, checked,
and renamed over the old one: a failed build leaves the previous file intact.
Only a path that does not exist, or that holds a knowledge base this program built (its `meta` table
says so), is ever written; builds of one path take turns (`kb_lock`, an flock on a side file).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from ingest.articles import is_article, parse_article
from ingest.attach import ArticlePlan, plan_article
from ingest.guides import Guide, load_guides
from ingest.inputs import GuideError, display_path, input_hash, source_files
from ingest.proposals import ApprovedSignature, is_signature_file, load_signatures
from kb.normalize import PLACEHOLDER, normalize
from kb.schema import SCHEMA_VERSION, connect_ro, entry_columns, entry_row, model_row
from kb.store import KnowledgeBase, KnowledgeBaseError, NotAKnowledgeBase, read_meta, regular_file

LOCK_WAIT_S = 600.0  # another build of the same file: wait this long for it, then give up clearly
_held = threading.local()  # the lock files this thread holds (re-entrant: the CLI holds it around a build)


def refuse_foreign(path: Path) -> None:
    """Raise NotAKnowledgeBase unless `path` does not exist or holds a knowledge base this program built."""
    if not os.path.lexists(path):
        return
    hint = "not overwriting it: point GEMINI_KB_DB (or --db) at another file"
    if not regular_file(path):
        raise NotAKnowledgeBase(f"{path} is not a regular file (a device, FIFO or folder); {hint}")
    meta = read_meta(path)
    if meta and "input_hash" in meta and "schema_version" in meta:
        return
    if path.stat().st_size == 0:
        raise NotAKnowledgeBase(f"{path} is an empty file, not a gemini-kb knowledge base; {hint}")
    tables = _tables(path)
    if tables:
        raise NotAKnowledgeBase(
            f"{path} is an SQLite database but not a gemini-kb knowledge base (tables: "
            f"{', '.join(sorted(tables)[:5])}); {hint}"
        )
    raise NotAKnowledgeBase(f"{path} is not a gemini-kb knowledge base (no SQLite build record); {hint}")


def _tables(path: Path) -> set[str]:
    try:
        conn = connect_ro(path)
        try:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error:
        return set()


@contextmanager
def kb_lock(path: Path, *, wait: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the build lock of `path` (an flock on `<path>.lock`): concurrent builds of one file, in any
    process or thread, take turns, so each sees what the one before it wrote. Re-entrant in a thread."""
    refuse_foreign(path)  # never create a lock file beside a device or someone else's file
    lock_path = path.with_name(path.name + ".lock")
    held: set[str] = getattr(_held, "paths", set())
    _held.paths = held
    key = str(lock_path.absolute())
    if key in held:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise KnowledgeBaseError(
                        f"another gemini-kb build of {path} held {lock_path.name} for {wait:g} s; try again later"
                    ) from None
                time.sleep(0.05)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


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
    articles: int = 0
    warnings: list[str] = field(default_factory=list)  # articles that could not be read, and why
    approved: int = 0  # signatures added from approved Slack proposals

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _source_id(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:16]


def _create_schema(db: sqlite_utils.Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["entries"].create(entry_columns(), pk="id")
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
        {"name": str, "status": str, "date": str, "replacement": str, "entry_id": str, "extra": str},
        pk="name",
        foreign_keys=[("entry_id", "entries", "id")],
    )
    db["signatures"].create_index(["entry_id"])
    db["signatures"].create_index(["kind", "text"])


def _write(
    db: sqlite_utils.Database,
    guides: list[Guide],
    inputs: list[Path],
    source_hashes: dict[str, str],
    digest: str,
    plans: list[ArticlePlan],
    root: Path | None,
    approved: list[ApprovedSignature],
) -> None:
    _create_schema(db)
    entries, sources, signatures, models = [], [], [], []
    links: dict[tuple[str, str, str], dict] = {}

    def add_entry(guide: Guide, sid: str) -> None:
        entries.append(entry_row(guide))
        prose = "\n".join([guide.title, guide.summary, *guide.causes])
        for kind, text in [(s.kind, s.text) for s in guide.signatures] + [("prose", prose)]:
            signatures.append(
                {"entry_id": guide.id, "kind": kind, "text": text, "norm": normalize(text), "source_id": sid}
            )
        models.extend(model_row(m, guide.id) for m in guide.models)

    def link(entry_id: str, sid: str, section: str, advice: dict) -> None:
        row = links.setdefault((entry_id, sid, section), {})
        for kind, items in advice.items():
            row.setdefault(kind, []).extend(i for i in items if i not in row.get(kind, []))

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
        link(guide.id, sid, "", {})
        add_entry(guide, sid)
    for plan in plans:
        sid = plan.source_id
        sources.append(
            {
                "id": sid,
                "kind": "article",
                "title": plan.article.title,
                "path": plan.display,
                "sha256": plan.article.sha256,
            }
        )
        for guide in plan.new_entries:
            add_entry(guide, sid)
        for placement in plan.attached:
            link(placement.entry_id or "", sid, placement.unit.label, placement.unit.advice.as_dict())
        for sig in plan.signatures:
            if sig.outcome == "new" and sig.entry_id:
                signatures.append(
                    {
                        "entry_id": sig.entry_id,
                        "kind": "messages",
                        "text": sig.text,
                        "norm": normalize(sig.text),
                        "source_id": sid,
                    }
                )
    for proposal in approved:
        # Provenance is the channel and the day; the source's sha256 is that of the error lines alone.
        sid = _source_id(f"slack-proposal:{proposal.id}")
        sources.append(
            {
                "id": sid,
                "kind": "slack",
                "title": f"Slack proposal {proposal.id} (approved)",
                "path": proposal.provenance,
                "sha256": hashlib.sha256(proposal.text.encode()).hexdigest(),
            }
        )
        for line in signature_lines(proposal.text):
            signatures.append(
                {
                    "entry_id": proposal.entry_id,
                    "kind": "messages",
                    "text": line,
                    "norm": normalize(line),
                    "source_id": sid,
                }
            )
    for i, row in enumerate(signatures, start=1):
        row["id"] = i
    db["entries"].insert_all(entries)
    db["sources"].insert_all(sources)
    db["entry_sources"].insert_all(
        {"entry_id": e, "source_id": sid, "section": section, "advice": json.dumps(advice, ensure_ascii=False)}
        for (e, sid, section), advice in links.items()
    )
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
            {"key": "input_root", "value": str(root.resolve()) if root is not None else ""},
            {"key": "built_at", "value": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        ]
    )


MIN_SIGNATURE_WORDS = 4  # a shorter line (`"code": 429`) says too little to tell families apart


def signature_lines(text: str) -> list[str]:
    """The lines of an approved proposal that are specific enough to be signatures of their own."""
    lines = []
    for line in text.split("\n"):
        words = [w for w in normalize(line).split() if w != PLACEHOLDER]
        if len(words) >= MIN_SIGNATURE_WORDS and line not in lines:
            lines.append(line)
    return lines


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
    plans: list[ArticlePlan] | None = None,
    before_rename: Callable[[Path], None] | None = None,
    root: Path | None = None,
    approved: list[ApprovedSignature] | None = None,
) -> None:
    """Write parsed guides (and what articles add) to a new file beside `db_path`, check it, rename it into place."""
    refuse_foreign(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{db_path.name}.", suffix=".tmp", dir=db_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    plans = plans or []
    try:
        db = sqlite_utils.Database(tmp, recreate=True)
        try:
            with db.conn:
                _write(db, guides, inputs, source_hashes, digest, plans, root, approved or [])
            db.execute("VACUUM")
        finally:
            db.close()
        _validate(tmp, len(guides) + sum(len(p.new_entries) for p in plans))
        if before_rename is not None:
            before_rename(tmp)
        refuse_foreign(db_path)  # still ours (or still absent) at the moment it is replaced
        os.replace(tmp, db_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class ArticlePlans:
    """What the articles among a build's inputs would add, and the ones that could not be read."""

    plans: list[ArticlePlan]
    warnings: list[str]


def load_inputs(inputs: list[Path], *, root: Path | None = None) -> tuple[list[Guide], list[Path], list[Path]]:
    """Parse the guides among `inputs`; return them, the article files, and every input file."""
    files = source_files(inputs)
    articles = [f for f in files if f.exists() and not is_signature_file(f) and is_article(f)]
    guide_paths = [f for f in files if f not in articles and not is_signature_file(f)]
    if not guide_paths:
        raise GuideError([])
    guides, problems = load_guides(guide_paths, root=root)
    if problems:
        raise GuideError(problems)
    if not guides:
        raise GuideError([])
    return guides, articles, files


def plan_articles(guides: list[Guide], articles: list[Path], *, root: Path | None = None) -> ArticlePlans:
    """Match every article against a knowledge base of `guides` alone and say what each would add."""
    if not articles:
        return ArticlePlans([], [])
    plans, warnings = [], []
    seen: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="gemini-kb-plan-") as tmp:
        base = Path(tmp) / "guides.sqlite"
        write_database(guides, base, digest="plan", inputs=[], source_hashes={})
        kb = KnowledgeBase(base)
        taken = set(kb.entries)
        for path in articles:
            display = display_path(path, root)
            try:
                article = parse_article(path)
            except (OSError, ValueError) as exc:
                warnings.append(f"{display}: not read: {exc}")
                continue
            if article.sha256 in seen:
                warnings.append(f"{display}: same content as {seen[article.sha256]}; ingested once")
                continue
            seen[article.sha256] = display
            plans.append(plan_article(article, kb, display=display, taken=taken))
            if not article.units:
                warnings.append(f"{display}: no sections with advice found")
        kb.close()
    return ArticlePlans(plans, warnings)


def build(
    inputs: list[Path],
    db_path: Path,
    *,
    root: Path | None = None,
    before_rename: Callable[[Path], None] | None = None,
) -> BuildReport:
    """Build `db_path` from guide and article files and folders; raise GuideError on bad guides.

    Articles add to the families they match; an unreadable article is a warning, not a failure.
    `before_rename` is called with the finished temporary file (tests use it to simulate a failure half-way).
    """
    with kb_lock(db_path):
        try:
            return _build(inputs, db_path, root=root, before_rename=before_rename)
        except (OSError, sqlite3.Error) as exc:  # a full disk, a file size limit, a read-only folder
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise KnowledgeBaseError(
                f"cannot write the knowledge base at {db_path}: {detail}; the previous one is unchanged"
            ) from exc


def _build(
    inputs: list[Path],
    db_path: Path,
    *,
    root: Path | None,
    before_rename: Callable[[Path], None] | None,
) -> BuildReport:
    started = time.perf_counter()
    guides, articles, files = load_inputs(inputs, root=root)
    planned = plan_articles(guides, articles, root=root)
    approved, approved_warnings = _approved_signatures(files, guides, planned.plans, root)
    readable = [f for f in files if f.exists()]
    hashes = {display_path(f, root): hashlib.sha256(f.read_bytes()).hexdigest() for f in readable}
    digest = input_hash(readable, root=root)
    write_database(
        guides,
        db_path,
        digest=digest,
        inputs=inputs,
        source_hashes=hashes,
        plans=planned.plans,
        before_rename=before_rename,
        root=root,
        approved=approved,
    )
    conn = sqlite3.connect(db_path)
    try:
        counts = [
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("entries", "signatures", "sources", "models")
        ]
    finally:
        conn.close()
    return BuildReport(
        str(db_path),
        *counts,
        input_hash=digest,
        seconds=time.perf_counter() - started,
        articles=len(planned.plans),
        warnings=planned.warnings + approved_warnings,
        approved=len(approved),
    )


def _approved_signatures(
    files: list[Path], guides: list[Guide], plans: list[ArticlePlan], root: Path | None
) -> tuple[list[ApprovedSignature], list[str]]:
    """The approved Slack proposals among the inputs whose family exists; the others are warnings."""
    families = {g.id for g in guides} | {g.id for p in plans for g in p.new_entries}
    found: list[ApprovedSignature] = []
    warnings: list[str] = []
    for path in (f for f in files if is_signature_file(f) and f.exists()):
        display = display_path(path, root)
        signatures, problems = load_signatures(path, display)
        warnings += [f"{p}; left out" for p in problems]
        for sig in signatures:
            if sig.entry_id in families:
                found.append(sig)
            else:
                warnings.append(f"{display}: proposal {sig.id} names no family {sig.entry_id!r}; left out")
    return found, warnings
