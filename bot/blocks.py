"""Block Kit for every message the bot sends, each with a plain-text fallback.

Pure functions: knowledge-base entries, match results and check reports in; message dicts
out, always within Slack's limits (50 blocks a message, 100 in a Home tab, 3000 characters
a section, 150 a header, 75 a button label, 2000 a button value).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot.chat_command import HELP, HELP_TEXT
from bot.checks.registry import CHECKS, related_check
from bot.checks.result import CheckReport, CheckResult
from bot.render_text import answer_text, numbered, status_label
from bot.service import FEEDBACK_REASONS, NO_ENTRY
from kb.matcher import Match, MatchResult
from kb.params import confidence_label
from kb.redact import redact
from kb.redact import scrub as scrub_text
from kb.schema import Entry, SourceRef
from kb.store import KnowledgeBase

if TYPE_CHECKING:
    from bot.service import Reply
    from bot.state import StateSummary

MAX_BLOCKS = 50
MAX_HOME_BLOCKS = 100
MAX_TEXT = 3000
MAX_HEADER = 150
MAX_BUTTON = 75
MAX_VALUE = 2000
MAX_CONTEXT = 2000
MAX_FALLBACK = 3000
MAX_SELECT_OPTIONS = 100  # a static_select holds at most 100 options
MAX_METADATA = 3000  # a view's private_metadata
# Below this a candidate rests on a loose title resemblance only ("hello there" -> some title):
# offering it as "closest" would mislead more than help.
CANDIDATE_FLOOR = 0.15

# action_ids: the app registers one listener per id.
ACTION_FIXED = "feedback_fixed"
ACTION_NOT_IT = "feedback_not_it"
ACTION_RUN_CHECK = "run_check"
ACTION_CANDIDATES = "show_candidates"
ACTION_SHOW_ENTRY = "show_entry"
ACTION_FEEDBACK = "answer_feedback"  # the native 👍/👎 (feedback_buttons)
ACTION_ESCALATE = "escalate"
FEEDBACK_BLOCK = "answer_feedback"
FEEDBACK_VIEW = "feedback_reason"  # the callback_id of the 👎 modal
ANSWER_ACTIONS_BLOCK = "answer_actions"
FEEDBACK_ACK_BLOCK = "feedback_ack"
VERDICTS = {ACTION_FIXED: "fixed", ACTION_NOT_IT: "not_it"}
ACTION_ADD_TO_KB = "add_to_kb"  # on an answer someone said fixed it (bot/slack_curation.py)
ADD_TO_KB_BLOCK = "add_to_kb"


@dataclass
class SlackMessage:
    """A message body: `text` is the notification and accessibility fallback."""

    text: str
    blocks: list[dict] = field(default_factory=list)

    def kwargs(self) -> dict[str, object]:
        return {"text": self.text, "blocks": self.blocks}


# -- text helpers ------------------------------------------------------------------------

_MD_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("bold", re.compile(r"\*\*([^*\n]{1,200})\*\*"), r"*\1*"),
    ("link", re.compile(r"\[([^\]\n]{1,200})\]\((https?://[^)\s]{1,1000})\)"), r"<\2|\1>"),
)


def escape(text: str) -> str:
    """Slack's three control characters, escaped as Slack asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str) -> str:
    """Guide Markdown to Slack mrkdwn: escape, then bold and links."""
    text = escape(text)
    for _name, pattern, repl in _MD_RULES:
        text = pattern.sub(repl, text)
    return text


def truncate(text: str, limit: int, tail: str = "…") -> str:
    return text if len(text) <= limit else text[: limit - len(tail)] + tail


def _section(text: str, **extra: object) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_TEXT)}, **extra}


def _context(*texts: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(t, MAX_CONTEXT)} for t in texts[:10]]}


def _header(text: str) -> dict:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, MAX_HEADER), "emoji": True}}


def _button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict:
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": truncate(text, MAX_BUTTON), "emoji": True},
        "action_id": action_id,
        "value": value[:MAX_VALUE],
    }
    if style:
        button["style"] = style
    return button


def _code(code: str, limit: int = MAX_TEXT) -> str:
    body = escape(code.rstrip()).replace("```", "'''")
    return "```\n" + truncate(body, limit - 9, "\n…") + "\n```"


def _listed(title: str, lines: str) -> str:
    """A titled list that fits one section, cutting at a line boundary."""
    text = f"*{title}*\n{lines}"
    if len(text) <= MAX_TEXT:
        return text
    cut = text[: MAX_TEXT - 40].rsplit("\n", 1)[0]
    return cut + "\n…(more in `gemini-kb show`)"


def _link(url: str) -> str:
    parts = urlsplit(url)
    label = (parts.netloc + parts.path).rstrip("/") or url
    return f"<{url}|{escape(truncate(label, 80))}>"


def _source(title: str, path: str) -> str:
    label = escape(truncate(title or path, 100))
    return f"<{path}|{label}>" if path.startswith(("http://", "https://")) else label


def fit(blocks: list[dict], limit: int = MAX_BLOCKS) -> list[dict]:
    """Keep within the block limit, dropping from the middle so the header and the buttons stay."""
    if len(blocks) <= limit:
        return blocks
    keep_tail = 2
    return [*blocks[: limit - keep_tail - 1], _context("…(shortened)"), *blocks[-keep_tail:]]


def status_line(entry: Entry) -> str:
    parts = [f"`{entry.id}`", status_label(entry), f"retry helps: {entry.retryable}"]
    if not entry.reviewed:
        parts.append("unreviewed")
    return " · ".join(parts)


# -- answers -----------------------------------------------------------------------------


def entry_blocks(entry: Entry) -> list[dict]:
    """The essentials of an entry: title and status, cause, fix, code, links, other sources."""
    blocks = [_header(entry.title), _context(status_line(entry))]
    if entry.summary:
        blocks.append(_section(mrkdwn(entry.summary)))
    if entry.causes:
        blocks.append(_section(_listed("Likely cause", "\n".join(f"• {mrkdwn(c)}" for c in entry.causes))))
    if entry.fix:
        blocks.append(_section(_listed("Fix", numbered([mrkdwn(s) for s in entry.fix], indent=""))))
    if entry.example:
        blocks.append(
            _section(f"*Example* ({escape(entry.example_lang or 'code')})\n" + _code(entry.example, MAX_TEXT - 40))
        )
    links = [_link(d) for d in entry.docs[:6]]
    if links:
        blocks.append(_context("Docs: " + " · ".join(links)))
    articles = [s for s in entry.sources if s.kind != "guide"]
    if articles:
        blocks.append(_section(_also_described_in(articles)))
    return blocks


def _also_described_in(sources: list[SourceRef], *, limit: int = 3) -> str:
    """Articles that also cover the entry: title, section, and their first steps or answer."""
    lines = ["*Also described in:*"]
    for source in sources[:limit]:
        where = f" › {escape(truncate(source.section, 80))}" if source.section else ""
        lines.append(f"• _{_source(source.title, source.path)}_{where}")
        advice = source.advice
        for item in (advice.get("fix") or advice.get("causes") or [])[:2]:
            lines.append(f"    ◦ {mrkdwn(truncate(str(item), 200))}")
        for pair in advice.get("faq", [])[:1]:
            if isinstance(pair, dict):
                question, answer = truncate(pair.get("q", ""), 150), truncate(pair.get("a", ""), 250)
                lines.append(f"    ◦ _{escape(question)}_ {escape(answer)}")
    if len(sources) > limit:
        lines.append(f"…and {len(sources) - limit} more")
    return truncate("\n".join(lines), MAX_TEXT)


def _answer_value(top: Match, others: list[Match], model: str | None) -> str:
    data: dict[str, object] = {"e": top.id, "c": top.score, "o": [[m.id, m.score] for m in others]}
    if model:
        data["m"] = model[:100]
    return json.dumps(data, separators=(",", ":"))


def feedback_block(entry_id: str, score: float | None) -> dict:
    """Slack's native 👍/👎 (a feedback_buttons element, which lives only in a context_actions block)."""

    def value(vote: str) -> str:
        data: dict[str, object] = {"v": vote, "e": entry_id}
        if score is not None:
            data["c"] = round(score, 3)
        return json.dumps(data, separators=(",", ":"))

    def button(emoji: str, vote: str, label: str) -> dict:
        return {"text": {"type": "plain_text", "text": emoji}, "value": value(vote), "accessibility_label": label}

    return {
        "type": "context_actions",
        "block_id": FEEDBACK_BLOCK,
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": ACTION_FEEDBACK,
                "positive_button": button("👍", "up", "This answer helped"),
                "negative_button": button("👎", "down", "This answer was wrong: tell us why"),
            }
        ],
    }


def escalate_button(entry_id: str) -> dict:
    return _button("Escalate to on-call", ACTION_ESCALATE, json.dumps({"e": entry_id}), style="danger")


def low_confidence(result: MatchResult) -> bool:
    """An answer worth a human look: nothing confident, or a match below "high"."""
    top = result.top
    return top is None or not result.confident or confidence_label(top.score) != "high"


def answer_message(result: MatchResult, kb: KnowledgeBase, *, escalate: bool = False) -> SlackMessage:
    """The reply to a paste: the matched entry, or an honest 'no match' with the closest candidates.

    Every answer carries 👍/👎; `escalate` (an on-call group is set) adds Escalate to low-confidence ones."""
    top = result.top
    if top is None or not result.confident:
        return no_match_message(result, kb, escalate=escalate)
    entry = kb.entries[top.id]
    others = result.matches[1:]
    blocks = entry_blocks(entry)
    blocks.append(
        _context(
            f"Why: {escape(top.why or 'signature match')} · confidence {top.score:.2f} ({confidence_label(top.score)})"
        )
    )
    model = result.signals.models[0] if result.signals.models else None
    value = _answer_value(top, others, model)
    buttons = [_button("Fixed it", ACTION_FIXED, value, style="primary")]
    check = related_check(entry.id, entry.http_status, model=model)
    if check:
        label = check.button.format(model=model) or f"Run {check.name} check"
        wanted = {"k": check.name, "m": model} if model else {"k": check.name}
        buttons.append(_button(label, ACTION_RUN_CHECK, json.dumps(wanted)))
    if others:
        buttons.append(_button(f"Other candidates ({len(others)})", ACTION_CANDIDATES, value))
    if escalate and low_confidence(result):
        buttons.append(escalate_button(top.id))
    blocks.append({"type": "actions", "block_id": ANSWER_ACTIONS_BLOCK, "elements": buttons})
    blocks = fit(blocks, MAX_BLOCKS - 1)
    blocks.append(feedback_block(top.id, top.score))
    return SlackMessage(fallback_text(result, kb), blocks)


def no_match_message(result: MatchResult, kb: KnowledgeBase, *, escalate: bool = False) -> SlackMessage:
    """Say plainly that nothing matched, show the closest candidates and what to try next."""
    reason = result.abstain_reason or "nothing in the message matches a known error"
    blocks: list[dict] = [_section(f":mag: I couldn't match this to a known Gemini API error ({escape(reason)}).")]
    candidates = [m for m in result.matches if m.score >= CANDIDATE_FLOOR]
    if candidates:
        blocks.append(_section(candidates_text(candidates, kb)))
        blocks.append(
            {
                "type": "actions",
                "block_id": "candidate_actions",
                "elements": [_button(f"Show {m.id}", ACTION_SHOW_ENTRY, m.id) for m in candidates[:5]],
            }
        )
    blocks.append(
        _context(
            "Paste the whole error body or the last lines of the traceback, "
            "or run `/gemini-check` to test the API key and the endpoint."
        )
    )
    top = result.top
    if escalate:
        blocks.append({"type": "actions", "block_id": "escalate_actions", "elements": [escalate_button(NO_ENTRY)]})
    blocks.append(feedback_block(NO_ENTRY, top.score if top else None))
    return SlackMessage(fallback_text(result, kb), blocks)


def candidates_text(matches: list[Match], kb: KnowledgeBase) -> str:
    lines = []
    for m in matches[:5]:
        entry = kb.entries.get(m.id)
        label = status_label(entry) if entry else ""
        why = f" — {escape(truncate(m.why, 200))}" if m.why else ""
        lines.append(f"• *{escape(m.title)}* (`{m.id}`, {label}, {m.score:.2f}){why}")
    return _listed("Closest candidates", "\n".join(lines))


def candidates_message(candidates: list[tuple[str, float]], kb: KnowledgeBase) -> SlackMessage:
    """The other candidates of an answer, on request (from the button's stored ids and scores)."""
    matches = [Match(eid, kb.entries[eid].title, score, "") for eid, score in candidates if eid in kb.entries]
    if not matches:
        return SlackMessage("No other candidates.", [_section("No other candidates.")])
    blocks = [
        _section(candidates_text(matches, kb)),
        {
            "type": "actions",
            "block_id": "candidate_actions",
            "elements": [_button(f"Show {m.id}", ACTION_SHOW_ENTRY, m.id) for m in matches[:5]],
        },
    ]
    return SlackMessage("Other candidates: " + ", ".join(m.id for m in matches), blocks)


def entry_message(entry: Entry) -> SlackMessage:
    """One entry in full essentials (from a Show button or a lookup by id)."""
    return SlackMessage(f"{entry.title} ({entry.id}, {status_label(entry)})", fit(entry_blocks(entry)))


def fallback_text(result: MatchResult, kb: KnowledgeBase) -> str:
    """The console's text answer, minus the secret warning (that goes to the poster alone)."""
    quiet = dataclasses.replace(result, secrets_found=False, secret_kinds=[])
    return truncate(answer_text(quiet, kb).strip(), MAX_FALLBACK)


def secret_warning(kinds: list[str]) -> SlackMessage:
    """Ephemeral, to the poster only."""
    what = ", ".join(kinds) or "a secret"
    text = (
        f":warning: Your message contains a secret ({escape(what)}). I did not repeat it, but everyone in "
        "the conversation can read your message: delete it, then rotate the key now "
        "(https://aistudio.google.com/apikey for Gemini API keys) and update wherever it is used."
    )
    return SlackMessage(text, [_section(text)])


def feedback_acknowledged(blocks: list[dict], *, user: str, verdict: str, entry_id: str = "") -> list[dict]:
    """The answer's blocks with the feedback buttons replaced by a thank-you line (and, once it fixed it, an
    "Add to KB" button for `entry_id`)."""
    out: list[dict] = []
    for block in blocks:
        if block.get("block_id") in (FEEDBACK_ACK_BLOCK, ADD_TO_KB_BLOCK):
            continue
        if block.get("type") == "actions" and block.get("block_id") == ANSWER_ACTIONS_BLOCK:
            rest = [e for e in block.get("elements", []) if e.get("action_id") not in VERDICTS]
            if rest:
                out.append({**block, "elements": rest})
            continue
        out.append(block)
    if verdict == "fixed":
        note = f":white_check_mark: <@{user}> says this fixed it. Thanks for telling us!"
    else:
        note = f":memo: <@{user}> says this was not it. Noted; try the other candidates or `/gemini-check`."
    out.append({"type": "context", "block_id": FEEDBACK_ACK_BLOCK, "elements": [{"type": "mrkdwn", "text": note}]})
    if verdict == "fixed" and entry_id:
        out.append(add_to_kb_block(entry_id))
    return fit(out)


def add_to_kb_block(entry_id: str) -> dict:
    """Offered once someone says an answer fixed it: propose the thread's error as a signature of `entry_id`."""
    value = json.dumps({"e": entry_id})
    return {"type": "actions", "block_id": ADD_TO_KB_BLOCK, "elements": [_button("Add to KB", ACTION_ADD_TO_KB, value)]}


def _plain(text: str, limit: int = MAX_BUTTON) -> dict:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def feedback_view(kb: KnowledgeBase, *, entry_id: str, metadata: str) -> dict:
    """The modal a 👎 opens: why the answer was wrong, the family it really was, a note.

    `metadata` (the answer's channel, ts and entry) comes back in the view_submission as private_metadata."""
    answered = kb.entries.get(entry_id)
    about = f"*{escape(answered.title)}* (`{answered.id}`)" if answered else "an answer that matched nothing"
    families = sorted(kb.entries.values(), key=lambda e: e.title.lower())[:MAX_SELECT_OPTIONS]
    return {
        "type": "modal",
        "callback_id": FEEDBACK_VIEW,
        "private_metadata": metadata[:MAX_METADATA],
        "title": _plain("What was wrong?", 24),
        "submit": _plain("Send", 24),
        "close": _plain("Cancel", 24),
        "blocks": [
            _section(f"You said the answer {about} did not help. What was wrong with it?"),
            {
                "type": "input",
                "block_id": "reason",
                "label": _plain("Reason"),
                "element": {
                    "type": "radio_buttons",
                    "action_id": "reason",
                    "options": [{"text": _plain(label), "value": rid} for rid, label in FEEDBACK_REASONS.items()],
                },
            },
            {
                "type": "input",
                "block_id": "family",
                "optional": True,
                "label": _plain("Which error family was it really?"),
                "element": {
                    "type": "static_select",
                    "action_id": "family",
                    "placeholder": _plain("Pick a family"),
                    "options": [{"text": _plain(e.title), "value": e.id} for e in families],
                },
            },
            {
                "type": "input",
                "block_id": "note",
                "optional": True,
                "label": _plain("Anything else? (keys are removed before it is stored)"),
                "element": {"type": "plain_text_input", "action_id": "note", "multiline": True, "max_length": 1000},
            },
        ],
    }


def escalation_message(group: str, user: str, entry_id: str, kb: KnowledgeBase) -> SlackMessage:
    """The on-call page, in the answer's thread."""
    entry = kb.entries.get(entry_id)
    what = f"the answer ({escape(entry.title)}, `{entry.id}`) is not confident" if entry else "nothing matched"
    text = f"<!subteam^{group}> <@{user}> asks on-call to look at this error: {what}."
    return SlackMessage(text, [_section(text)])


# -- checks ------------------------------------------------------------------------------


def _result_text(r: CheckResult) -> str:
    mark = ":white_check_mark:" if r.ok else ":x:"
    took = f" · {r.latency_ms:.0f} ms" if r.latency_ms is not None else ""
    lines = [f"{mark} *{escape(r.name)}*{took}"]
    if r.detail:
        lines.append(escape(truncate(redact(r.detail)[0], 900)))
    if not r.ok and r.entry_id:
        lines.append(f"→ *{escape(r.entry_title or r.entry_id)}* (`{r.entry_id}`)")
        if r.fix:
            lines.append(numbered([mrkdwn(redact(s)[0]) for s in r.fix[:4]], indent=""))
    return "\n".join(lines)


def check_report_message(report: CheckReport, kinds: list[str], *, requested_by: str | None = None) -> SlackMessage:
    """The result of /gemini-check: one section per check, each failure explained by its entry."""
    what = ", ".join(CHECKS[k].title if k in CHECKS else k for k in kinds) or "Checks"
    failed = [r for r in report.results if not r.ok]
    verdict = "all passed" if report.ok else f"{len(failed)} of {len(report.results)} failed"
    blocks = [_header(f"{what} check: {verdict}")]
    meta = []
    if report.target:
        meta.append(f"Target: `{escape(redact(report.target)[0])}`")
    if requested_by:
        meta.append(f"Requested by <@{requested_by}>")
    if meta:
        blocks.append(_context(" · ".join(meta)))
    for r in report.results[: MAX_BLOCKS - 4]:
        blocks.append(_section(_result_text(r)))
    blocks.append(_context("`/gemini-check help` lists every check."))
    lines = [f"{what} check: {verdict}"]
    lines += [f"{'ok' if r.ok else 'FAILED'} {r.name}: {redact(r.detail)[0]}" for r in report.results]
    return SlackMessage(truncate("\n".join(lines), MAX_FALLBACK), fit(blocks))


def notice_message(text: str, *, fallback: str | None = None) -> SlackMessage:
    """A one-paragraph reply (help, rate limited, timed out, usage)."""
    return SlackMessage(fallback or text, [_section(text)])


# -- App Home ----------------------------------------------------------------------------


def quick_reference_blocks(kb: KnowledgeBase) -> list[dict]:
    """One section per status (`429 RESOURCE_EXHAUSTED`), listing its families."""
    groups: dict[str, list[Entry]] = {}
    order = sorted(kb.entries.values(), key=lambda e: (e.http_status is None, e.http_status or 0, e.status or "", e.id))
    for entry in order:
        groups.setdefault(status_label(entry), []).append(entry)
    out = []
    for label, entries in groups.items():
        lines = "\n".join(f"• `{e.id}` {escape(e.title)}" + ("" if e.reviewed else " _(unreviewed)_") for e in entries)
        out.append(_section(_listed(escape(label), lines)))
    return out


def quick_reference_message(kb: KnowledgeBase) -> SlackMessage:
    body = [_header("Gemini API errors: quick reference"), *quick_reference_blocks(kb)]
    return SlackMessage("Gemini API errors: quick reference", fit(body))


def home_view(kb: KnowledgeBase, summary: StateSummary, *, curation: list[dict] | None = None) -> dict:
    """The App Home tab: activity of the last days, then (for a maintainer) the `curation` queue, then the quick
    reference grouped by status."""
    blocks: list[dict] = [_header("Gemini API errors: quick reference")]
    names = {eid: e.title for eid, e in kb.entries.items()}
    activity = [
        f"*Last {summary.days} days*: {summary.pastes} errors looked up, "
        f"{summary.unmatched} with no match, {summary.checks} checks run ({summary.checks_failed} failed)."
    ]
    if summary.top_entries:
        activity.append("*Most frequent*")
        activity += [
            f"{i}. {escape(names.get(e, e))} (`{e}`) × {n}" for i, (e, n) in enumerate(summary.top_entries[:5], 1)
        ]
    blocks.append(_section("\n".join(activity)))
    blocks.append(
        _context(
            "Paste an error in a channel I'm in, mention me, or DM me. "
            "`/gemini-check` tests the API key and the endpoint; `/gemini-check <error text>` looks it up."
        )
    )
    blocks.append({"type": "divider"})
    blocks += curation or []
    blocks += quick_reference_blocks(kb)
    blocks.append(_context(f"Knowledge base {escape(kb.version())} · {len(kb.entries)} entries"))
    return {"type": "home", "blocks": fit(blocks, MAX_HOME_BLOCKS)}


# -- secrets -----------------------------------------------------------------------------


def scrub(message: SlackMessage, secret: str | None) -> SlackMessage:
    """The message with every occurrence of `secret` replaced by its mask (defence in depth)."""
    if not secret:
        return message
    blocks = json.loads(scrub_text(json.dumps(message.blocks), (json.dumps(secret)[1:-1],), redact_rest=False))
    return SlackMessage(scrub_text(message.text, (secret,), redact_rest=False), blocks)


def reply_message(reply: Reply, kb: KnowledgeBase, *, requested_by: str | None = None) -> SlackMessage:
    """A command's reply as a Slack message."""
    if reply.kind == "help":
        return notice_message(HELP, fallback=HELP_TEXT)
    if reply.kind == "list":
        return quick_reference_message(kb)
    if reply.kind == "entry" and reply.entry is not None:
        return entry_message(reply.entry)
    if reply.kind == "answer" and reply.result is not None:
        message = answer_message(reply.result, kb)
        if reply.result.secrets_found:
            warning = secret_warning(reply.result.secret_kinds)
            message = SlackMessage(message.text, warning.blocks + message.blocks)
        return message
    outcome = reply.report_outcome
    if reply.kind == "report" and outcome is not None and outcome.report is not None:
        message = check_report_message(outcome.report, list(reply.kinds), requested_by=requested_by)
    else:
        message = notice_message(reply.text)
    return scrub(message, reply.key)
