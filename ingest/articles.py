"""Split an article into sections and pull out what each says: causes, diagnosis, fix, code,
FAQ pairs and quoted error messages. Pure functions over `ingest.article_text` blocks.

A section becomes one or more *units*: the section itself, each FAQ pair, each row of a
table of error codes. `ingest.attach` decides which family each unit belongs to.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from ingest.article_text import ARTICLE_SUFFIXES, Block, Document, read_document
from ingest.boilerplate import ends_boilerplate, is_boilerplate_heading, is_boilerplate_label, is_boilerplate_text
from ingest.topics import expand
from kb.signals import STATUS_CODES

ADVICE_KINDS = ("summary", "causes", "diagnosis", "fix", "code")
MAX_ITEM_CHARS = 600
MAX_UNITS = 400  # sections, rows and pairs read from one article; each is matched several times
MAX_ITEMS = 12  # per kind and unit: an article's advice is a supplement, not a second guide

# Lead-ins ("Root causes:", "How to fix:", "Enable the API:") say what the next list or code is.
ROLE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "causes",
        re.compile(
            r"\b(?:causes?|why\b|reasons?|happens|because|common culprits|triggers?|causas?|raz[oó]n|penyebab|"
            r"nguy[eê]n nh[aâ]n|ursachen?)|原因|起因",
            re.I,
        ),
    ),
    (
        "diagnosis",
        re.compile(
            r"\b(?:diagnos\w*|confirm|how to tell|symptoms?|detect|identify|check whether|"
            r"verify|inspect|review|checklist)",
            re.I,
        ),
    ),
    (
        "fix",
        re.compile(
            r"\b(?:fix\w*|solutions?|solve|resolve|steps?|how to\b|workaround|enable|grant|set\b|"
            r"update|try\b|do this|what to do|remed\w*|soluci[oó]n|solu[cç][aã]o|solu[cç][oõ]es|solusi|c[aá]ch fix|"
            r"gi[aả]i ph[aá]p|l[oö]sung)|解决|解決|対処|対策|修正方法|修复",
            re.I,
        ),
    ),
)
LABEL_LEAD_RE = re.compile(r"^([A-Z][\w ’'/&()-]{1,60}):\s+(\S.*)$")  # "Fix: 1. Check the key ..."
QUESTION_RE = re.compile(r"^\**(?:q(?:uestion)?\**\s*[:.]\**\s*)?(.{6,300}\?)\**$", re.I)
ANSWER_PREFIX_RE = re.compile(r"^\**a(?:nswer)?\**\s*[:.]\**\s*", re.I)
QA_PREFIX_RE = re.compile(r"^\**q(?:uestion)?\**\s*[:.]", re.I)
# Headings that name a part of one problem ("Symptom", "Cause", "Fix"), not a problem of their own.
ROLE_HEADING_RE = re.compile(
    r"^(?:symptoms?|what you see|(?:root )?causes?|why(?: (?:it|this) happens)?|fix(?:es)?|the fix|"
    r"how to (?:fix|resolve|solve)(?: it| this(?: error)?)?|solutions?|resolution|workarounds?|diagnosis|"
    r"how to confirm|steps|what to do|what (?:this|the) error means|what it means|meaning|"
    r"(?:common|likely|possible|probable|typical) causes|root cause analysis|step[- ]by[- ]step(?: fix| guide)?|"
    r"possible solutions|(?:code )?examples?|code samples?|(?:the )?error messages?|why this happens\b.*|"
    r"(?:solution|option|check|step|fix) \d{1,2}\b.*)$",
    re.I,
)
FAQ_HEADING_RE = re.compile(r"\b(?:faq|frequently asked|questions|q ?& ?a)\b", re.I)
MESSAGES_HEADING_RE = re.compile(r"\berror messages?\b|\bmessages you (?:may|might|will) see\b", re.I)
# "Common error messages include A, B, or C." in running text.
MESSAGES_LEAD_RE = re.compile(
    r"\b(?:error messages?|exceptions?)\s+(?:include|such as|like|you (?:may|might|will) see)\s*:?\s+(.+)$",
    re.I,
)
STATUS_CELL_RE = re.compile(r"^`?([1-5]\d\d)\b")
# A cell that names an error: an HTTP status, a status or reason in UPPER_CASE, an exception class.
ERROR_CELL_RE = re.compile(
    r"^`?(?:[1-5]\d\d\b|[A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+\b|\w+(?:Error|Exception)\b|(?:" + "|".join(STATUS_CODES) + r")\b)"
)
SMALL_NUMBER_RE = re.compile(r"^`?\d{1,2}`?$")
# "Error: `...`" or "**Issue:** ..." opens a bullet group that the Cause/Solution bullets under it explain.
ERROR_LEAD_RE = re.compile(r"^(?:error|issue|problem|symptom|warning)\s*:\s*(.+)$", re.I)
# Column headers, also as guides in other languages write them (解决方案, solución, Cách fix; 原因, causa, Nguyên nhân).
FIX_COLUMN_RE = re.compile(
    r"\b(?:fix|what to do|action|solution|next|remedy|how to|soluci[oó]n|solu[cç][aã]o|solusi|l[oö]sung|c[aá]ch)\b|"
    r"解决|解決|対処|对策|対策|处理方法|方法",
    re.I,
)
CAUSE_COLUMN_RE = re.compile(
    r"\b(?:meaning|means|cause|why|description|what it is|causa|penyebab|nguy[eê]n nh[aâ]n|ursache|significado|arti)\b|"
    r"原因|说明|説明|含义|意味",
    re.I,
)


@dataclass
class Advice:
    """What one unit of an article says, by kind."""

    summary: list[str] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)
    fix: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    faq: list[dict[str, str]] = field(default_factory=list)

    def add(self, kind: str, text: str) -> None:
        text = text.strip("\n") if kind == "code" else _tidy(text)
        items: list[str] = getattr(self, kind)
        if text and text not in items and len(items) < MAX_ITEMS:
            items.append(text if len(text) <= MAX_ITEM_CHARS else text[: MAX_ITEM_CHARS - 1] + "…")

    def as_dict(self) -> dict[str, list]:
        return {k: v for k, v in self.__dict__.items() if v}

    def __bool__(self) -> bool:
        return any(self.__dict__.values())


@dataclass
class Unit:
    """A piece of an article that is about one error: a section, an FAQ pair or a table row."""

    kind: str  # "section", "faq", "table-row"
    heading: str
    parents: tuple[str, ...]
    text: str  # what the matcher reads
    advice: Advice
    messages: list[str] = field(default_factory=list)  # quoted error messages (candidate signatures)
    cells: tuple[str, ...] = ()  # a table row's cells (what identifies the error is in the first ones)

    @property
    def label(self) -> str:
        return " > ".join([*self.parents, self.heading]) if self.parents else self.heading


@dataclass
class Article:
    """One article file, parsed into units."""

    path: Path
    title: str
    sha256: str
    units: list[Unit]
    dropped: list[str]  # boilerplate headings and blurbs left out, for the dry run


def _tidy(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("→", " → ")).strip().strip("-–—•").strip()


def _role(lead: str) -> str | None:
    for role, pattern in ROLE_RULES:
        if pattern.search(lead):
            return role
    return None


# -- sections -----------------------------------------------------------------------------


@dataclass
class Section:
    heading: str
    level: int
    parents: tuple[str, ...]
    blocks: list[Block] = field(default_factory=list)


def split_sections(doc: Document, dropped: list[str]) -> list[Section]:
    """Sections under each heading, without boilerplate; text before the title is page chrome."""
    blocks = doc.blocks
    title_at = next((i for i, b in enumerate(blocks) if b.kind == "heading" and b.text == doc.title), None)
    if title_at is not None:
        dropped += [b.text[:80] for b in blocks[:title_at] if b.text]
        blocks = blocks[title_at:] if not doc.structured else blocks[title_at + 1 :]
    has_levels = doc.structured
    sections = [Section("", 1, ())]
    stack: list[tuple[int, str]] = []
    skipping: int | None = None  # level of the boilerplate heading being skipped
    for block in blocks:
        if block.kind == "heading":
            if skipping is not None:
                over = block.level <= skipping if has_levels else ends_boilerplate(block.text)
                if not over or is_boilerplate_heading(block.text):
                    dropped.append(block.text)
                    continue
                skipping = None
            if is_boilerplate_label(block.text):
                dropped.append(block.text)
                continue
            if is_boilerplate_heading(block.text):
                dropped.append(block.text)
                skipping = block.level
                continue
            role_text = re.sub(r"^[\W_]+", "", block.text).strip(" :")  # "✅ Solutions" is "Solutions"
            if ROLE_HEADING_RE.match(role_text):
                # "## Cause" continues the problem above it (or the one the title names).
                if not sections[-1].heading:
                    sections[-1].heading = doc.title
                sections[-1].blocks.append(Block("text", role_text + ":"))
                continue
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            sections.append(Section(block.text, block.level, tuple(h for _, h in stack)))
            if block.text != doc.title:  # the title is the source's name, shown apart
                stack.append((block.level, block.text))
            continue
        if skipping is not None:
            continue
        if block.kind == "text" and is_boilerplate_text(block.text):
            dropped.append(block.text[:80])
            if re.search(r"thank(?:s| you) for reading|continue reading|more from|recommended from", block.text, re.I):
                skipping = sections[-1].level  # the end of the article proper
            continue
        if block.kind == "list":
            kept = tuple(i for i in block.items if not is_boilerplate_text(i))
            dropped += [i[:80] for i in block.items if i not in kept]
            if not kept:
                continue
            block = Block("list", items=kept, ordered=block.ordered)
        sections[-1].blocks.append(block)
    if not sections[0].heading and doc.structured:
        sections[0].heading = doc.title  # what comes before the first heading is about the title
    return [s for s in sections if s.blocks]


# -- extraction ---------------------------------------------------------------------------


def _messages_from_text(text: str) -> list[str]:
    """Messages named in running text: "errors include A, B, or C"."""
    found = MESSAGES_LEAD_RE.search(text)
    if not found:
        return []
    rest = found.group(1).rstrip(". ")
    parts = re.split(r",\s+(?:or\s+|and\s+)?(?=[A-Za-z_`'\"<])|\s+or\s+(?=[a-z]+\b)", rest)
    return [_strip_quotes(p) for p in parts if _strip_quotes(p)]


def _strip_quotes(text: str) -> str:
    text = text.strip().strip("`'\"“”").strip()
    return re.sub(r"(?:\.\.\.|…)+$", "", text).strip()


def _backticked(text: str) -> list[str]:
    return [m.strip() for m in re.findall(r"`([^`]{4,400})`", text)]


def _faq_units(section: Section) -> list[tuple[str, str]]:
    """Question/answer pairs in a section: list items, "Q:/A:" paragraphs or question paragraphs."""
    lines: list[str] = []
    for block in section.blocks:
        if block.kind == "list":
            lines += list(block.items)
        elif block.kind == "text":
            lines.append(block.text)
    pairs: list[tuple[str, str]] = []
    question, answer = "", []
    for line in lines:
        q = QUESTION_RE.match(line.strip())
        if q:
            if question and answer:
                pairs.append((question, " ".join(answer)))
            question, answer = q.group(1).strip(), []
        elif question:
            answer.append(ANSWER_PREFIX_RE.sub("", line.strip()))
    if question and answer:
        pairs.append((question, " ".join(answer)))
    return pairs


def _number_kind(header: tuple[str, ...], context: str = "") -> str | None:
    """How to read a bare number in the first column: a finish reason or a gRPC code."""
    head = " ".join(header).lower()
    if "finish" in head or re.search(r"finish[ _]?reason", context, re.I):
        return "finish_reason"
    if "grpc" in head or (header and header[0].strip().lower() in ("code", "grpc code", "status code")):
        return "grpc"
    return None


def _table_units(block: Block, parents: tuple[str, ...]) -> list[Unit]:
    """A table of errors: one unit per row that names one (a status, a reason, an enum number)."""
    header, *rows = block.rows
    kind = _number_kind(header, " ".join(parents))
    if not rows:
        return []
    fix_cols = [i for i, h in enumerate(header) if FIX_COLUMN_RE.search(h)]
    cause_cols = [i for i, h in enumerate(header) if CAUSE_COLUMN_RE.search(h) and i not in fix_cols]
    units = []
    for row in rows:
        cells = [c.strip() for c in row]
        named = [i for i, c in enumerate(cells) if ERROR_CELL_RE.match(c) or (kind and SMALL_NUMBER_RE.match(c))]
        if not cells or not named or min(named) > 2:
            continue
        advice = Advice()
        for i in cause_cols:
            if i < len(cells) and not ERROR_CELL_RE.match(cells[i]):
                advice.add("summary", cells[i])
        for i in fix_cols:
            if i < len(cells):
                advice.add("fix", cells[i])
        if not fix_cols and not cause_cols:
            for c in cells[max(named) + 1 :]:
                advice.add("summary", c)
        ident = [cells[i].strip("`") for i in range(0, max(named) + 1)]
        heading = " ".join(c for c in ident if c)
        # A short code, or a two-column "message | likely cause" row: the next cell says what it is.
        if (len(heading) < 12 or len(cells) == max(named) + 2) and len(cells) > max(named) + 1:
            heading += " " + cells[max(named) + 1].strip("`")
        text = " | ".join(cells)
        messages = [m for c in cells for m in _backticked(c) if len(m) >= 14 and not m.isupper()]
        heading, text = expand(heading, number_kind=kind), expand(text, number_kind=kind)
        units.append(Unit("table-row", heading, parents, text, advice, messages, tuple(cells)))
    return units


def _group_units(block: Block, parents: tuple[str, ...]) -> list[Unit]:
    """Bullets "Error: X" each followed by "Cause: ..." / "Solution: ..." bullets: one unit per error."""
    units: list[Unit] = []
    current: Unit | None = None
    role = "fix"
    for raw in block.items:
        item = raw.replace("**", "").strip()
        lead = ERROR_LEAD_RE.match(item)
        if lead:
            error = lead.group(1).strip()
            messages = [m for m in _backticked(error) if len(m) >= 6]
            current = Unit("bullet-group", error.strip("`").strip(), parents, error, Advice(), messages)
            units.append(current)
            role = "fix"
            continue
        if current is None:
            continue
        label = LABEL_LEAD_RE.match(item) or re.match(r"^([A-Z][\w ]{1,30}):\s*$", item)
        if label:
            role = _role(label.group(1)) or ("causes" if re.match(r"issue", label.group(1), re.I) else role)
            rest = label.group(2) if label.lastindex and label.lastindex >= 2 else ""
            if rest:
                current.advice.add(role, rest)
        else:
            current.advice.add(role, item)
        current.text += "\n" + item
    return units


def _is_group(block: Block) -> bool:
    return block.kind == "list" and any(ERROR_LEAD_RE.match(i.replace("**", "").strip()) for i in block.items)


def _merge_groups(blocks: list[Block]) -> list[Block]:
    """Join the lists that a blank line split out of one "Error: / Cause: / Solution:" group."""
    out: list[Block] = []
    for block in blocks:
        if block.kind == "list" and out and _is_group(out[-1]):
            out[-1] = Block("list", items=out[-1].items + block.items)
        else:
            out.append(block)
    return out


def section_units(section: Section) -> list[Unit]:
    """The units of one section: itself (when it has advice), its FAQ pairs, its table rows."""
    parents = (*section.parents, section.heading) if section.heading else section.parents
    asks = any(b.kind == "text" and QA_PREFIX_RE.match(b.text) for b in section.blocks)
    if section.heading and (FAQ_HEADING_RE.search(section.heading) or section.heading.endswith("?") or asks):
        pairs = _faq_units(section)
        if section.heading.endswith("?") and not pairs:
            answer = " ".join(b.text for b in section.blocks if b.kind == "text")
            pairs = [(section.heading, answer)] if answer else []
        units = []
        for q, a in pairs:
            advice = Advice(faq=[{"q": _tidy(q), "a": _tidy(a)[:MAX_ITEM_CHARS]}])
            units.append(Unit("faq", q, section.parents, f"{q}\n{a}", advice, _messages_from_text(a)))
        if units:
            return units
    advice = Advice()
    messages: list[str] = []
    units: list[Unit] = []
    role: str | None = None
    section.blocks = _merge_groups(section.blocks)
    listing_messages = bool(MESSAGES_HEADING_RE.search(section.heading))
    text_parts = [section.heading]
    for block in section.blocks:
        if block.kind == "text":
            text = block.text
            lead = LABEL_LEAD_RE.match(text)
            if text.endswith(":"):
                role = _role(text) or role
                text_parts.append(text)
                continue
            if lead and _role(lead.group(1)) and len(lead.group(1).split()) <= 5:
                advice.add(_role(lead.group(1)) or "fix", lead.group(2))
            elif role in ("causes", "fix"):
                advice.add(role, text)  # prose under "Cause:" or "Fix:" says the cause or the fix
            else:
                if not advice.summary and not advice.causes and not advice.fix:
                    advice.add("summary", text)
                # "This happens when:" style prose makes the list after it a list of causes.
                role = "causes" if re.search(r"\b(?:why|because|causes?|happens)\b", text, re.I) else None
            messages += _messages_from_text(text)
            if listing_messages:
                messages += _backticked(text)
            text_parts.append(text)
        elif block.kind == "list" and sum(bool(ERROR_LEAD_RE.match(i.replace("**", "").strip())) for i in block.items):
            units += _group_units(block, parents)
            text_parts += [i for i in block.items if ERROR_LEAD_RE.match(i.replace("**", "").strip())]
        elif block.kind == "list":
            # A numbered list is steps, unless the heading says it lists causes ("Possible causes", "原因").
            by_heading = _role(section.heading)
            kind = role or ("fix" if block.ordered and by_heading != "causes" else by_heading or "fix")
            for item in block.items:
                if listing_messages:
                    messages += _backticked(item) or [_strip_quotes(item)]
                    continue
                lead = LABEL_LEAD_RE.match(item)
                advice.add(kind if not lead else (_role(lead.group(1)) or kind), item)
            text_parts += block.items
            # "Grant one of these roles:" leads into a nested list of the same kind.
            role = kind if block.items[-1].endswith(":") else None
        elif block.kind == "code":
            if listing_messages:
                messages += [_strip_quotes(line) for line in block.text.splitlines() if line.strip()]
            else:
                advice.add("code", block.text)
            text_parts.append(block.text)
            role = None
        elif block.kind == "table":
            units += _table_units(block, parents)
    messages = [m for m in dict.fromkeys(messages) if len(m) >= 6]
    if (advice or messages) and section.heading:
        units.insert(0, Unit("section", section.heading, section.parents, "\n".join(text_parts), advice, messages))
    return units


def parse_article(path: Path) -> Article:
    """Read an article file and split it into units, dropping boilerplate."""
    data = path.read_bytes()
    doc = read_document(path)
    dropped: list[str] = []
    units = [u for s in split_sections(doc, dropped) for u in section_units(s)]
    if len(units) > MAX_UNITS:  # a page this long is a dump, not a guide: read its start, say so
        dropped.append(f"{len(units) - MAX_UNITS} more sections not read (an article is read up to {MAX_UNITS})")
        units = units[:MAX_UNITS]
    return Article(path, doc.title, hashlib.sha256(data).hexdigest(), units, dropped)


def is_article(path: Path) -> bool:
    """An article rather than a curated guide: a guide is Markdown whose front matter has an `id`."""
    if path.suffix.lower() not in ARTICLE_SUFFIXES:
        return False
    if path.suffix.lower() != ".md":
        return True
    head = path.read_text(encoding="utf-8", errors="replace")[:4000].splitlines()
    if not head or head[0].strip() != "---":
        return True
    end = next((i for i in range(1, len(head)) if head[i].strip() == "---"), len(head))
    return not any(re.match(r"^id\s*:", line) for line in head[1:end])
