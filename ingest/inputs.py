"""What a build reads, and how its inputs are named and hashed: light enough for the start-up check
(`ingest.bootstrap.staleness`) to use without importing the build itself."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ingest.article_text import ARTICLE_SUFFIXES
from kb.schema import SCHEMA_VERSION


@dataclass(frozen=True)
class Problem:
    """One validation problem, located in a file."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class GuideError(Exception):
    """Raised when guides cannot be built; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def display_path(path: Path, root: Path | None) -> str:
    """The path as shown in messages and stored as provenance: relative to root when inside it."""
    if root is not None:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)


def source_files(paths: list[Path]) -> list[Path]:
    """Expand folders into their guides and articles (`.md`, `.html`, `.htm`, `.txt`, `.ipynb`, `.pdf`), sorted."""
    found: dict[Path, Path] = {}  # by resolved path: a file named alone and inside a named folder counts once
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in ARTICLE_SUFFIXES):
                found.setdefault(child.resolve(), child)
        else:
            found.setdefault(path.resolve(), path)
    return list(found.values())


def input_hash(files: list[Path], *, root: Path | None = None) -> str:
    """A stable hash of the inputs' names and bytes, and of the schema version."""
    digest = hashlib.sha256(f"schema:{SCHEMA_VERSION}\n".encode())
    for path in sorted(files, key=lambda p: display_path(p, root)):
        digest.update(f"{display_path(path, root)}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
