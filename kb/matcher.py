"""Map a pasted error to knowledge-base entries, say why, and abstain when unsure.

Pipeline: clean -> redact -> cap -> signals -> normalise -> candidates (signal
index + FTS5) -> score (exact and fuzzy signature hits, status agreement,
model lifecycle, specialisation) -> calibrated confidence.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date

from rapidfuzz import fuzz

from kb.clean import cap, clean, collapse_frames
from kb.normalize import PLACEHOLDER, normalize, words
from kb.redact import redact
from kb.signals import Signals, extract
from kb.store import KnowledgeBase, SignatureRow

# Kinds matched as whole tokens against extracted signals rather than as text.
TOKEN_KINDS = ("reasons", "exceptions", "finish_reasons")
KIND_LABEL = {
    "messages": "message",
    "reasons": "reason",
    "exceptions": "exception",
    "finish_reasons": "finish reason",
    "quota_ids": "quota id",
    "prose": "described as",
    "model": "model",
}
# Evidence read off structured signals rather than signature text: (entry id, test, description).
# Strengths above 1 encode precedence: a zero limit outranks which quota was hit.
SIGNAL_EVIDENCE: tuple[tuple[str, Callable[[Signals], bool], float, Callable[[Signals], str]], ...] = (
    (
        "quota-zero-limit",
        lambda s: s.zero_quota and s.http_status in (429, None),
        1.5,
        lambda s: "quota limit is 0",
    ),
    (
        "method-not-supported",
        lambda s: s.unsupported_method is not None,
        1.2,
        lambda s: f"model does not support {s.unsupported_method}",
    ),
)
ERROR_CODE_RE = re.compile(r"[A-Z][A-Z0-9_]{5,60}")
FTS_WORDS = 24  # most specific words of a paste sent to FTS5
FTS_MIN_WORDS = 12  # sent even when they are common
FTS_COMMON_DF = 1000  # a word in more signatures than this is too common to retrieve with
FTS_ROWS = 120  # signature rows taken from FTS5
FUZZY_MIN_LEN = 14  # shorter signatures must match exactly
FUZZY_CUTOFF = 85.0
FUZZY_TEXT_CHARS = 6_000  # fuzzy scoring reads the head and tail of this size
CONFIDENT_SCORE = 0.6  # raw evidence score
CONFIDENT_MARGIN = 0.15
NOT_FOUND_WORDS = re.compile(
    r"\b404|not found|no longer available|not supported|deprecated|shut ?down|retired|does not exist", re.I
)


@dataclass(frozen=True)
class Match:
    """One candidate entry with its score in 0..1 and why it was chosen."""

    id: str
    title: str
    score: float
    why: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "score", round(self.score, 3))


@dataclass
class MatchResult:
    """The answer to a paste."""

    matches: list[Match]
    confident: bool
    secrets_found: bool
    secret_kinds: list[str] = field(default_factory=list)
    signals: Signals = field(default_factory=Signals)
    abstain_reason: str = ""

    @property
    def top(self) -> Match | None:
        return self.matches[0] if self.matches else None

    def as_dict(self) -> dict[str, object]:
        return {
            "confident": self.confident,
            "matches": [asdict(m) for m in self.matches],
            "secrets_found": self.secrets_found,
            "secret_kinds": self.secret_kinds,
            "signals": self.signals.as_dict(),
            "abstain_reason": self.abstain_reason,
        }


@dataclass
class _Evidence:
    """What speaks for one entry while scoring."""

    hits: list[tuple[float, str]] = field(default_factory=list)  # (strength, description)
    signature_best: float = 0.0  # best hit on a signature (not on the prose description)
    adjust: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def strength(self) -> float:
        ranked = sorted((s for s, _ in self.hits), reverse=True)
        if not ranked:
            return 0.0
        # The best hit counts in full; further hits add with diminishing weight.
        return ranked[0] + sum(s * 0.25 / (i + 1) for i, s in enumerate(ranked[1:4]))


def _template(norm: str) -> tuple[str, re.Pattern[str]] | None:
    """A signature with `<*>` parts as a bounded pattern (each `<*>` one short stretch), with its longest literal."""
    parts = norm.split(PLACEHOLDER)
    if len(parts) == 1:
        return None
    body = r"[^\n]{1,80}?".join(re.escape(p) for p in parts)
    return max(parts, key=len), re.compile(body)


@dataclass(frozen=True)
class _Paste:
    """One paste in the forms the scoring reads, computed once per match."""

    text: str  # cleaned, redacted, capped; case kept
    norm: str
    fuzzy_text: str  # head and tail of `norm`, bounded for rapidfuzz
    tokens: frozenset[str]  # lower-cased reasons, exception classes and finish reasons
    quota_ids: tuple[str, ...]


class Matcher:
    """Holds the in-memory indexes built from a knowledge base."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self.templates = {s.id: t for s in kb.signatures if (t := _template(s.norm)) is not None}
        self.token_index: dict[str, list[SignatureRow]] = defaultdict(list)
        self.quota_sigs: list[SignatureRow] = []
        self.df: dict[str, int] = defaultdict(int)
        for sig in kb.signatures:
            if sig.kind in TOKEN_KINDS:
                self.token_index[sig.text.lower()].append(sig)
            elif sig.kind == "quota_ids":
                self.quota_sigs.append(sig)
            for word in words(sig.norm):
                self.df[word] += 1
        self.children: dict[str, list[str]] = defaultdict(list)
        for entry in kb.entries.values():
            if entry.specialises:
                self.children[entry.specialises].append(entry.id)
        # The broadest family of each status: what a bare `429 RESOURCE_EXHAUSTED` is about.
        self.status_roots: dict[str, list[str]] = defaultdict(list)
        self.http_roots: dict[int, list[str]] = defaultdict(list)
        for entry in kb.entries.values():
            parent = kb.entries.get(entry.specialises or "")
            if entry.status and (parent is None or parent.status != entry.status):
                self.status_roots[entry.status].append(entry.id)
            if entry.http_status and (parent is None or parent.http_status != entry.http_status):
                self.http_roots[entry.http_status].append(entry.id)

    # -- candidates ---------------------------------------------------------------------

    def _fts_query(self, norm: str) -> str:
        """An FTS5 query of the paste's most specific words, each quoted: no FTS5 syntax can get through."""
        known = sorted((w for w in words(norm) if w in self.df), key=lambda w: self.df[w])
        # Words found in very many signatures retrieve everything and rank nothing: keep the rare ones,
        # and always at least a few, so a large knowledge base still finds candidates.
        rare = [w for w in known if self.df[w] <= FTS_COMMON_DF]
        chosen = rare[:FTS_WORDS] if len(rare) >= FTS_MIN_WORDS else known[:FTS_MIN_WORDS]
        return " OR ".join(f'"{w}"' for w in chosen)

    def _candidates(self, norm: str, signals: Signals) -> tuple[list[SignatureRow], dict[int, float]]:
        """Signature rows worth scoring, and the bm25 rank of those FTS5 found."""
        rows: dict[int, SignatureRow] = {}
        for token in [*signals.reasons, *signals.exceptions, *signals.finish_reasons]:
            for sig in self.token_index.get(token.lower(), ()):
                rows[sig.id] = sig
        ranks: dict[int, float] = {}
        for sig_id, rank in self.kb.search_signatures(self._fts_query(norm), FTS_ROWS):
            sig = self.kb.signature_by_id.get(sig_id)
            if sig is not None:
                rows[sig.id] = sig
                ranks[sig.id] = rank
        rows.update((s.id, s) for s in self.quota_sigs)
        return list(rows.values()), ranks

    # -- scoring ------------------------------------------------------------------------

    @staticmethod
    def _specificity(sig: SignatureRow) -> float:
        """How much one hit on this signature says: long messages say more than short ones."""
        if sig.kind in TOKEN_KINDS or sig.kind == "quota_ids":
            return 1.0
        if sig.kind == "prose":
            return 0.5
        n_words = len([w for w in sig.norm.split() if w != PLACEHOLDER])
        if n_words == 1 and ERROR_CODE_RE.fullmatch(sig.text):
            return 0.9  # a lone error code (`ECONNRESET`, `CERTIFICATE_VERIFY_FAILED`) says a lot
        return min(1.0, 0.45 + 0.11 * n_words)

    def _hit(self, sig: SignatureRow, paste: _Paste) -> float:
        """Strength in 0..1 of one signature's presence in the paste."""
        norm = paste.norm
        if sig.kind in TOKEN_KINDS:
            if sig.text.lower() in paste.tokens:
                return 1.0
            # Case kept: `SAFETY` or `NotFound` as a word, not `safety` in prose or `ENOTFOUND`.
            return 0.9 if len(sig.text) >= 6 and _contains_word(paste.text, sig.text) else 0.0
        if sig.kind == "quota_ids":
            needle = sig.text.lower()
            return 1.0 if any(needle in q for q in paste.quota_ids) or needle in norm else 0.0
        needle = sig.norm
        if len(needle) < 4:
            return 0.0
        template = self.templates.get(sig.id)
        if needle in norm:
            return 1.0
        if template is not None and template[0] in norm and template[1].search(norm):
            return 1.0
        if len(needle) >= FUZZY_MIN_LEN:
            score = fuzz.partial_ratio(needle, paste.fuzzy_text, score_cutoff=FUZZY_CUTOFF)
            if score:
                # A near miss is weaker than an exact hit: templates that differ in one word stay apart.
                return 0.35 + 0.4 * (score - FUZZY_CUTOFF) / (100.0 - FUZZY_CUTOFF)
        return 0.0

    def _lifecycle(self, signals: Signals, text: str, evidence: dict[str, _Evidence]) -> None:
        """A model named in the paste that the knowledge base knows has been shut down."""
        today = date.today().isoformat()
        if not NOT_FOUND_WORDS.search(text) and signals.http_status != 404:
            return
        for name in signals.models:
            info = self.kb.models.get(name) or self.kb.models.get(name.removeprefix("models/"))
            if info is None or not info.shut_down(today):
                continue
            when = f" on {info.date}" if info.date else ""
            instead = f"; use {info.replacement}" if info.replacement else ""
            evidence[info.entry_id].hits.append((1.0, f"model {name} {info.status}{when}{instead}"))

    def _status_roots(self, signals: Signals, evidence: dict[str, _Evidence]) -> None:
        """A status in the paste speaks for the broadest family of that status."""
        if signals.status and signals.status in self.status_roots:
            roots, strength = self.status_roots[signals.status], 0.6
            label = f"status {signals.status}"
        elif signals.http_status in self.http_roots and signals.http_status and signals.http_status >= 400:
            roots, strength = self.http_roots[signals.http_status], 0.45
            label = f"HTTP {signals.http_status}"
        else:
            return
        # Only a fallback: when a narrower family of the same status has evidence, the status says nothing new.
        same = {self.kb.entries[eid].status for eid in roots} | {self.kb.entries[eid].http_status for eid in roots}
        for entry_id, ev in evidence.items():
            entry = self.kb.entries[entry_id]
            if ev.signature_best >= 0.3 and (entry.status in same or entry.http_status in same):
                return
        for entry_id in roots:
            evidence[entry_id].hits.append((strength, label))

    def _status_agreement(self, entry_id: str, signals: Signals, ev: _Evidence) -> None:
        """Agreeing status adds; a disagreeing one subtracts, less so when the entry's own evidence is strong."""
        entry = self.kb.entries[entry_id]
        best = max((s for s, _ in ev.hits), default=0.0)
        doubt = 1.0 - 0.8 * min(best, 1.0)
        if signals.http_status and entry.http_status:
            if signals.http_status == entry.http_status:
                ev.adjust += 0.12
                ev.notes.append(f"HTTP {signals.http_status}")
            else:
                ev.adjust -= 0.3 * doubt
        elif signals.http_status and signals.http_status >= 400 and entry.http_status is None:
            ev.adjust -= 0.1 * doubt
        if signals.status and entry.status:
            if signals.status == entry.status:
                ev.adjust += 0.08
                if f"HTTP {signals.http_status}" in ev.notes:
                    ev.notes[-1] = f"{signals.http_status} {signals.status}"
                else:
                    ev.notes.append(signals.status)
            else:
                ev.adjust -= 0.15 * doubt

    def match(self, text: str, *, limit: int = 3, about_gemini: bool = False) -> MatchResult:
        """The best entries for `text`, best first, with a confident flag.

        `about_gemini` says the text is known to be about Gemini (a Gemini troubleshooting article),
        so the matcher does not ask the text itself to show it.
        """
        cleaned = clean(text if isinstance(text, str) else str(text))
        redacted, secret_kinds = redact(cleaned)
        capped = cap(collapse_frames(redacted))
        signals = extract(capped)
        if about_gemini:
            signals.gemini_context, signals.foreign = True, []
        norm = normalize(capped)
        fuzzy_text = norm if len(norm) <= FUZZY_TEXT_CHARS else norm[:1500] + " " + norm[-(FUZZY_TEXT_CHARS - 1500) :]
        paste = _Paste(
            text=capped,
            norm=norm,
            fuzzy_text=fuzzy_text,
            tokens=frozenset(t.lower() for t in [*signals.reasons, *signals.exceptions, *signals.finish_reasons]),
            quota_ids=tuple(q.lower() for q in signals.quota_ids),
        )

        evidence: dict[str, _Evidence] = defaultdict(_Evidence)
        candidates, ranks = self._candidates(norm, signals)
        best_prose = min((r for i, r in ranks.items() if self.kb.signature_by_id[i].kind == "prose"), default=0.0)
        for sig in candidates:
            if sig.kind == "prose":
                # Plain-language questions: how well the words fit the entry's description, relative to the best.
                strength = 0.6 * ranks[sig.id] / best_prose if best_prose < 0 else 0.0
            else:
                strength = self._hit(sig, paste)
            if strength <= 0:
                continue
            weight = strength * self._specificity(sig)
            label = KIND_LABEL.get(sig.kind, sig.kind)
            shown = sig.text if len(sig.text) <= 60 else sig.text[:57] + "..."
            if sig.kind == "prose":
                shown = self.kb.entries[sig.entry_id].title
            else:
                ev = evidence[sig.entry_id]
                ev.signature_best = max(ev.signature_best, weight)
            evidence[sig.entry_id].hits.append(
                (weight, f'{label} "{shown}"' if sig.kind in ("messages", "prose") else f"{label} {shown}")
            )
        self._lifecycle(signals, capped, evidence)
        self._status_roots(signals, evidence)
        for entry_id, test, strength, describe in SIGNAL_EVIDENCE:
            if entry_id in self.kb.entries and test(signals):
                evidence[entry_id].hits.append((strength, describe(signals)))

        raw = {eid: ev.strength for eid, ev in evidence.items()}
        scores: dict[str, float] = {}
        for eid, ev in evidence.items():
            self._status_agreement(eid, signals, ev)
            score = raw[eid] + ev.adjust
            parent = self.kb.entries[eid].specialises
            if parent and raw[eid] >= 0.5:
                # A narrower family with evidence of its own inherits the broader one's.
                score += 0.5 * raw.get(parent, 0.0)
            scores[eid] = score

        ranked = [(eid, score) for eid, score in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])) if score > 0]
        top_raw = ranked[0][1] if ranked else 1.0
        # Runners-up are shown relative to the winner, so two strong candidates do not both read 1.00.
        matches = [
            Match(eid, self.kb.entries[eid].title, _calibrate(score) * min(1.0, score / top_raw), _why(evidence[eid]))
            for eid, score in ranked[:limit]
        ]
        confident, reason = self._decide(ranked, signals, evidence)
        return MatchResult(matches, confident, bool(secret_kinds), secret_kinds, signals, reason)

    def _decide(
        self, ranked: list[tuple[str, float]], signals: Signals, evidence: dict[str, _Evidence]
    ) -> tuple[bool, str]:
        """Confident only with strong evidence, a clear lead, and a paste about Gemini."""
        if not ranked:
            return False, "nothing in the paste matches a known error"
        top, score = ranked[0]
        if score < CONFIDENT_SCORE:
            return False, f"the best match, {top}, is too weak"
        if len(ranked) > 1:
            second, second_score = ranked[1]
            related = self.kb.entries[top].specialises == second or second in self.children.get(top, [])
            if score - second_score < CONFIDENT_MARGIN and not related:
                return False, f"{top} and {second} are equally likely"
        if signals.foreign and not signals.gemini_context:
            return False, f"the paste is about {signals.foreign[0]}, not Gemini"
        if not signals.gemini_context:
            strongest = max((s for s, _ in evidence[top].hits), default=0.0)
            api_side = self.kb.entries[top].http_status is not None
            if not (api_side and strongest >= 0.95):
                return False, "the paste does not look like a Gemini API error"
        return True, ""


def _contains_word(haystack: str, needle: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(needle)}(?![A-Za-z0-9_])", haystack) is not None


def _calibrate(score: float) -> float:
    """Map the raw evidence score onto 0..1 (logistic around the confidence threshold)."""
    return 1.0 / (1.0 + math.exp(-6.0 * (score - 0.6)))


def _why(ev: _Evidence) -> str:
    hits = [desc for _s, desc in sorted(ev.hits, key=lambda h: -h[0])]
    parts = list(dict.fromkeys(hits))[:3] + ev.notes[:1]
    return " + ".join(parts)


def matcher_for(kb: KnowledgeBase) -> Matcher:
    """One matcher per knowledge base object (indexes are built once), owned by that object."""
    return kb.derived("matcher", Matcher)


def match(text: str, kb: KnowledgeBase, *, limit: int = 3, about_gemini: bool = False) -> MatchResult:
    """Match `text` against `kb`; see `Matcher.match`."""
    return matcher_for(kb).match(text, limit=limit, about_gemini=about_gemini)
