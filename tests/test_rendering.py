"""How guide Markdown reads in the terminal and in Slack (issue 11): no raw **bold**, no ids cut at
their hyphens, no line breaks in the middle of a sentence."""

from __future__ import annotations

import re
import textwrap

from bot import blocks
from bot.checks.render import report_text
from bot.checks.result import CheckReport, CheckResult
from bot.render_text import entry_text

FENCE = re.compile(r"^\s*(```|~~~)")
STARTS_BLOCK = re.compile(r"^\s*(?:[-*•◦]|\d+[.)]|\||```|~~~|>)")
# A hyphenated id or word cut by the wrapper leaves a line ending in a letter or digit plus "-".
CUT_AT_HYPHEN = re.compile(r"[A-Za-z0-9]-$")


def mid_sentence_breaks(text: str) -> list[str]:
    """Lines that only continue the sentence of the line before (the source file's hard wrapping)."""
    found, previous, in_fence = [], "", False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            previous = ""
            continue
        if in_fence:
            continue
        continues = previous.strip() and line.strip() and not STARTS_BLOCK.match(line)
        if continues and not previous.rstrip().endswith((":", "*")):
            found.append(line)
        previous = line
    return found


def section_texts(message_blocks: list[dict]) -> list[str]:
    """The prose of the sections (code blocks left out: `2**attempt` there is Python, not bold)."""
    texts = [b["text"]["text"] for b in message_blocks if b.get("type") == "section"]
    return [re.sub(r"```.*?```", "", t, flags=re.S) for t in texts]


def prose(entry) -> str:
    """The terminal text of an entry without its code example."""
    return entry_text(entry).replace(textwrap.indent(entry.example, "    "), "")


def test_slack_entries_have_no_raw_bold_and_no_hard_line_breaks(kb):
    bold, breaks = [], []
    for entry in kb.entries.values():
        for text in section_texts(blocks.entry_blocks(entry)):
            bold += [entry.id] if "**" in text else []
            breaks += [(entry.id, line) for line in mid_sentence_breaks(text)]
    assert bold == []
    assert breaks == []


def test_console_entries_have_no_raw_bold(kb):
    assert [e.id for e in kb.entries.values() if "**" in prose(e)] == []


def test_console_wrapping_never_cuts_at_a_hyphen(kb):
    cut = []
    for entry in kb.entries.values():
        for line in prose(entry).splitlines():
            if CUT_AT_HYPHEN.search(line.rstrip()):
                cut.append((entry.id, line))
    assert cut == []


def test_console_text_keeps_every_id_whole(kb):
    entry = kb.entries["model-retired"]
    text = " ".join(entry_text(entry).split())
    for model_id in re.findall(r"gemini-[0-9][\w.-]*[\w]", entry.summary + " ".join(entry.fix)):
        assert model_id in text


def test_check_report_wraps_details_without_cutting_ids():
    ids = ["dns-or-connect-failure", "tls-or-proxy-error", "method-not-supported", "gemini-flash-lite-preview"] * 3
    detail = "explained by " + ", ".join(ids)
    report = CheckReport([CheckResult("endpoint.tls", False, 12.0, detail)], "key AIza…abc · https://x")
    lines = report_text(report, width=72).splitlines()
    assert not [line for line in lines if CUT_AT_HYPHEN.search(line.rstrip())]
    assert all(i in " ".join(lines) for i in ids)
