"""The knowledge base's records and file format, in one place: the guide parser, the build, the
store and the renderers all use these dataclasses; the SQL columns and rows are derived from them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sqlite3
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA_VERSION = 3  # 3: models.extra (row fields beyond the fixed ones), columns derived from Entry


@dataclass(frozen=True)
class SourceRef:
    """Where an entry's advice comes from."""

    kind: str
    title: str
    path: str
    section: str = ""
    advice: dict[str, list] = field(default_factory=dict)  # summary, causes, diagnosis, fix, code; faq as {q, a}


# `stored=False`: not a column of `entries` (held in other tables or only at build time).
_NOT_STORED = {"stored": False}


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One error family: what a guide declares, what the build stores and what the bot renders."""

    id: str
    title: str
    http_status: int | None
    status: str | None  # the gRPC status name, e.g. RESOURCE_EXHAUSTED
    summary: str
    causes: list[str]
    fix: list[str]
    diagnosis: list[str]
    example: str = ""
    example_lang: str = ""
    notes: str = ""
    docs: list[str] = field(default_factory=list)
    retryable: str = "unknown"
    related: list[str] = field(default_factory=list)
    specialises: str | None = None
    reviewed: bool = True  # False for entries an article ingest created, until someone writes a guide
    sources: list[SourceRef] = field(default_factory=list, metadata=_NOT_STORED)

    def as_dict(self) -> dict[str, object]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(Entry)}
        data["sources"] = [dict(s.__dict__) for s in self.sources]
        return data


@dataclass(frozen=True)
class ModelInfo:
    """A row of a guide's `models:` lifecycle table. Row fields beyond the fixed ones (a source, a
    note) are kept in `extra`, so the table can grow without a schema change."""

    name: str
    status: str  # retired | deprecated | limited | active
    date: str | None = None  # shutdown date (ISO)
    replacement: str | None = None
    entry_id: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def source(self) -> str | None:
        """Where the status and date were read, and when."""
        return str(self.extra["source"]).strip() if self.extra.get("source") else None

    def shut_down(self, today: str) -> bool:
        """Retired, or deprecated with a shutdown date that has passed (ISO dates compare as text)."""
        if self.status == "active":
            return False
        return self.status == "retired" or bool(self.date and self.date <= today)

    def as_dict(self) -> dict[str, object]:
        return {**self.extra, **{k: v for k, v in dataclasses.asdict(self).items() if k != "extra"}}


MODEL_FIELDS = ("name", "status", "date", "replacement", "entry_id")


def _is_list(tp: object) -> bool:
    return typing.get_origin(tp) is list


def _sql_type(tp: object) -> type:
    if isinstance(tp, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if tp is bool or tp is int:
        return int
    return str


@functools.cache
def _hints() -> dict[str, object]:
    return typing.get_type_hints(Entry)


def _entry_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(Entry) if f.metadata.get("stored", True)]


def entry_columns() -> dict[str, type]:
    """The `entries` table's columns, from `Entry` (lists are stored as JSON text)."""
    hints = _hints()
    return {f.name: _sql_type(hints[f.name]) for f in _entry_fields()}


def entry_row(entry: Entry) -> dict[str, object]:
    """An `entries` row for `entry` (also for a subclass such as the parsed guide)."""
    hints = _hints()
    row: dict[str, object] = {}
    for f in _entry_fields():
        value = getattr(entry, f.name)
        if _is_list(hints[f.name]):
            value = json.dumps(value)
        elif hints[f.name] is bool:
            value = int(value)
        row[f.name] = value
    return row


def entry_from_row(row: sqlite3.Row, sources: list[SourceRef]) -> Entry:
    """The `Entry` stored in `row`."""
    hints = _hints()
    values: dict[str, object] = {}
    for f in _entry_fields():
        value = row[f.name]
        if _is_list(hints[f.name]):
            value = json.loads(value or "[]")
        elif hints[f.name] is bool:
            value = bool(value)
        elif hints[f.name] is str and value is None:
            value = ""
        values[f.name] = value
    return Entry(**values, sources=sources)


def model_row(model: ModelInfo, entry_id: str) -> dict[str, object]:
    """A `models` row: the fixed fields as columns, the rest as JSON in `extra`."""
    return {
        "name": model.name.lower(),
        "status": model.status,
        "date": model.date,
        "replacement": model.replacement,
        "entry_id": entry_id,
        "extra": json.dumps(model.extra, ensure_ascii=False, default=str),
    }


def model_from_row(row: sqlite3.Row) -> ModelInfo:
    extra = json.loads(row["extra"] or "{}")
    return ModelInfo(*(row[k] for k in MODEL_FIELDS), extra=extra if isinstance(extra, dict) else {})


def connect_ro(path: Path, **kwargs: object) -> sqlite3.Connection:
    """A read-only connection; the path is made a proper file URI (a `#` or `?` in it stays part of the name)."""
    return sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True, **kwargs)  # type: ignore[arg-type]
