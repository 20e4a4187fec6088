"""Parse curated guides (Markdown with YAML front matter) into typed records.

Every problem is reported with the file and line it comes from, so that
`gemini-kb ingest --check` can print `path:line: message`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingest.front_matter import split_front_matter
from ingest.inputs import Problem, display_path
from kb.schema import Entry, ModelInfo

ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SIGNATURE_KINDS = ("messages", "reasons", "exceptions", "finish_reasons", "quota_ids")
RETRYABLE = ("yes", "no", "sometimes")
# retired = shut down; deprecated = shutdown announced (or date unknown); active = served;
# limited = still served but closed to new users or projects, no shutdown announced.
MODEL_STATUSES = ("retired", "deprecated", "limited", "active")
REQUIRED_FIELDS = ("id", "title", "http_status", "status", "retryable", "docs", "signatures")
OPTIONAL_FIELDS = ("related", "specialises", "models")
# heading -> (required, kind): "text" is prose, "list" is bullets or numbers, "code" a fence.
SECTIONS: dict[str, tuple[bool, str]] = {
    "summary": (True, "text"),
    "causes": (True, "list"),
    "fix": (True, "list"),
    "diagnosis": (True, "list"),
    "example": (False, "code"),
    "notes": (False, "text"),
}
ITEM_RE = re.compile(r"^(?:[-*]|\d+[.)])\s+(.*)$")
FENCE_RE = re.compile(r"^(```|~~~)\s*([\w+-]*)\s*$")


@dataclass(frozen=True)
class Signature:
    """A fragment people paste, of one kind, with the line that declared it."""

    kind: str
    text: str
    line: int


ModelRecord = ModelInfo  # a row of the `models:` table; one type for the parser, the build and the store


@dataclass(frozen=True, kw_only=True)
class Guide(Entry):
    """One curated guide, parsed: the entry it declares plus where it came from and what the matcher needs."""

    path: str
    signatures: list[Signature]
    field_lines: dict[str, int] = field(default_factory=dict)
    models: list[ModelInfo] = field(default_factory=list)


def _node_lines(text: str, first_line: int) -> dict[str, int]:
    """Map each top-level key and each `signatures` kind to its line number."""
    lines: dict[str, int] = {}
    node = yaml.compose(text)
    if not isinstance(node, yaml.MappingNode):
        return lines
    for key, value in node.value:
        lines[str(key.value)] = key.start_mark.line + first_line
        if key.value == "signatures" and isinstance(value, yaml.MappingNode):
            for skey, svalue in value.value:
                lines[f"signatures.{skey.value}"] = skey.start_mark.line + first_line
                if isinstance(svalue, yaml.SequenceNode):
                    for j, item in enumerate(svalue.value):
                        lines[f"signatures.{skey.value}[{j}]"] = item.start_mark.line + first_line
    return lines


def _parse_sections(
    body: list[str], first_line: int, path: str, problems: list[Problem]
) -> dict[str, tuple[int, list[str]]]:
    """Split the body into `## Heading` sections: name -> (line, raw lines)."""
    sections: dict[str, tuple[int, list[str]]] = {}
    current: str | None = None
    in_fence = False
    for offset, line in enumerate(body):
        lineno = first_line + offset
        if FENCE_RE.match(line.strip()):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            name = line[3:].strip().lower()
            if name not in SECTIONS:
                problems.append(Problem(path, lineno, f"unknown section '{line[3:].strip()}'"))
                current = None
                continue
            if name in sections:
                problems.append(Problem(path, lineno, f"section '{name}' appears twice"))
            sections[name] = (lineno, [])
            current = name
            continue
        if current is not None:
            sections[current][1].append(line)
        elif line.strip() and not line.startswith("#"):
            problems.append(Problem(path, lineno, "text outside any '## ' section"))
    return sections


def _list_items(raw: list[str]) -> list[str]:
    """Bullets or numbered items; continuation lines and fenced code join their item."""
    items: list[str] = []
    in_fence = False
    for line in raw:
        stripped = line.strip()
        if FENCE_RE.match(stripped):
            in_fence = not in_fence
        match = None if in_fence or line.startswith((" ", "\t")) else ITEM_RE.match(stripped)
        if match and not FENCE_RE.match(stripped):
            items.append(match.group(1).strip())
        elif items and (stripped or in_fence):
            items[-1] += "\n" + line.rstrip()
    return [join_wrapped(item) for item in items if item.strip()]


LIST_MARK_RE = re.compile(r"^(?:[-*]|\d+[.)])\s+")


def join_wrapped(text: str) -> str:
    """Undo the hard wrapping of the source file: a prose line that continues the one before joins it with a
    space. Blank lines (paragraphs), list items, table rows and fenced code keep their line breaks."""
    out: list[str] = []
    in_fence = joinable = False
    for line in text.splitlines():
        stripped = line.strip()
        fence = bool(FENCE_RE.match(stripped))
        if fence or in_fence or not stripped or LIST_MARK_RE.match(stripped) or stripped.startswith("|"):
            out.append(line.rstrip())
            joinable = bool(stripped) and not (fence or in_fence or stripped.startswith("|"))
            in_fence = in_fence != fence
            continue
        if joinable and out:
            out[-1] += " " + stripped
        else:
            out.append(line.rstrip())
        joinable = True
    return "\n".join(out).strip()


def _code_block(raw: list[str]) -> tuple[str, str]:
    """The first fenced code block of a section: (language, code)."""
    lang, code, inside = "", [], False
    for line in raw:
        fence = FENCE_RE.match(line.strip())
        if fence and not inside:
            inside, lang = True, fence.group(2)
        elif fence and inside:
            break
        elif inside:
            code.append(line)
    return lang, "\n".join(code).rstrip()


def _text(raw: list[str]) -> str:
    return join_wrapped("\n".join(raw))


def _check_fields(meta: dict[str, Any], lines: dict[str, int], path: str) -> list[Problem]:
    problems: list[Problem] = []

    def at(key: str) -> int:
        return lines.get(key, 1)

    for key in meta:
        if key not in REQUIRED_FIELDS and key not in OPTIONAL_FIELDS:
            problems.append(Problem(path, at(key), f"unknown field '{key}'"))
    for key in REQUIRED_FIELDS:
        if key not in meta:
            problems.append(Problem(path, 1, f"missing field '{key}'"))
    gid = meta.get("id")
    if "id" in meta and (not isinstance(gid, str) or not ID_RE.match(gid)):
        problems.append(Problem(path, at("id"), f"id must be a lowercase slug, got {gid!r}"))
    elif isinstance(gid, str) and Path(path).stem != gid:
        problems.append(Problem(path, at("id"), f"id '{gid}' does not match file name"))
    if "title" in meta and not (isinstance(meta["title"], str) and meta["title"].strip()):
        problems.append(Problem(path, at("title"), "title must be a non-empty string"))
    hs = meta.get("http_status")
    if hs is not None and not (isinstance(hs, int) and 100 <= hs <= 599):
        problems.append(Problem(path, at("http_status"), f"http_status must be null or 100-599, got {hs!r}"))
    st = meta.get("status")
    if st is not None and not (isinstance(st, str) and re.fullmatch(r"[A-Z_]+", st)):
        problems.append(Problem(path, at("status"), f"status must be null or UPPER_CASE, got {st!r}"))
    # YAML reads bare yes/no as booleans: accept them too.
    if "retryable" in meta and meta["retryable"] not in RETRYABLE and not isinstance(meta["retryable"], bool):
        problems.append(Problem(path, at("retryable"), f"retryable must be one of {', '.join(RETRYABLE)}"))
    docs = meta.get("docs")
    if "docs" in meta and not (
        isinstance(docs, list) and docs and all(isinstance(d, str) and d.startswith("https://") for d in docs)
    ):
        problems.append(Problem(path, at("docs"), "docs must be a non-empty list of https URLs"))
    sigs = meta.get("signatures")
    if "signatures" in meta:
        if not isinstance(sigs, dict):
            problems.append(Problem(path, at("signatures"), "signatures must be a mapping of kind to list"))
        else:
            for kind, values in sigs.items():
                where = at(f"signatures.{kind}")
                if kind not in SIGNATURE_KINDS:
                    problems.append(
                        Problem(
                            path,
                            where,
                            f"unknown signature kind '{kind}' (expected one of {', '.join(SIGNATURE_KINDS)})",
                        )
                    )
                elif values is not None and not (
                    isinstance(values, list) and all(isinstance(v, str) and v.strip() for v in values)
                ):
                    problems.append(Problem(path, where, f"signatures.{kind} must be a list of non-empty strings"))
    related = meta.get("related")
    if related is not None and not (isinstance(related, list) and all(isinstance(r, str) for r in related)):
        problems.append(Problem(path, at("related"), "related must be a list of ids"))
    spec = meta.get("specialises")
    if spec is not None and not (isinstance(spec, str) and ID_RE.match(spec)):
        problems.append(Problem(path, at("specialises"), "specialises must be one entry id"))
    models = meta.get("models")
    if models is not None:
        if not isinstance(models, list):
            problems.append(Problem(path, at("models"), "models must be a list"))
        else:
            for m in models:
                if not (isinstance(m, dict) and isinstance(m.get("name"), str) and m.get("status") in MODEL_STATUSES):
                    statuses = "|".join(MODEL_STATUSES)
                    problems.append(
                        Problem(path, at("models"), f"model record needs name and status {statuses}: {m!r}")
                    )
                elif not (isinstance(m.get("source"), str) and m["source"].strip()):
                    where = "URL or document, and the date it was read"
                    problems.append(Problem(path, at("models"), f"model record {m['name']} needs a source ({where})"))
    return problems


def _retryable(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def parse_guide(path: Path, display: str | None = None) -> tuple[Guide | None, list[Problem]]:
    """Parse one guide file. Returns the guide (None when unusable) and its problems."""
    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(shown, 1, f"cannot read guide: {exc}")]
    split = split_front_matter(text)
    if split is None:
        return None, [
            Problem(shown, 1, "malformed front matter: the file must start with '---' and close it with '---'")
        ]
    front, fm_line, body, body_line = split.text, split.first_line, split.body, split.body_line
    try:
        meta = yaml.safe_load(front)
        lines = _node_lines(front, fm_line)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + fm_line) if mark is not None else fm_line
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(shown, line, f"malformed front matter: {reason}")]
    if not isinstance(meta, dict):
        return None, [Problem(shown, fm_line, "malformed front matter: expected a mapping of fields")]
    problems = _check_fields(meta, lines, shown)
    sections = _parse_sections(body, body_line, shown, problems)
    for name, (required, kind) in SECTIONS.items():
        if name not in sections:
            if required:
                problems.append(Problem(shown, body_line, f"missing section '## {name.title()}'"))
            continue
        line, raw = sections[name]
        if kind == "list" and not _list_items(raw):
            what = "fix steps" if name == "fix" else name
            problems.append(Problem(shown, line, f"empty {what}: expected a bulleted or numbered list"))
        elif kind == "text" and required and not _text(raw):
            problems.append(Problem(shown, line, f"empty section '{name}'"))
        elif kind == "code" and not _code_block(raw)[1]:
            problems.append(Problem(shown, line, "example section has no fenced code block"))
    if problems:
        return None, problems
    signatures = [
        Signature(kind, value.strip(), lines.get(f"signatures.{kind}[{j}]", lines.get("signatures", 1)))
        for kind in SIGNATURE_KINDS
        for j, value in enumerate((meta["signatures"] or {}).get(kind) or [])
    ]
    if not signatures:
        problems.append(Problem(shown, lines.get("signatures", 1), "no signatures: the matcher needs at least one"))
        return None, problems

    def section(name: str) -> list[str]:
        return sections.get(name, (0, []))[1]

    lang, code = _code_block(section("example"))
    guide = Guide(
        path=shown,
        id=meta["id"],
        title=meta["title"].strip(),
        http_status=meta["http_status"],
        status=meta["status"],
        retryable=_retryable(meta["retryable"]),
        docs=list(meta["docs"]),
        signatures=signatures,
        summary=_text(section("summary")),
        causes=_list_items(section("causes")),
        fix=_list_items(section("fix")),
        diagnosis=_list_items(section("diagnosis")),
        example=code,
        example_lang=lang,
        notes=_text(section("notes")),
        related=list(meta.get("related") or []),
        specialises=meta.get("specialises"),
        field_lines=lines,
        models=[
            ModelInfo(
                name=str(m["name"]),
                status=str(m["status"]),
                date=str(m["date"]) if m.get("date") else None,
                replacement=str(m["replacement"]) if m.get("replacement") else None,
                extra={k: v for k, v in m.items() if k not in ("name", "status", "date", "replacement")},
            )
            for m in meta.get("models") or []
        ],
    )
    return guide, []


def guide_files(paths: list[Path]) -> list[Path]:
    """Expand folders into their `*.md` guides, sorted for a stable build."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.glob("*.md") if p.is_file()))
        else:
            found.append(path)
    return found


def load_guides(paths: list[Path], *, root: Path | None = None) -> tuple[list[Guide], list[Problem]]:
    """Parse guides and check them against each other (ids, signatures, related)."""
    guides: list[Guide] = []
    problems: list[Problem] = []
    for path in guide_files(paths):
        display = display_path(path, root)
        if not path.exists():
            problems.append(Problem(display, 1, "no such file or folder"))
            continue
        guide, found = parse_guide(path, display)
        problems.extend(found)
        if guide is not None:
            guides.append(guide)
    seen_ids: dict[str, Guide] = {}
    owners: dict[str, tuple[Guide, Signature]] = {}
    for guide in guides:
        if guide.id in seen_ids:
            problems.append(Problem(guide.path, 1, f"duplicate id '{guide.id}' (also in {seen_ids[guide.id].path})"))
        seen_ids[guide.id] = guide
        for sig in guide.signatures:
            key = sig.text.casefold()
            owner = owners.get(key)
            if owner and owner[0].id != guide.id:
                problems.append(
                    Problem(
                        guide.path,
                        sig.line,
                        f"signature '{sig.text}' is also claimed by '{owner[0].id}' ({owner[0].path}:{owner[1].line})",
                    )
                )
            elif not owner:
                owners[key] = (guide, sig)
    for guide in guides:
        refs = [("related", r) for r in guide.related]
        refs += [("specialises", guide.specialises)] if guide.specialises else []
        for key, ref in refs:
            if ref not in seen_ids:
                line = guide.field_lines.get(key, 1)
                problems.append(Problem(guide.path, line, f"{key} id '{ref}' does not exist"))
    return guides, problems
