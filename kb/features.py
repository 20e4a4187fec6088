"""Evidence features of each candidate entry for one paste (see `kb.params.FEATURES`).

Features never depend on the fitted weights, so `make fit` computes them once per paste and the
matcher scores them with a dot product. Each feature is a plain fact about the paste and the entry
(a signature found, a status that agrees), in 0..1, and every hit keeps a description for `why`.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from rapidfuzz import fuzz

from kb.bm25 import BM25Index, tokens, with_pairs
from kb.clean import message_lines
from kb.normalize import PLACEHOLDER, STOPWORDS, normalize
from kb.params import CONFIDENCE_FEATURES, Params
from kb.signals import Signals
from kb.store import KnowledgeBase, SignatureRow
from kb.vocabulary import terms as vocabulary_terms

# Kinds matched as whole tokens against extracted signals rather than as text.
TOKEN_KINDS = ("reasons", "exceptions", "finish_reasons")
KIND_FEATURE = {"reasons": "reason", "exceptions": "exception", "finish_reasons": "finish_reason", "quota_ids": "quota"}
KIND_LABEL = {
    "messages": "message",
    "reasons": "reason",
    "exceptions": "exception",
    "finish_reasons": "finish reason",
    "quota_ids": "quota id",
    "prose": "described as",
}
ERROR_CODE_RE = re.compile(r"[A-Z][A-Z0-9_]{5,60}")
NOT_FOUND_WORDS = re.compile(
    r"\b404|not found|no longer available|not supported|deprecated|shut ?down|retired|does not exist", re.I
)
NAME_WORD_DF = 12  # an id word shared by more families than this (`api`, `invalid`) names none of them
NAME_MIN_SHARE = 0.5  # at least this share of a family's id words
BARE_WORDS = 2  # a paste with at most this many words besides status words gives only a status
STATUS_WORDS = frozenset(
    "error http status code resource exhausted invalid argument permission denied not found unavailable internal "
    "deadline exceeded unauthenticated failed precondition too many requests forbidden unauthorized bad request "
    "service gateway timeout server cancelled api".split()
)
SPECIFIC_HIT = 0.8  # a hit this strong names its family outright (a reason code, a message of several words)
FUZZY_MIN_COVER = 0.8  # a near miss needs a paste at least this long relative to the signature
PROSE_TERMS = 64  # distinct words of a paste compared with the descriptions
PROSE_COMMON_SHARE = 0.05  # a word in more than this share of the descriptions is too common to rank with
PROSE_COMMON_MIN = 50  # ... unless it is in at most this many (a small knowledge base keeps all its words)
PROSE_MIN_TERMS = 4  # when every word is common, the rarest few still rank
PROSE_ENTRIES = 5  # entries whose description fits best get the prose feature
LIVE_FAMILIES = ("live-api-closed", "live-session-limit")
# Features that are evidence of the entry itself (a narrower family may inherit its parent's).
EVIDENCE_FEATURES = (
    "message",
    "fuzzy",
    "reason",
    "exception",
    "finish_reason",
    "quota",
    "more_hits",
    "structured",
    "lifecycle",
    "live_close",
)
# What a narrower family takes over from its parent: the parent's evidence and how the words fit it.
INHERITED_FEATURES = (
    *EVIDENCE_FEATURES,
    "prose",
    "prose_best",
    "names",
    "vocab",
    "vocab_best",
    "status_root",
    "http_root",
    "bare_root",
)
# Failures of any HTTP client (sockets, DNS, TLS, time-outs): without a sign of Gemini in the paste
# (an SDK, host, model or response field) they say nothing about Gemini, so they are never confident.
TRANSPORT_FAMILIES = frozenset({"connection-reset", "dns-or-connect-failure", "tls-or-proxy-error", "client-timeout"})


EXACT_FEATURES = ("message", "reason", "finish_reason", "quota", "structured", "lifecycle", "live_close")
SIGNAL_FEATURES = (*EXACT_FEATURES, "fuzzy", "exception", "status_root", "http_root", "bare_root", "parent")


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def confidence_features(share: float, related: float, top: dict[str, float]) -> list[float]:
    """The inputs of the confidence model for a top candidate, in the order of CONFIDENCE_FEATURES."""
    values = {
        "share": _logit(share),
        "related": related,
        "exact": 1.0 if max((top.get(f, 0.0) for f in EXACT_FEATURES), default=0.0) >= 0.9 else 0.0,
        "words_only": 0.0 if any(top.get(f, 0.0) for f in SIGNAL_FEATURES) else 1.0,
        "context": top.get("gemini_context", 0.0),
        "question": top.get("question", 0.0),
        "bias": 1.0,
    }
    return [values[name] for name in CONFIDENCE_FEATURES]


@dataclass(frozen=True)
class StructuredRule:
    """Evidence read off structured signals rather than signature text: one named rule, one entry."""

    name: str
    entry_id: str
    test: Callable[[Signals], bool]
    describe: Callable[[Signals], str]
    supersedes: tuple[str, ...] = ()  # families whose evidence this reading of the paste takes over


STRUCTURED_RULES: tuple[StructuredRule, ...] = (
    StructuredRule(
        "zero_quota",
        "quota-zero-limit",
        lambda s: s.zero_quota and s.http_status in (429, None),
        lambda s: "quota limit is 0",
    ),
    StructuredRule(
        "unsupported_method",
        "method-not-supported",
        lambda s: s.unsupported_method is not None,
        lambda s: f"model does not support {s.unsupported_method}",
    ),
    StructuredRule(
        "live_deadline",
        "live-session-limit",
        lambda s: s.live_close == 1011 and "deadline" in s.live_reason.lower(),
        lambda s: "Live socket closed 1011 after its deadline",
        supersedes=("deadline-exceeded",),  # the deadline text is the Live session's, not an HTTP 504
    ),
)


@dataclass
class Candidate:
    """One entry's evidence for a paste."""

    entry_id: str
    features: dict[str, float] = field(default_factory=dict)
    hits: list[tuple[float, str]] = field(default_factory=list)  # (strength, description)
    notes: list[str] = field(default_factory=list)

    def put(self, name: str, value: float) -> None:
        """Keep the largest value seen for a feature."""
        if value > self.features.get(name, 0.0):
            self.features[name] = value

    @property
    def own(self) -> float:
        """The strongest single hit on the entry's own signatures."""
        return max((s for s, _ in self.hits), default=0.0)

    def why(self) -> str:
        hits = [desc for _s, desc in sorted(self.hits, key=lambda h: -h[0])]
        return " + ".join([*list(dict.fromkeys(hits))[:3], *self.notes[:1]])


def _template(norm: str, gap: int) -> tuple[str, re.Pattern[str]] | None:
    """A signature with `<*>` parts as a bounded pattern (each `<*>` one short stretch), with its longest literal."""
    parts = norm.split(PLACEHOLDER)
    if len(parts) == 1:
        return None
    body = rf"[^\n]{{1,{gap}}}?".join(re.escape(p) for p in parts)
    return max(parts, key=len), re.compile(body)


def _contains_word(haystack: str, needle: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(needle)}(?![A-Za-z0-9_])", haystack) is not None


@dataclass(frozen=True)
class Paste:
    """One paste in the forms the features read, computed once per match."""

    text: str  # focused, redacted; case kept
    norm: str
    fuzzy_text: str
    tokens: frozenset[str]  # lower-cased reasons, exception classes and finish reasons
    quota_ids: tuple[str, ...]


class Evidence:
    """Indexes over a knowledge base, and the features of the candidates for one paste."""

    def __init__(self, kb: KnowledgeBase, params: Params):
        self.kb, self.p = kb, params
        self.templates = {
            s.id: t for s in kb.signatures if s.kind != "prose" and (t := _template(s.norm, params.template_gap))
        }
        self.token_index: dict[str, list[SignatureRow]] = defaultdict(list)
        self.quota_sigs: list[SignatureRow] = []
        for sig in kb.signatures:
            if sig.kind in TOKEN_KINDS:
                self.token_index[sig.text.lower()].append(sig)
            elif sig.kind == "quota_ids":
                self.quota_sigs.append(sig)
        k1, b = params.bm25_k1, params.bm25_b
        self.signature_index = BM25Index(((s.id, s.norm) for s in kb.signatures if s.kind != "prose"), k1=k1, b=b)
        # One description per entry (title, summary, causes): what a question in words is compared with.
        prose = {s.entry_id: s.norm for s in kb.signatures if s.kind == "prose"}
        messages: dict[str, list[str]] = defaultdict(list)
        for sig in kb.signatures:
            if sig.kind == "messages":
                messages[sig.entry_id].append(sig.norm)
        self.entry_ids = sorted(kb.entries)
        # The id and title are the family's curated names: they count twice beside the description.
        self.prose_index = BM25Index(
            (
                (
                    i,
                    " ".join(
                        [eid.replace("-", " "), normalize(kb.entries[eid].title)] * 2
                        + [prose.get(eid, ""), *messages.get(eid, [])]
                    ),
                )
                for i, eid in enumerate(self.entry_ids)
            ),
            k1=k1,
            b=b,
            pairs=True,
        )
        # The words people used for each family in the train split's pastes (learned by `make fit`).
        vocab_ids = sorted(e for e in params.vocabulary if e in kb.entries)
        self.vocab_ids = vocab_ids
        self.vocab_index = BM25Index(
            ((i, " ".join(params.vocabulary[eid])) for i, eid in enumerate(vocab_ids)), k1=k1, b=b
        )
        # The words of each family's id (`api-key-missing`): a paste or heading that names them names the family.
        self.id_words: dict[str, list[str]] = defaultdict(list)
        for eid in kb.entries:
            for word in dict.fromkeys(eid.split("-")):
                self.id_words[word].append(eid)
        self.id_len = {eid: len(set(eid.split("-"))) for eid in kb.entries}
        self.parent = {e.id: e.specialises for e in kb.entries.values() if e.specialises in kb.entries}
        self.children: dict[str, list[str]] = defaultdict(list)
        for child, parent in self.parent.items():
            self.children[parent].append(child)
        breadth = {eid: self._descendants(eid) for eid in kb.entries}
        # The broadest families of each status, broadest first: what a bare `429 RESOURCE_EXHAUSTED` is about.
        self.status_roots: dict[str, list[tuple[str, int]]] = self._roots(lambda e: e.status, breadth)
        self.http_roots: dict[int, list[tuple[str, int]]] = self._roots(lambda e: e.http_status, breadth)

    def _descendants(self, entry_id: str) -> int:
        seen, todo = set(), [entry_id]
        while todo:
            for child in self.children.get(todo.pop(), []):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return len(seen)

    def _is_root(self, entry_id: str, key: Callable) -> bool:
        """Whether the family does not narrow one of the same status."""
        parent = self.kb.entries.get(self.parent.get(entry_id) or "")
        return parent is None or key(parent) != key(self.kb.entries[entry_id])

    def _roots(self, key: Callable, breadth: dict[str, int]) -> dict:
        """Per status: its families, broadest roots first, as (entry, root rank or None), at most
        `status_families` (an index, so a bare status costs the same at any knowledge-base size).
        A root is a family that does not narrow one of the same status; roots rank by how many they cover."""
        found: dict[object, list[str]] = defaultdict(list)
        for entry in self.kb.entries.values():
            if key(entry):
                found[key(entry)].append(entry.id)
        out: dict[object, list[tuple[str, int | None]]] = {}
        for status, ids in found.items():
            roots = {eid for eid in ids if self._is_root(eid, key)}
            ids.sort(key=lambda eid: (eid not in roots, -breadth[eid], eid))
            levels = sorted({breadth[eid] for eid in roots}, reverse=True)
            out[status] = [
                (eid, levels.index(breadth[eid]) if eid in roots and i < self.p.root_families else None)
                for i, eid in enumerate(ids[: self.p.status_families])
            ]
        return out

    def family_of(self, entry_id: str) -> set[str]:
        """The entry's parent and children (a runner-up among them does not make the answer doubtful)."""
        return {*self.children.get(entry_id, []), *([self.parent[entry_id]] if entry_id in self.parent else [])}

    # -- retrieval ------------------------------------------------------------------------------

    def _query_terms(self, norm: str) -> list[str]:
        """The paste's most specific words that some signature has: rare ones first, always a few."""
        df = self.signature_index.df
        known = sorted(
            (t for t in dict.fromkeys(tokens(norm)) if t in df and t not in STOPWORDS and len(t) > 2),
            key=lambda t: (df[t], t),
        )
        rare = [t for t in known if df[t] <= self.p.common_df]
        return (
            rare[: self.p.retrieve_words]
            if len(rare) >= self.p.retrieve_min_words
            else known[: self.p.retrieve_min_words]
        )

    def _signatures(self, norm: str, signals: Signals) -> list[SignatureRow]:
        rows: dict[int, SignatureRow] = {}
        for token in [*signals.reasons, *signals.exceptions, *signals.finish_reasons]:
            for sig in self.token_index.get(token.lower(), ()):
                rows[sig.id] = sig
        by_id = self.kb.signature_by_id
        found = self.signature_index.search(
            self._query_terms(norm), self.p.retrieve_rows, max_postings=self.p.max_postings
        )
        for sig_id, _score in found:
            rows[sig_id] = by_id[sig_id]
        rows.update((s.id, s) for s in self.quota_sigs)
        return list(rows.values())

    # -- one signature ------------------------------------------------------------------------------

    def _specificity(self, sig: SignatureRow) -> float:
        """How much one hit on this signature says: long messages say more than short ones."""
        if sig.kind in TOKEN_KINDS or sig.kind == "quota_ids":
            return 1.0
        n_words = len([w for w in sig.norm.split() if w != PLACEHOLDER])
        if n_words == 1 and ERROR_CODE_RE.fullmatch(sig.text):
            return self.p.code_specificity
        return min(1.0, self.p.specificity_base + self.p.specificity_per_word * n_words)

    def _hit(self, sig: SignatureRow, paste: Paste) -> float:
        """Strength in 0..1 of one signature's presence in the paste (1 = exact)."""
        if sig.kind in TOKEN_KINDS:
            if sig.text.lower() in paste.tokens:
                return 1.0
            # Case kept: `SAFETY` or `NotFound` as a word, not `safety` in prose or `ENOTFOUND`.
            return self.p.word_hit if len(sig.text) >= 6 and _contains_word(paste.text, sig.text) else 0.0
        if sig.kind == "quota_ids":
            needle = sig.text.lower()
            return 1.0 if any(needle in q for q in paste.quota_ids) or needle in paste.norm else 0.0
        needle = sig.norm.rstrip(".:;,! ")  # a quoted message often drops the final full stop
        if len(needle) < 4:
            return 0.0
        if needle in paste.norm:
            return 1.0
        template = self.templates.get(sig.id)
        if template is not None and template[0] in paste.norm and template[1].search(paste.norm):
            return 1.0
        # A near miss needs the paste to be about as long as the signature: partial_ratio would otherwise
        # align a short paste (`429 RESOURCE_EXHAUSTED`) inside a long signature and call it a hit.
        if len(needle) >= self.p.fuzzy_min_len and len(paste.fuzzy_text) >= FUZZY_MIN_COVER * len(needle):
            score = fuzz.partial_ratio(needle, paste.fuzzy_text, score_cutoff=self.p.fuzzy_cutoff)
            if score:
                # A near miss is weaker than an exact hit: templates that differ in one word stay apart.
                cut = self.p.fuzzy_cutoff
                return min(0.99, self.p.fuzzy_floor + self.p.fuzzy_span * (score - cut) / (100.0 - cut))
        return 0.0

    # -- all features ---------------------------------------------------------------------------------

    def collect(self, text: str, norm: str, signals: Signals, *, words: bool = True) -> list[Candidate]:
        """The candidates for a focused paste, with features, strongest first, at most `max_candidates`.

        `words=False` leaves out how the words resemble each family's description: for text known to be
        about Gemini whose words are judged elsewhere (an article's sections)."""
        paste = Paste(
            text=text,
            norm=norm,
            fuzzy_text=norm[: self.p.fuzzy_chars],
            tokens=frozenset(t.lower() for t in [*signals.reasons, *signals.exceptions, *signals.finish_reasons]),
            quota_ids=tuple(q.lower() for q in signals.quota_ids),
        )
        cands: dict[str, Candidate] = {}

        def cand(entry_id: str) -> Candidate:
            return cands.setdefault(entry_id, Candidate(entry_id))

        for sig in self._signatures(norm, signals):
            strength = self._hit(sig, paste)
            if strength <= 0:
                continue
            weight = strength * self._specificity(sig)
            c = cand(sig.entry_id)
            if sig.kind == "messages":
                c.put("message" if strength >= 1.0 else "fuzzy", weight)
            else:
                c.put(KIND_FEATURE.get(sig.kind, "message"), weight)
            shown = sig.text if len(sig.text) <= 60 else sig.text[:57] + "..."
            label = KIND_LABEL.get(sig.kind, sig.kind)
            c.hits.append((weight, f'{label} "{shown}"' if sig.kind == "messages" else f"{label} {shown}"))
        self._lifecycle(signals, text, cand)
        for r in STRUCTURED_RULES:
            if r.entry_id in self.kb.entries and r.test(signals):
                c = cand(r.entry_id)
                c.put("structured", 1.0)
                c.hits.append((1.0, r.describe(signals)))
                for other in r.supersedes:
                    if other in cands:
                        for f in EVIDENCE_FEATURES:
                            c.put(f, cands[other].features.get(f, 0.0))
        self._live(signals, cands, cand)
        bare = (
            len(
                [
                    t
                    for t in dict.fromkeys(tokens(norm))
                    if t not in STOPWORDS and t not in STATUS_WORDS and not t.isdigit()
                ]
            )
            <= BARE_WORDS
        )
        self._status_roots(signals, cands, cand, bare)
        # Word evidence reads the messages, not the stack: frame lines (`File "x.py", line 3`) name files
        # and functions, which say nothing about the family.
        said = normalize(message_lines(text)) if "\n" in text else norm
        if words:
            self._prose(said, cands, cand)
            self._vocab(said, cands, cand)
        self._names(said, cands, cand)
        for c in cands.values():
            ranked = sorted((s for s, _ in c.hits), reverse=True)
            more = sum(s * self.p.more_hits_decay / (i + 1) for i, s in enumerate(ranked[1:4]))
            if more:
                c.features["more_hits"] = more
        self._inherit(cands)
        for c in cands.values():
            self._agreement(c, signals)
            if signals.gemini_context:
                c.features["gemini_context"] = 1.0
            if signals.foreign:
                c.features["foreign"] = 1.0
            if signals.question:
                c.features["question"] = 1.0
            if signals.other_hosts:
                c.features["other_service"] = 1.0
            if not signals.gemini_context and self.kb.entries[c.entry_id].http_status is None:
                c.features["client_no_context"] = 1.0
        ordered = sorted(cands.values(), key=lambda c: (-max(c.own, c.features.get("prose", 0.0) / 2), c.entry_id))
        return ordered[: self.p.max_candidates]

    def _inherit(self, cands: dict[str, Candidate]) -> None:
        """A narrower family with evidence of its own that its parent lacks also has the parent's evidence,
        so it ranks above the parent exactly when it adds something (a retired model over `not found`)."""
        snapshot = {eid: dict(c.features) for eid, c in cands.items()}
        for eid, c in cands.items():
            parent = self.parent.get(eid)
            if not parent or parent not in snapshot or c.own < self.p.inherit_floor:
                continue
            mine, theirs = snapshot[eid], snapshot[parent]
            if not any(mine.get(f, 0.0) > theirs.get(f, 0.0) + 1e-9 for f in EVIDENCE_FEATURES):
                continue
            for f in INHERITED_FEATURES:
                if theirs.get(f, 0.0) > mine.get(f, 0.0):
                    c.features[f] = theirs[f]
            c.features["parent"] = 1.0
            c.notes.append(f"narrows {parent}")

    def _lifecycle(self, signals: Signals, text: str, cand: Callable[[str], Candidate]) -> None:
        """A model named in the paste that the knowledge base knows has been shut down."""
        if not NOT_FOUND_WORDS.search(text) and signals.http_status != 404:
            return
        today = date.today().isoformat()
        for name in signals.models:
            info = self.kb.models.get(name) or self.kb.models.get(name.removeprefix("models/"))
            if info is None or not info.shut_down(today):
                continue
            when = f" on {info.date}" if info.date else ""
            instead = f"; use {info.replacement}" if info.replacement else ""
            c = cand(info.entry_id)
            c.put("lifecycle", 1.0)
            c.hits.append((1.0, f"model {name} {info.status}{when}{instead}"))

    def _live(self, signals: Signals, cands: dict[str, Candidate], cand: Callable[[str], Candidate]) -> None:
        """A Live API close: the family its reason names answers; a bare close is `live-api-closed`."""
        if not signals.live_close:
            return
        named = [
            c
            for eid, c in cands.items()
            if eid not in LIVE_FAMILIES and c.own >= self.p.evidence_floor and self._specific(eid)
        ]
        if named:
            return  # the close carries another family's error: that family's evidence speaks for itself
        if "live-api-closed" in self.kb.entries and "live-session-limit" not in cands:
            c = cand("live-api-closed")
            c.put("live_close", 1.0)
            c.hits.append((1.0, f"Live API close {signals.live_close}"))

    def _specific(self, entry_id: str) -> bool:
        """A family that names a particular cause: not a server-side 5xx and not a catch-all that others narrow
        (a Live close whose reason is `Internal error` or `invalid argument` is still best told as a Live close)."""
        status = self.kb.entries[entry_id].http_status
        return (status is None or status < 500) and not self.children.get(entry_id)

    def _status_roots(
        self, signals: Signals, cands: dict[str, Candidate], cand: Callable[[str], Candidate], bare: bool
    ) -> None:
        """A status in the paste speaks for the broadest families of that status, when nothing narrower does."""
        codes = [c for c in signals.http_statuses if c >= 400]
        if signals.status and signals.status in self.status_roots:
            roots, feature, label = self.status_roots[signals.status], "status_root", f"status {signals.status}"
        elif signals.http_status in self.http_roots and signals.http_status >= 400:
            roots, feature, label = self.http_roots[signals.http_status], "http_root", f"HTTP {signals.http_status}"
        elif codes and codes[-1] in self.http_roots:
            roots, feature, label = self.http_roots[codes[-1]], "http_root", f"HTTP {codes[-1]}"
        else:
            return
        same = {self.kb.entries[eid].status for eid, _ in roots} | {
            self.kb.entries[eid].http_status for eid, _ in roots
        }
        for eid, c in cands.items():
            entry = self.kb.entries[eid]
            if c.own >= self.p.evidence_floor and (entry.status in same or entry.http_status in same):
                return  # a narrower family of this status has evidence: the status says nothing new
            if entry.http_status is None and c.own >= SPECIFIC_HIT:
                return  # a family with no status of its own is named outright (`BILLING_DISABLED`): it says more
        # A bare status line says nothing but the status: no family has evidence of its own.
        bare = bare and not any(c.own >= self.p.evidence_floor for c in cands.values())
        # Every family of the status is a candidate (their agreement features are alike); the root feature
        # tells the broadest apart, so it only has to rank, not to beat "none of these".
        for eid, rank in roots:
            c = cand(eid)
            if rank is not None:
                c.put(feature, 1.0 / (rank + 1))
                if bare:
                    c.put("bare_root", 1.0 / (rank + 1))
                c.notes.insert(0, label)

    def _prose(self, norm: str, cands: dict[str, Candidate], cand: Callable[[str], Candidate]) -> None:
        """How well the paste's words fit each entry's description, relative to the best fit."""
        # Status words and codes are the status features' business: the description is compared with the rest.
        df = self.prose_index.df
        words = [
            t
            for t in dict.fromkeys(tokens(norm))
            if t in df and t not in STOPWORDS and t not in STATUS_WORDS and not t.isdigit() and len(t) > 2
        ][:PROSE_TERMS]
        words += [t for t in dict.fromkeys(with_pairs(norm)) if "_" in t and t in df][:PROSE_TERMS]
        # A word in a large share of all descriptions ranks nothing and costs a long posting list (a large KB).
        common = max(PROSE_COMMON_MIN, PROSE_COMMON_SHARE * self.prose_index.size)
        rare = sorted((t for t in words if df[t] <= common), key=lambda t: (df[t], t))
        terms = rare or sorted(words, key=lambda t: (df[t], t))[:PROSE_MIN_TERMS]
        found = self.prose_index.search(terms, PROSE_ENTRIES, max_postings=self.p.max_postings)
        if not found:
            return
        best = found[0][1]
        for rank, (i, score) in enumerate(found):
            eid = self.entry_ids[i]
            fresh = eid not in cands
            c = cand(eid)
            c.put("prose", score / best)
            if rank == 0:
                c.put("prose_best", 1.0)
            if fresh:
                c.notes.append(f'described as "{self.kb.entries[eid].title[:60]}"')

    def _vocab(self, norm: str, cands: dict[str, Candidate], cand: Callable[[str], Candidate]) -> None:
        """How well the paste's words fit the words people used for each family, relative to the best."""
        if not self.vocab_index.size:
            return
        df = self.vocab_index.df
        words = [t for t in dict.fromkeys(vocabulary_terms(norm)) if t in df]
        found = self.vocab_index.search(words[:PROSE_TERMS], PROSE_ENTRIES, max_postings=self.p.max_postings)
        if not found:
            return
        best = found[0][1]
        for rank, (i, score) in enumerate(found):
            c = cand(self.vocab_ids[i])
            c.put("vocab", score / best)
            if rank == 0:
                c.put("vocab_best", 1.0)

    def _names(self, norm: str, cands: dict[str, Candidate], cand: Callable[[str], Candidate]) -> None:
        """Share of a family's id words the paste uses (`API key missing` names `api-key-missing`)."""
        counts: dict[str, int] = defaultdict(int)
        for word in set(tokens(norm)):
            for eid in self.id_words.get(word, ()) if len(self.id_words.get(word, ())) <= NAME_WORD_DF else ():
                counts[eid] += 1
        for eid, n in counts.items():
            share = n / self.id_len[eid]
            if share >= NAME_MIN_SHARE and (eid in cands or (n >= 2 and share == 1.0)):
                c = cand(eid)
                c.put("names", share)
                if n >= 2 and share == 1.0:
                    # Every word of a family's name (`API key missing`): as specific as a message of its own.
                    c.hits.append((1.0, f'names "{eid.replace("-", " ")}"'))

    def _agreement(self, c: Candidate, signals: Signals) -> None:
        """Agreeing status adds; a disagreeing one weighs less when the entry's own evidence is strong."""
        entry = self.kb.entries[c.entry_id]
        doubt = 1.0 - min(c.own, 1.0)
        codes = [code for code in signals.http_statuses if code >= 400]
        if entry.http_status and entry.http_status in signals.http_statuses:
            c.features["http_agree"] = 1.0
            c.notes.append(f"HTTP {entry.http_status}")
        elif codes and entry.http_status:
            c.features["http_disagree"] = doubt
        elif codes and entry.http_status is None:
            c.features["client_side"] = doubt
        if entry.status and signals.statuses:
            if entry.status in signals.statuses:
                c.features["status_agree"] = 1.0
                if c.notes and c.notes[-1] == f"HTTP {entry.http_status}":
                    c.notes[-1] = f"{entry.http_status} {entry.status}"
                else:
                    c.notes.append(entry.status)
            else:
                c.features["status_disagree"] = doubt
