"""Block Kit for curation: the maintainers' part of the App Home (misses queue, signature proposals) and the
weekly digest. Pure functions, within Slack's limits like `bot.blocks`."""

from __future__ import annotations

import json
from typing import Any

from bot.blocks import SlackMessage, _button, _context, _header, _section, escape, truncate
from bot.curation import Digest, day_of
from kb.store import KnowledgeBase

ACTION_LABEL = "curation_label"
ACTION_DISMISS = "curation_dismiss"
ACTION_ADD_SIGNATURE = "curation_add_signature"
ACTION_APPROVE = "curation_approve"
ACTION_REJECT = "curation_reject"
HOME_MISSES = 8  # misses shown at once (each takes 3 blocks; the Home tab holds 100 in all)
HOME_PROPOSALS = 8
MAX_OPTIONS = 100  # a static select's limit
SNIPPET_CHARS = 600


def _snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    body = escape(truncate(text.strip() or "(no text kept)", limit)).replace("```", "'''")
    return f"```\n{body}\n```"


def _option(family: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": truncate(family, 75)}, "value": family}


def label_select(miss: dict[str, Any], kb: KnowledgeBase) -> dict[str, Any]:
    """A select of family ids, the miss's candidates first (a static select holds 100 options)."""
    families = [c for c in miss.get("candidates") or [] if c in kb.entries]
    families += sorted(f for f in kb.entries if f not in families)
    select: dict[str, Any] = {
        "type": "static_select",
        "action_id": ACTION_LABEL,
        "placeholder": {"type": "plain_text", "text": "Label: pick a family"},
        "options": [_option(f) for f in families[:MAX_OPTIONS]],
    }
    if miss.get("label") in families[:MAX_OPTIONS]:
        select["initial_option"] = _option(miss["label"])
    return select


def _miss_blocks(miss: dict[str, Any], kb: KnowledgeBase) -> list[dict]:
    mid = int(miss["id"])
    where = f"<#{escape(miss['channel'])}>" if miss.get("channel") else "a DM or the console"
    head = f"*Miss {mid}* · {escape(miss['kind'].replace('_', ' '))} in {where} · {day_of(float(miss['at']))}"
    said = f"Bot: {escape(truncate(miss['bot_said'], 300))}"
    if miss.get("person_said"):
        said += f"\nPerson: {escape(truncate(miss['person_said'], 300))}"
    if miss.get("label"):
        said += f"\nLabelled `{escape(miss['label'])}`"
    value = json.dumps({"m": mid})
    return [
        _section(f"{head}\n{_snippet(miss['text'])}\n{said}"),
        {
            "type": "actions",
            "block_id": f"miss:{mid}",
            "elements": [
                label_select(miss, kb),
                _button("Add as signature", ACTION_ADD_SIGNATURE, value, style="primary"),
                _button("Dismiss", ACTION_DISMISS, value, style="danger"),
            ],
        },
    ]


def _proposal_blocks(proposal: dict[str, Any]) -> list[dict]:
    pid = int(proposal["id"])
    head = (
        f"*Proposal {pid}* · new signature of `{escape(proposal['entry_id'])}` · "
        f"from slack:{escape(proposal['channel'])}/{escape(proposal['day'])}"
    )
    value = json.dumps({"p": pid})
    return [
        _section(f"{head}\n{_snippet(proposal['text'])}"),
        {
            "type": "actions",
            "block_id": f"proposal:{pid}",
            "elements": [
                _button("Approve", ACTION_APPROVE, value, style="primary"),
                _button("Reject", ACTION_REJECT, value, style="danger"),
            ],
        },
    ]


def curation_blocks(
    misses: list[dict[str, Any]], proposals: list[dict[str, Any]], kb: KnowledgeBase, *, notice: str = ""
) -> list[dict]:
    """The maintainers' queue for the App Home; `notice` says what their last click did."""
    blocks: list[dict] = [_header(f"Misses to review ({len(misses)} open)")]
    if notice:
        blocks.append(_context(f":information_source: {escape(notice)}"))
    if not misses:
        blocks.append(_context("Nothing queued: every error pasted lately got an answer nobody disputed."))
    for miss in misses[:HOME_MISSES]:
        blocks += _miss_blocks(miss, kb)
    if len(misses) > HOME_MISSES:
        blocks.append(_context(f"…and {len(misses) - HOME_MISSES} more: `gemini-kb misses` lists them all."))
    blocks.append(_header(f"Signature proposals ({len(proposals)} unreviewed)"))
    for proposal in proposals[:HOME_PROPOSALS]:
        blocks += _proposal_blocks(proposal)
    if len(proposals) > HOME_PROPOSALS:
        blocks.append(_context(f"…and {len(proposals) - HOME_PROPOSALS} more: `gemini-kb proposals`."))
    blocks.append(
        _context(
            "`gemini-kb misses --jsonl` exports labelled misses as corpus records; "
            "`gemini-kb ingest` builds approved proposals into the knowledge base."
        )
    )
    blocks.append({"type": "divider"})
    return blocks


def digest_message(digest: Digest, kb: KnowledgeBase) -> SlackMessage:
    """The weekly digest of one channel."""
    lines = [f"*Weekly digest* for the week {digest.week} (last 7 days)"]
    if digest.top:
        tops = ", ".join(
            f"{escape(kb.entries[e].title) if e in kb.entries else escape(e)} (`{escape(e)}`) × {n}"
            for e, n in digest.top
        )
        lines.append(f"• Top errors answered: {tops}")
    else:
        lines.append("• No errors answered here this week.")
    lines.append(f"• Misses: {digest.misses} ({digest.open} still waiting for a maintainer)")
    lines.append(f"• Checks: {digest.checks} run, {digest.checks_failed} failed")
    text = "\n".join(lines)
    blocks = [_section(text), _context("`/gemini-check digest off` stops this digest.")]
    return SlackMessage(text.replace("*", ""), blocks)
