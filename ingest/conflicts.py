"""Claims in an article that contradict the curated guide of the family they attach to.

A declared table of named rules, each checked against the family's curated facts (its status code
and name, and lines of its guide). A claim that breaks a rule is taken out of the advice the article
adds and listed as a conflict, with the guide's line beside it, so a reviewer sees both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kb.signals import REASON_PHRASES, STATUS_CODES

if TYPE_CHECKING:
    from kb.store import Entry

# Caller roles that exist for Vertex AI / Gemini; roles the curated guides name are added to these.
KNOWN_ROLES = frozenset(
    {
        "roles/aiplatform.user",
        "roles/aiplatform.admin",
        "roles/aiplatform.viewer",
        "roles/aiplatform.expressUser",
        "roles/serviceusage.serviceUsageConsumer",
        "roles/serviceusage.serviceUsageAdmin",
        "roles/owner",
        "roles/editor",
        "roles/viewer",
        "roles/iam.serviceAccountUser",
        "roles/iam.serviceAccountTokenCreator",
    }
)
ROLE_RE = re.compile(r"\broles/[A-Za-z][\w.]{2,80}")
CODE_CLAIM_RE = re.compile(
    r"(?<![\w.])([45]\d\d)(?![\w.])\s*(?:\(|:|-|—)?\s*("
    + "|".join(sorted(STATUS_CODES, key=len, reverse=True))
    + "|"
    + "|".join(p.replace(" ", r"\s") for p in REASON_PHRASES)
    + r")?",
    re.I,
)
PER_KEY_RE = re.compile(
    r"\b(?:limits?|quotas?|requests?|tokens?|rpm|rpd|tpm)\b[^.]{0,80}\bper (?:api )?key\b|"
    r"\b(?:multiple|more|several|extra|additional|\d+) (?:api )?keys\b[^.]{0,80}"
    r"\b(?:quotas?|limits?|requests|speed|throughput|\d+ ?x)\b|\bnew (?:api )?key\b[^.]{0,20}\bnew quota\b|"
    r"\b(?:each|every) (?:api )?key\b[^.]{0,60}\b(?:limits?|quotas?)\b|"
    r"\bsecond key\b[^.]{0,40}\bdoubles?\b",
    re.I,
)
NOT_PER_KEY_RE = re.compile(r"\bnot (?:per|by) (?:api )?key\b|\bper project\b", re.I)


@dataclass(frozen=True)
class Conflict:
    """One claim that contradicts a family's guide."""

    entry_id: str
    rule: str
    claim: str
    guide: str  # the curated fact or guide line it contradicts
    section: str = ""

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


def _guide_line(entry: Entry, pattern: str) -> str:
    for line in [entry.summary, *entry.causes, *entry.fix, *entry.diagnosis, entry.notes]:
        for sentence in re.split(r"(?<=[.!?])\s+|\n", line):
            found = re.search(pattern, sentence, re.I)
            if found:  # the part of a long line around what it says, so it fits beside the claim
                start = max(0, found.start() - 70)
                return ("…" if start else "") + sentence[start : found.end() + 70].strip()
    return ""


def _status_claim(text: str, entry: Entry, *, identifying: bool) -> str | None:
    """The guide's status when `text` gives this family another one (codes named with their status)."""
    if entry.http_status is None:
        return None
    codes = [(int(m.group(1)), m.group(2)) for m in CODE_CLAIM_RE.finditer(text)]
    if not codes or any(code == entry.http_status for code, _ in codes):
        return None
    # In running text a code counts as a claim only with its status name or phrase beside it.
    claimed = [code for code, named in codes if identifying or named]
    if not claimed:
        return None
    return f"{entry.id}: HTTP {entry.http_status} {entry.status or ''}".strip()


def _per_key(text: str, entry: Entry) -> str | None:
    if entry.status != "RESOURCE_EXHAUSTED" or not PER_KEY_RE.search(text) or NOT_PER_KEY_RE.search(text):
        return None
    return _guide_line(entry, r"per project") or "limits apply per project, not per API key"


def _make_role_rule(known: frozenset[str]) -> Callable[[str, Entry], str | None]:
    def rule(text: str, entry: Entry) -> str | None:
        unknown = [r.rstrip(".") for r in ROLE_RE.findall(text) if r.rstrip(".") not in known]
        if not unknown:
            return None
        return _guide_line(entry, r"roles/") or f"known caller roles: {', '.join(sorted(known)[:3])}"

    return rule


@dataclass(frozen=True)
class Rule:
    """A named contradiction: `check(text, entry)` returns the guide fact it breaks, or None."""

    name: str
    check: Callable[[str, Entry], str | None]
    describes: str


def rules(entries: dict[str, Entry]) -> tuple[Rule, ...]:
    """The contradiction rules, with the roles the curated guides name counted as known."""
    texts = [t for e in entries.values() for t in [e.summary, *e.causes, *e.fix]]
    named = {r.rstrip(".") for t in texts for r in ROLE_RE.findall(t)}
    return (
        Rule("http-status", lambda t, e: _status_claim(t, e, identifying=False), "gives the error another status"),
        Rule("limits-per-key", _per_key, "says limits count per API key"),
        Rule("iam-role-unknown", _make_role_rule(KNOWN_ROLES | named), "names an IAM role callers cannot use"),
    )


def heading_conflict(text: str, entry: Entry, section: str) -> Conflict | None:
    """A status the heading or a row's cells give the family that its guide does not."""
    fact = _status_claim(text, entry, identifying=True)
    return Conflict(entry.id, "http-status", text[:200], fact, section) if fact else None


def check_items(
    items: list[str], entry: Entry, table: tuple[Rule, ...], section: str
) -> tuple[list[str], list[Conflict]]:
    """Split advice items into those kept and the conflicts found in the others."""
    kept, found = [], []
    for item in items:
        hit = next(((rule, fact) for rule in table if (fact := rule.check(item, entry))), None)
        if hit:
            found.append(Conflict(entry.id, hit[0].name, item[:300], hit[1], section))
        else:
            kept.append(item)
    return kept, found
