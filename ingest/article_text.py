"""Turn a saved article (HTML, Markdown or text copied from a browser) into typed blocks.

Every format ends up as the same short list of blocks (headings, paragraphs, lists,
code, tables), so sectioning and extraction work on one shape. HTML goes through
BeautifulSoup; Markdown is read line by line; flattened text is given structure by
the declared line rules below (list markers, code-looking lines, heading-looking lines).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ingest.boilerplate import BOILERPLATE_ATTR_RE, DROP_TAGS

ARTICLE_SUFFIXES = (".html", ".htm", ".md", ".txt", ".ipynb", ".pdf")
MAX_ARTICLE_BYTES = 2_000_000  # a saved page is rarely over a few hundred KB; refuse floods

BlockKind = Literal["heading", "text", "list", "code", "table"]


@dataclass(frozen=True)
class Block:
    """One unit of an article: a heading, a paragraph, a list, a code block or a table."""

    kind: BlockKind
    text: str = ""
    level: int = 0  # headings: 1 is the title
    items: tuple[str, ...] = ()  # lists
    ordered: bool = False
    rows: tuple[tuple[str, ...], ...] = ()  # tables, header row first
    lang: str = ""


@dataclass
class Document:
    """An article as blocks, with the title it gives itself."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    structured: bool = True  # heading levels mean something (HTML, Markdown), not guessed from text


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# -- HTML ---------------------------------------------------------------------------------

HEADING_TAGS = {f"h{i}": i for i in range(1, 7)}
BLOCK_TAGS = {"p", "div", "section", "article", "main", "header", "blockquote", "dl", "dt", "dd", "figure", "details"}


def _inline(node) -> str:
    """The text of an inline fragment, with `code` kept in backticks."""
    from bs4 import NavigableString, Tag

    if isinstance(node, NavigableString):
        return str(node)
    if not isinstance(node, Tag):
        return ""
    if node.name == "br":
        return "\n"
    inner = "".join(_inline(c) for c in node.children)
    if node.name in ("code", "kbd", "samp", "tt") and inner.strip():
        return f"`{inner.strip()}`"
    return inner


def _is_boilerplate_tag(tag) -> bool:
    if tag.name in DROP_TAGS:
        return True
    attrs = " ".join([*(tag.get("class") or []), tag.get("id") or "", tag.get("role") or ""])
    if tag.get("aria-hidden") == "true" or tag.has_attr("hidden"):
        return True
    return bool(attrs.strip()) and BOILERPLATE_ATTR_RE.search(attrs) is not None


def _html_blocks(node, out: list[Block]) -> None:
    """Walk the tree in document order, emitting blocks; inline runs become paragraphs."""
    from bs4 import Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag

    run: list[str] = []

    def flush() -> None:
        text = _squash("".join(run))
        run.clear()
        if text:
            out.append(Block("text", text))

    for child in node.children:
        if isinstance(child, Comment | Declaration | Doctype | ProcessingInstruction):
            continue
        if isinstance(child, NavigableString):
            run.append(str(child))
            continue
        if not isinstance(child, Tag) or _is_boilerplate_tag(child):
            continue
        name = child.name
        if name in HEADING_TAGS:
            flush()
            text = _squash(_inline(child))
            if text:
                out.append(Block("heading", text, level=HEADING_TAGS[name]))
        elif name == "pre":
            flush()
            code = child.find("code")
            classes = " ".join((code or child).get("class") or [])
            lang = re.search(r"(?:language|lang)-([\w+-]+)", classes)
            text = (code or child).get_text().strip("\n")
            if text.strip():
                out.append(Block("code", text, lang=lang.group(1) if lang else ""))
        elif name in ("ul", "ol"):
            flush()
            items = []
            for li in child.find_all("li", recursive=False):
                nested = [n.extract() for n in li.find_all(("ul", "ol"), recursive=False)]
                text = _squash(_inline(li))
                items.append(text)
                for sub in nested:  # nested lists become items of their own, kept in order
                    items.extend(_squash(_inline(x)) for x in sub.find_all("li"))
            items = [i for i in items if i]
            if items:
                out.append(Block("list", items=tuple(items), ordered=name == "ol"))
        elif name == "table":
            flush()
            rows = []
            for tr in child.find_all("tr"):
                cells = tuple(_squash(_inline(td)) for td in tr.find_all(("th", "td")))
                if any(cells):
                    rows.append(cells)
            if rows:
                out.append(Block("table", rows=tuple(rows)))
        elif name in BLOCK_TAGS or name in ("li", "body", "html", "span", "form"):
            if name in BLOCK_TAGS or name in ("body", "html"):
                flush()
            _html_blocks(child, out)
        else:
            run.append(_inline(child))
    flush()


def html_document(html: str) -> Document:
    """Blocks of an HTML page: the <article> or <main> when there is one, without the page's chrome."""
    from bs4 import BeautifulSoup, Comment

    soup = BeautifulSoup(html, "html.parser")
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    head_title = _squash(soup.title.get_text()) if soup.title else ""
    root = soup.find("article") or soup.find("main") or soup.body or soup
    blocks: list[Block] = []
    try:
        _html_blocks(root, blocks)
    except RecursionError:
        # Nesting deeper than Python's stack (hostile or broken markup): keep the text, lose the structure.
        return text_document(root.get_text("\n"))
    h1 = next((b.text for b in blocks if b.kind == "heading" and b.level == 1), "")
    return Document(h1 or head_title, blocks)


# -- Markdown -----------------------------------------------------------------------------

MD_HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
MD_FENCE_RE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)")
LIST_ITEM_RE = re.compile(r"^(\s*)(?:([-*+•·▪◦‣])|(\d{1,2})[.)])\s+(.*)$")
QA_LINE_RE = re.compile(r"^\s*\**(?:Q|A|Question|Answer)\**\s*[:.]", re.I)
TABLE_RULE_RE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _table_cells(line: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in line.strip().strip("|").split("|"))


def markdown_document(text: str) -> Document:
    """Blocks of a Markdown note (front matter, if any, gives the title)."""
    lines = text.splitlines()
    title = ""
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is not None:
            for line in lines[1:end]:
                if line.lower().startswith("title:"):
                    title = line.split(":", 1)[1].strip().strip("'\"")
            lines = lines[end + 1 :]
    blocks: list[Block] = []
    para: list[str] = []
    items: list[str] = []
    ordered = False

    def flush() -> None:
        nonlocal ordered
        if para:
            blocks.append(Block("text", _squash(" ".join(para))))
            para.clear()
        if items:
            blocks.append(Block("list", items=tuple(_squash(i) for i in items), ordered=ordered))
            items.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = MD_FENCE_RE.match(line)
        if fence:
            flush()
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(fence.group(1))), len(lines))
            code = "\n".join(lines[i + 1 : end]).strip("\n")
            if code.strip():
                blocks.append(Block("code", code, lang=fence.group(2)))
            i = end + 1
            continue
        heading = MD_HEADING_RE.match(line)
        if heading:
            flush()
            blocks.append(Block("heading", _squash(heading.group(2)), level=len(heading.group(1))))
        elif line.lstrip().startswith("|") and i + 1 < len(lines) and TABLE_RULE_RE.match(lines[i + 1]):
            flush()
            rows = [_table_cells(line)]
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_table_cells(lines[i]))
                i += 1
            blocks.append(Block("table", rows=tuple(rows)))
            continue
        elif item := LIST_ITEM_RE.match(line):
            if para:
                flush()
            if not items:
                ordered = item.group(3) is not None
            items.append(item.group(4))
        elif not line.strip():
            flush()
        elif QA_LINE_RE.match(line):
            flush()
            para.append(line.strip())
        elif items and line.startswith((" ", "\t")):
            items[-1] += " " + line.strip()
        elif line.startswith("    ") and not para:
            flush()
            code = [line[4:]]
            while i + 1 < len(lines) and (lines[i + 1].startswith("    ") or not lines[i + 1].strip()):
                i += 1
                code.append(lines[i][4:])
            blocks.append(Block("code", "\n".join(code).strip("\n")))
        else:
            if items:
                flush()
            para.append(line.strip())
        i += 1
    flush()
    if not title:
        title = next((b.text for b in blocks if b.kind == "heading" and b.level == 1), "")
    return Document(title, blocks)


# -- flattened text ---------------------------------------------------------------------

# Lines that are code when text is copied out of a page: statements, calls, shell commands.
CODE_LINE_RES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        (
            "python_statement",
            r"^(?:import \w|from [\w.]+ import |def \w+\(|class \w+[(:]|try:|except\b|finally:|"
            r"raise \w|return\b|print\(|for \w+ in |while .{1,200}:$|if .{1,200}:$|elif |else:|with .{1,200}:$|"
            r"async |await )",
        ),
        ("assignment", r"^[\w.\[\]'\"]{1,80}\s*[+\-*/]?=\s*\S"),
        ("call", r"^[\w.]{1,80}\(.{0,300}\)[;,]?$"),
        ("shell", r"^(?:\$ |curl |pip3? |npm |npx |export |gcloud |python3? |node |-H |-d |--\w)"),
        ("comment", r"^(?:#|//) "),
        ("bracket", r"^[{}\[\]()]{1,3}[,;]?$|^\"[\w-]{1,60}\":\s"),
        ("continued", r"\\$"),
    )
)
TERMINAL_RE = re.compile(r"[.!?]['\")\]]?$")
STATUS_HEADING_RE = re.compile(r"^[1-5]\d\d\b(?=\s*\S)(?!\s*$)(?=.*[A-Za-z])")
WORD_RE = re.compile(r"[A-Za-z][A-Za-z'’-]*")
SMALL_WORDS = frozenset("a an and as at by for from in into is it of on or the to vs with your you".split())


def looks_like_code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and any(p.search(stripped) for _name, p in CODE_LINE_RES)


# "400 Error: API key not valid. Please pass a valid API key." - a status and the message it names, as a label.
STATUS_LABEL_RE = re.compile(
    r"^(?:[1-5]\d\d\s*[^\s:：]{0,12}\s*[:：]|(?:error|fehler|erreur|erro|错误|錯誤|エラー)\s*[1-5]\d\d\s*[:：])\s*\S",
    re.I,
)


def looks_like_heading(line: str) -> bool:
    """A short line without sentence punctuation, in title case or naming a status code."""
    text = line.strip()
    if STATUS_LABEL_RE.match(text) and len(text) <= 120:
        return True
    if not 2 <= len(text) <= 110 or (TERMINAL_RE.search(text) and not text.endswith("?")):
        return False
    if text.endswith((":", ",", ";", "(")) or LIST_ITEM_RE.match(line) or looks_like_code(text):
        return False
    words = WORD_RE.findall(text)
    n_words = len(text.split())
    if not words or n_words > 16 or not (text[0].isupper() or text[0].isdigit() or not text[0].isalnum()):
        return False
    if STATUS_HEADING_RE.match(text) or text.endswith("?") or n_words <= 8:
        return True
    capitalised = [w for w in words if w[0].isupper() or w.lower() in SMALL_WORDS]
    return len(capitalised) >= 0.7 * len(words)


# Lists copied from a page often run together on one line: "Fix: 1. Check 2. Rotate 3. Retry".
RUN_ON_BULLET_RE = re.compile(r"\s[-•]\s(?=[A-Z`])")
RUN_ON_NUMBER_RE = re.compile(r"(?:(?<=^)|(?<=\s))(\d{1,2})[.)]\s(?=\S)")


def _split_run_on(text: str) -> tuple[str, list[str], bool]:
    """Split `lead 1. a 2. b` or `lead - a - b` into (lead, items, ordered) when numbers count up from 1."""
    numbers = list(RUN_ON_NUMBER_RE.finditer(text))
    expected = [m for i, m in enumerate(numbers) if m.group(1) == str(i + 1)]
    if len(numbers) >= 2 and len(expected) == len(numbers):
        lead = text[: numbers[0].start()].strip()
        bounds = [m.start() for m in numbers] + [len(text)]
        items = [text[numbers[i].end() : bounds[i + 1]].strip() for i in range(len(numbers))]
        return lead, items, True
    parts = RUN_ON_BULLET_RE.split(text)
    if len(parts) >= 2:
        return parts[0].strip(), [p.strip() for p in parts[1:]], False
    return text, [], False


def text_document(text: str) -> Document:
    """Blocks of text copied from a browser: headings, lists and code recovered from the shape of lines."""
    raw = [line.rstrip() for line in text.splitlines()]
    # Inline code pasted out of a page lands on a line of its own: join lines that do not end a thought.
    lines: list[str] = []
    for line in raw:
        prev = lines[-1] if lines else ""
        continues = (
            prev.strip()
            and line.strip()
            and not TERMINAL_RE.search(prev.strip())
            and not prev.rstrip().endswith(":")
            and not prev.lstrip().startswith("|")
            and (LIST_ITEM_RE.match(prev) or prev.rstrip().endswith((",", "(", "`")))
            and not LIST_ITEM_RE.match(line)
            and not looks_like_code(prev)
            and not looks_like_code(line)
        )
        if re.fullmatch(r"\s*[1-5]\d\d\s*", prev) and re.fullmatch(r"\s*`?[A-Z][A-Z_]{3,40}`?\s*", line):
            lines[-1] = f"{prev.strip()} {line.strip()}"  # a table's code and status cells, one per line
        elif continues:
            lines[-1] = prev + " " + line.strip()
        else:
            lines.append(line)
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        item = LIST_ITEM_RE.match(line)
        if not re.search(r"[A-Za-z]", stripped):  # clap counts, separators, dates alone
            i += 1
            continue
        if looks_like_code(stripped) and not item:
            code = [line]
            while i + 1 < len(lines) and (
                looks_like_code(lines[i + 1])
                or (lines[i + 1].startswith((" ", "\t")) and not LIST_ITEM_RE.match(lines[i + 1]))
                or (not lines[i + 1].strip() and i + 2 < len(lines) and looks_like_code(lines[i + 2]))
            ):
                i += 1
                code.append(lines[i])
            body = "\n".join(code)
            indent = min((len(c) - len(c.lstrip()) for c in code if c.strip()), default=0)
            blocks.append(Block("code", "\n".join(c[indent:] for c in body.splitlines()).strip("\n")))
        elif item:
            ordered = item.group(3) is not None
            items: list[str] = []
            while i < len(lines) and (m := LIST_ITEM_RE.match(lines[i])) and (m.group(3) is not None) == ordered:
                lead, run_on, _ = _split_run_on(m.group(4))
                items.extend([lead, *run_on] if run_on else [m.group(4).strip()])
                i += 1
            next_item = LIST_ITEM_RE.match(lines[i]) if i < len(lines) else None
            if ordered and len(items) == 1 and looks_like_heading(items[0]) and next_item and not next_item.group(3):
                blocks.append(Block("heading", items[0], level=3))  # "1. Verify Your Key" over a bullet list
            else:
                blocks.append(Block("list", items=tuple(x for x in items if x), ordered=ordered))
            continue
        elif "|" in stripped and i + 1 < len(lines) and BARE_RULE_RE.match(lines[i + 1].strip()):
            # A pipe table copied out of a page, its rows wrapped over several lines: "400 | STATUS |" then the cells.
            header = _table_cells(stripped)
            rows, i = _wrapped_rows(lines, i + 2, len(header))
            blocks.append(Block("table", rows=(header, *rows)))
            continue
        elif stripped.startswith("|") and stripped.count("|") >= 3:
            table = [stripped]
            while i + 1 < len(lines) and lines[i + 1].strip().startswith("|"):
                i += 1
                table.append(lines[i].strip())
            blocks.append(Block("table", rows=_table_rows(table)))
        elif _bare_row(stripped) and i + 1 < len(lines) and _bare_row(lines[i + 1].strip()):
            # A table whose borders were lost on copying: "400 | INVALID_ARGUMENT | ..." or "400 INVALID_ARGUMENT ..."
            rows = [_bare_row(stripped)]
            while i + 1 < len(lines) and _bare_row(lines[i + 1].strip()):
                i += 1
                rows.append(_bare_row(lines[i].strip()))
            header = _bare_header(blocks, rows)
            blocks.append(Block("table", rows=(header, *rows)))
        elif looks_like_heading(stripped) and _has_next(lines, i) and not QA_LINE_RE.match(stripped):
            blocks.append(Block("heading", stripped, level=2))  # flattened text keeps no nesting to trust
        else:
            lead, run_on, ordered = _split_run_on(stripped)
            if lead:
                blocks.append(Block("text", lead))
            if run_on:
                blocks.append(Block("list", items=tuple(run_on), ordered=ordered))
        i += 1
    title = _text_title(blocks)
    blocks = [Block("heading", b.text, level=1) if b.kind == "heading" and b.text == title else b for b in blocks]
    return Document(title, blocks, structured=False)


def _table_rows(lines: list[str]) -> tuple[tuple[str, ...], ...]:
    """Rows of a pipe table, also when a browser copy ran all its rows into one line."""
    cells = [c for line in lines for c in _table_cells(line)]
    rule = [i for i, c in enumerate(cells) if re.fullmatch(r":?-{3,}:?", c)]
    if len(lines) == 1 and rule:
        width = len(rule)
        values = [c for c in cells if c and not re.fullmatch(r":?-{3,}:?", c)]
        return tuple(tuple(values[i : i + width]) for i in range(0, len(values), width))
    return tuple(_table_cells(line) for line in lines if not TABLE_RULE_RE.match(line))


BARE_RULE_RE = re.compile(r"^\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)+\|?$")
ROW_START_RE = re.compile(r"^\W*[1-5]\d\d\b")


def _wrapped_rows(lines: list[str], start: int, width: int) -> tuple[list[tuple[str, ...]], int]:
    """Rows of a pipe table whose rows wrap: a row ends when it has `width` cells or the next one starts
    with a status code; the table ends at the first line without a pipe. Returns the rows and the next line."""
    rows: list[list[str]] = []
    current: list[str] = []
    i = start
    while i < len(lines) and "|" in lines[i]:
        cells = list(_table_cells(lines[i]))
        if current and (len(current) >= width or ROW_START_RE.match(cells[0])):
            rows.append(current)
            current = []
        current += cells
        i += 1
    if current:
        rows.append(current)
    return [tuple((row + [""] * width)[:width]) for row in rows], i


PIPE_ROW_RE = re.compile(r"^[^|]+(?:\s\|\s[^|]*){2,}\|?$")
STATUS_ROW_RE = re.compile(r"^`?([1-5]\d\d)`?\s+`?([A-Z][A-Z_]{3,40})`?\s+(\S.{2,})$")


def _bare_row(line: str) -> tuple[str, ...] | None:
    """The cells of a table row that lost its borders, or None when `line` is not one."""
    if PIPE_ROW_RE.match(line):
        return tuple(c.strip() for c in line.strip().strip("|").split("|"))
    row = STATUS_ROW_RE.match(line)
    return (row.group(1), row.group(2), row.group(3)) if row else None


def _bare_header(blocks: list[Block], rows: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The header of a borderless table: its first row when that names no code, else a neutral one."""
    if rows and not re.match(r"^`?\d", rows[0][0]):
        return rows.pop(0)
    return ("Code", "Status", "Description")


def _has_next(lines: list[str], i: int) -> bool:
    return any(line.strip() for line in lines[i + 1 :])


def _text_title(blocks: list[Block]) -> str:
    """The first heading that reads like a title: several words, not a breadcrumb or a dateline."""
    for block in blocks[:40]:
        if block.kind != "heading" or "/" in block.text:
            continue
        words = WORD_RE.findall(block.text)
        if len(words) >= 4 and sum(len(w) for w in words) >= 0.6 * len(block.text.replace(" ", "")):
            return block.text
    return ""


# -- notebooks and PDF -------------------------------------------------------------------


def notebook_document(text: str) -> Document:
    """Blocks of a Jupyter notebook: markdown cells as Markdown, code cells as code, error outputs as code."""
    try:
        nb = json.loads(text)
        cells = nb.get("cells") if isinstance(nb, dict) else None
    except ValueError as exc:
        raise ValueError(f"not a notebook: {exc}") from None
    if not isinstance(cells, list):
        raise ValueError("not a notebook: no list of cells")
    blocks: list[Block] = []
    title = ""

    def source(value: object) -> str:
        return "".join(value) if isinstance(value, list) else str(value or "")

    for cell in cells:
        if not isinstance(cell, dict):
            continue
        body = source(cell.get("source"))
        if cell.get("cell_type") == "markdown":
            doc = markdown_document(body)
            title = title or doc.title
            blocks += doc.blocks
        elif cell.get("cell_type") == "code":
            if body.strip():
                blocks.append(Block("code", body.strip("\n"), lang="python"))
            for out in cell.get("outputs") or []:
                if isinstance(out, dict) and out.get("output_type") == "error":
                    blocks.append(Block("code", f"{out.get('ename', '')}: {out.get('evalue', '')}"))
    return Document(title, blocks)


def pdf_document(data: bytes) -> Document:
    """Blocks of a PDF: its text, with lines set larger than the body text taken as headings."""
    import io
    from collections import Counter

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        lines: list[tuple[str, float]] = []
        for page in reader.pages[:200]:
            parts: list[tuple[str, float]] = []

            def visit(text: str, cm, tm, font, size: float, parts=parts) -> None:
                scale = abs(tm[3]) if tm and tm[3] else 1.0
                if text.strip():
                    parts.append((text, float(size) * scale))

            page.extract_text(visitor_text=visit)
            for text, size in parts:
                for line in text.splitlines():
                    if line.strip():
                        lines.append((line.strip(), size))
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a readable PDF: {exc}") from None
    if not lines:
        return Document("", [])
    body = Counter(round(size) for _, size in lines).most_common(1)[0][0]
    sizes = sorted({round(s) for _, s in lines if round(s) > body * 1.15}, reverse=True)
    markdown = []
    for text, size in lines:
        level = sizes.index(round(size)) + 1 if round(size) in sizes else 0
        markdown += ["", f"{'#' * min(level, 6)} {text}", ""] if level else [text]
    return markdown_document("\n".join(markdown))


def read_document(path: Path) -> Document:
    """The blocks of one article file, by its suffix; the file name stands in for a missing title."""
    size = path.stat().st_size
    if size > MAX_ARTICLE_BYTES:
        raise ValueError(f"{size} bytes is more than the {MAX_ARTICLE_BYTES} an article may have")
    data = path.read_bytes()
    suffix = path.suffix.lower()
    text = "" if suffix == ".pdf" else data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\x00", "")
    if suffix == ".pdf":
        doc = pdf_document(data)
    elif suffix == ".ipynb":
        doc = notebook_document(text)
    elif suffix in (".html", ".htm"):
        doc = html_document(text)
    elif suffix == ".md":
        doc = markdown_document(text)
    else:
        doc = text_document(text)
    if not doc.title:
        doc.title = path.stem.replace("_", " ").replace("-", " ").strip() or path.name
    return doc
