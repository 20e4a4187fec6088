"""Decide where each part of an article goes, using the matcher over the curated knowledge base.

A unit (section, FAQ pair, table row) attaches to the family the matcher finds for its heading
and text, helped by the heading naming the family in words ("Invalid ... API Key" names
`api-key-invalid`: authors often put a wrong status code on a right description). A unit that
names an error no family covers becomes a new entry marked unreviewed; one that names no error
(an introduction, a checklist) is left out. Quoted error messages become signatures of the family
the matcher finds for each message on its own.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from dataclasses import dataclass, field

from ingest.articles import Advice, Article, Unit
from ingest.conflicts import Conflict, check_items, heading_conflict, rules
from ingest.guides import Guide, Signature
from ingest.topics import PLATFORM_WORDS, STATUS_NAME_RE, Topics, expand, out_of_scope, platform_missing, stem, terms
from kb.matcher import match
from kb.signals import extract
from kb.store import KnowledgeBase

ATTACH_SCORE = 0.45  # below this a unit is not about the family, whatever it is
ATTACH_MARGIN = 0.08  # over the runner-up, unless one family refines the other
NAMING_BONUS = 0.6  # the heading names every distinctive word of the family's id
NAMING_MIN = 0.66  # share of an id's distinctive words the heading must name
SIGNATURE_SCORE = 0.6  # a quoted message must match its family at least this well
GENERIC_ID_WORDS = frozenset({"error", "api", "or", "not"})
ERROR_TOKEN_RE = re.compile(
    r"\b[A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+\b|\b\w+(?:Error|Exception|Exhausted|Unavailable|NotFound|Denied)\b|"
    r"\b[1-5]\d\d\b\s+[A-Z]"
)


_TOPICS: weakref.WeakKeyDictionary[KnowledgeBase, Topics] = weakref.WeakKeyDictionary()


def topics_for(kb: KnowledgeBase) -> Topics:
    """The families' vocabulary for `kb`, built once per knowledge base (it reads every entry)."""
    if kb not in _TOPICS:
        _TOPICS[kb] = Topics(kb)
    return _TOPICS[kb]


def _words(text: str) -> list[str]:
    return [stem(w) for w in re.findall(r"[A-Za-z]+", text)]


@dataclass(frozen=True)
class Placement:
    """Where one unit goes: an existing family, a new unreviewed entry, or nowhere (with why)."""

    unit: Unit
    entry_id: str | None
    score: float = 0.0
    why: str = ""
    new_entry: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.unit.kind,
            "heading": self.unit.heading,
            "section": self.unit.label,
            "attach_to": self.entry_id,
            "new_unreviewed_entry": self.new_entry,
            "score": round(self.score, 2),
            "why": self.why,
            "advice": self.unit.advice.as_dict(),
        }


@dataclass(frozen=True)
class SignaturePlan:
    """A quoted error message and what becomes of it: new, known already, or not recognised."""

    text: str
    entry_id: str | None
    outcome: str  # "new", "known", "unrecognised"
    why: str = ""

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class ArticlePlan:
    """Everything one article contributes to the knowledge base."""

    article: Article
    display: str  # the path shown as provenance
    source_id: str
    placements: list[Placement] = field(default_factory=list)
    signatures: list[SignaturePlan] = field(default_factory=list)
    new_entries: list[Guide] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def attached(self) -> list[Placement]:
        return [p for p in self.placements if p.entry_id]

    def as_dict(self) -> dict[str, object]:
        a = self.article
        return {
            "path": self.display,
            "title": a.title,
            "sha256": a.sha256,
            "sections": [p.as_dict() for p in self.placements],
            "signatures": [s.as_dict() for s in self.signatures],
            "new_entries": [g.id for g in self.new_entries],
            "conflicts": [c.as_dict() for c in self.conflicts],
            "boilerplate_dropped": a.dropped,
        }


def _naming(entry_id: str, heading_words: list[str]) -> tuple[float, int]:
    """Share of the id's distinctive words the heading names, and where the first of them is."""
    words = [stem(w) for w in entry_id.split("-") if w not in GENERIC_ID_WORDS]
    if not words:
        return 0.0, 0
    found = [heading_words.index(w) for w in words if w in heading_words]
    share = len(found) / len(words)
    return share, sum(found) if found else 1_000


TOPIC_WEIGHT = 0.7  # a heading whose distinctive words are all one family's scores 0.7
BODY_TOPIC_WEIGHT = 0.08  # the body's words only break ties between families the heading allows
CODE_ONLY_RE = re.compile(r"^[\W\d_]*(?:[A-Z][A-Z_]{2,40})?[\W\d_]*$")  # "400 FAILED_PRECONDITION": a row's codes
QUOTED_RE = re.compile(r"[\"“`]([^\"”`]{6,200})[\"”`]")
REFINES_SCORE = 0.3  # own-heading topic score at which a subsection picks a narrower family of its parent's
MAX_NEAR = 4  # families a heading may name equally and still let the text's words choose among them
UNKNOWN_HEADING = 0.2  # below this, no family knows the error a heading names
PARTIAL_HEADING = 0.25  # a heading this close to a family lets the section's text decide
EVIDENCE_SCORE = 0.6  # machine output (a code block, a quoted error) must match this well to decide


def prose(unit: Unit) -> str:
    """A unit's text without its code blocks: what its words say, not the identifiers its code uses
    (`model_name` in a snippet does not make a section about model names)."""
    text = unit.text
    for code in unit.advice.code:
        text = text.replace(code, " ")
    return text


def _scope_text(unit: Unit) -> str:
    """What a unit is about, for the scope rules: heading, a row's cells, a group's causes."""
    table = unit.parents[-1:]  # the heading over a table or a list says whose codes they are ("Our proxy's codes")
    if unit.kind == "table-row":
        return " ".join([*table, *(unit.cells or [unit.heading])])
    if unit.kind == "bullet-group":
        return " ".join([*table, unit.heading, *unit.advice.causes])
    return unit.heading


PROBLEM_HEADING_RE = re.compile(
    r"^\W*(?:the )?(?:problems?|issues?|symptoms?|what you see|errors? seen|problema|masalah|v[aấ]n đề|"
    r"问题|問題|症状|現象|现象)\b",
    re.I,
)
# Machine output says it failed in these words too ("Failed to connect to ...", "Connection refused").
FAILURE_WORDS_RE = re.compile(
    r"\b(?:Error|Exception|error|timed out|[Ff]ailed to|refused|unreachable|reset by peer|not found|not valid|denied)\b"
)


def _evidence(unit: Unit, kb: KnowledgeBase, *, quoted: bool = True) -> list[tuple[str, float, str]]:
    """Families that the unit's machine output (code blocks, and quoted errors if `quoted`) names confidently."""
    found: dict[str, tuple[float, str]] = {}
    # Under "Problem" or "Symptoms" the list items are the errors seen ("429 RESOURCE_EXHAUSTED with limit: 0").
    seen = [*unit.advice.fix, *unit.advice.summary] if PROBLEM_HEADING_RE.search(unit.heading) else []
    for text in [*unit.advice.code, *(unit.messages if quoted else []), *seen][:12]:
        if not ERROR_TOKEN_RE.search(text) and not FAILURE_WORDS_RE.search(text):
            continue
        result = match(text, kb, limit=2, about_gemini=True)
        top = result.top
        if top and top.score >= EVIDENCE_SCORE and result.confident and top.score > found.get(top.id, (0.0, ""))[0]:
            found[top.id] = (top.score, f"quoted error: {top.why}")
    return sorted(((k, v[0], v[1]) for k, v in found.items()), key=lambda t: -t[1])


@dataclass
class _Candidates:
    """Families a unit may be about, with the best score and reason seen for each."""

    scores: dict[str, float] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)

    def offer(self, entry_id: str, score: float, reason: str) -> None:
        if score > self.scores.get(entry_id, 0.0):
            self.scores[entry_id], self.why[entry_id] = score, reason

    @property
    def best(self) -> float:
        return max(self.scores.values(), default=0.0)


def _from_heading(unit: Unit, heading: str, kb: KnowledgeBase, topics: Topics) -> tuple[_Candidates, dict[str, int]]:
    """What the heading says: the matcher on it and on the errors it quotes, the families' vocabulary,
    and the ids it names in words; with where in the heading each id's words come (for ties)."""
    found = _Candidates()
    for m in match(heading, kb, limit=6, about_gemini=True).matches:
        found.offer(m.id, m.score, m.why)
    for quoted in QUOTED_RE.findall(unit.heading)[:4]:  # an error quoted in a question is matched on its own
        top = match(quoted, kb, limit=1, about_gemini=True).top
        if top and top.score >= SIGNATURE_SCORE:
            found.offer(top.id, top.score, f"quoted in the heading: {top.why}")
    for t in topics.score(expand(unit.heading))[:6]:  # its own words, not a parent's
        if all(w in PLATFORM_WORDS for w in t.words):
            continue  # "Vertex AI" alone says where a call went, not what went wrong (it can still refine a parent)
        found.offer(t.entry_id, TOPIC_WEIGHT * t.score, f"heading is about {', '.join(t.words)}")
    heading_words = _words(unit.heading)  # named in the heading's own words (synonyms only feed the topics)
    order: dict[str, int] = {}
    for entry_id, entry in kb.entries.items():
        share, order[entry_id] = _naming(entry_id, heading_words)
        status_words = (entry.status or "").lower().split("_")
        # (an id that is only the status name, "invalid-argument", is the matcher's to weigh)
        if share >= NAMING_MIN and len(entry_id.split("-")) > 1 and entry_id.split("-") != status_words:
            found.scores[entry_id] = found.scores.get(entry_id, 0.0) + NAMING_BONUS * share
            earlier = found.why.get(entry_id)
            found.why[entry_id] = f'heading names "{entry_id}"' + (f" + {earlier}" if earlier else "")
    return found, order


def _settle_shared_status(unit: Unit, heading: str, found: _Candidates, kb: KnowledgeBase, topics: Topics) -> None:
    """A heading that names only a status several families share ("400 FAILED_PRECONDITION") is about the
    family its text describes (a free tier to enable billing for, a location); without such a text it is
    about none of them."""
    shared = topics.shared_statuses
    named = {s for s in STATUS_NAME_RE.findall(heading) if s in shared}
    if not named or unit.kind == "faq":
        return
    group = set().union(*(shared[s] for s in named))
    status_words = set(terms(" ".join(named)))
    own = {t.entry_id: set(t.words) - status_words for t in topics.score(expand(unit.heading))}
    # Families the text may pick: those with the shared status, and those with no status of their own.
    allowed = group | {e for e, entry in kb.entries.items() if entry.reviewed and entry.status is None}
    ranked = [t for t in topics.score(expand(prose(unit)), capped=False) if t.entry_id in allowed]
    pick = None
    if (
        ranked
        and len(ranked[0].words) > 1
        and set(ranked[0].words) & topics.names[ranked[0].entry_id]  # "billing", not only words it shares
        and (len(ranked) == 1 or ranked[0].score - ranked[1].score >= ATTACH_MARGIN)
    ):
        pick = ranked[0].entry_id
    for entry_id in group & set(found.scores):
        if entry_id != pick and not own.get(entry_id):
            found.scores[entry_id] *= 0.5  # the status alone does not say which of them
    if pick:
        top = max(found.scores.values(), default=0.0)
        why = f"{', '.join(sorted(named))} is shared; the text is about {pick}"
        found.offer(pick, max(top + 0.01, ATTACH_SCORE), why)


def _refined(best: str, unit: Unit, found: _Candidates, kb: KnowledgeBase, topics: Topics) -> str | None:
    """A narrower family of `best` that the unit's own heading names by a word its kin lack ("Vertex AI")."""
    own = {t.entry_id: t for t in topics.score(expand(unit.heading))[:6]}
    for child, t in own.items():
        if (
            child in found.scores
            and TOPIC_WEIGHT * t.score >= REFINES_SCORE
            and kb.entries[child].specialises == best
            and topics.distinctive(child, best) & set(t.words)
            and t.score > (own[best].score if best in own else 0.0) + 0.1
        ):
            return child
    return None


def choose_family(
    unit: Unit, kb: KnowledgeBase, topics: Topics | None = None, *, title: str = "", context: str | None = None
) -> tuple[str | None, float, str]:
    """The family a unit is about, its score and why; None when nothing is clear enough.

    A unit is about what its heading (a row's identifying cells, a group's error line) says, read by
    the matcher and by the families' vocabulary; its text counts when the heading names an error or
    comes close, and its quoted machine output decides when the heading says nothing. `context` is the
    family the enclosing heading or the title is about: it settles ties, and a section whose own
    heading names nothing ("The Solution", "原因") is about it.
    """
    topics = topics or topics_for(kb)
    family, score, why, decided = _choose(unit, kb, topics, title, context)
    if context is None or decided or unit.kind != "section" or family is not None:
        return family, score, why
    if names_an_error(unit.heading) or context not in kb.entries or not PART_HEADING_RE.search(unit.heading):
        return family, score, why  # a heading naming an error no family knows stays a new problem
    return context, max(score, ATTACH_SCORE), f"under a heading about {context}"


# Headings that name a part of a problem, in the languages guides are written in: the problem, its cause, its
# fix, a check, one of several options. Under a heading about one family, such a section is about it too.
PART_HEADING_RE = re.compile(
    r"\b(?:problem|issue|symptom|error|cause|why|reason|solution|fix|resol|workaround|how to|steps?|verify|check|"
    r"confirm|diagnos|option|method|approach|what to do|what (?:it|this) means|detail|"
    r"problema|causa|raz[oó]n|soluci[oó]n|solu[cç][aã]o|op[cç][aã]o|opci[oó]n|passo|paso|verificar|"
    r"penyebab|solusi|masalah|cara|nguy[eê]n nh[aâ]n|c[aá]ch|gi[aả]i ph[aá]p|ursache|l[oö]sung|fehler|probl[eè]me)|"
    r"原因|解决|解決|対処|対策|方法|方案|问题|問題|症状|确认|確認|错误|錯誤|エラー|修正|修复|修復|手順|步骤|詳細",
    re.I,
)
SUBJECT_SCORE = 0.6  # a title or enclosing heading must name its family this clearly to lend it to its parts
JOINED_RE = re.compile(r"\s(?:&|and|y|e|et|und)\s|、|和|与|及|および")  # "Quota & Reference Images": two subjects


def _choose(
    unit: Unit, kb: KnowledgeBase, topics: Topics, title: str, context: str | None
) -> tuple[str | None, float, str, bool]:
    """`choose_family` without the enclosing heading's subject; the last value says whether the unit's own
    heading, or a quoted error, decided (else the enclosing heading may)."""
    reason = out_of_scope(_scope_text(unit))
    if reason:
        return None, 0.0, reason, True
    heading = expand(subject(unit, title))
    found, order = _from_heading(unit, heading, kb, topics)
    from_heading = found.best
    # A section headed by an error code no family knows (JOB_STATE_PENDING) is a new problem, whatever its text.
    unknown_code = unit.kind == "section" and from_heading < UNKNOWN_HEADING and ERROR_TOKEN_RE.search(unit.heading)
    if not unknown_code and (unit.kind != "section" or names_an_error(heading) or from_heading >= PARTIAL_HEADING):
        text = match(f"{heading}\n{expand(unit.text)}", kb, limit=6, about_gemini=True).matches
        # The heading decided; the text only breaks ties between what it allows. (A row's cells are one statement.)
        if from_heading >= ATTACH_SCORE and unit.kind != "table-row" and not CODE_ONLY_RE.match(unit.heading):
            by_text = {m.id: m.score for m in text}
            found.scores = {k: v + 0.1 * by_text.get(k, 0.0) for k, v in found.scores.items()}
        else:
            for m in text:
                found.offer(m.id, m.score, m.why)
    if from_heading >= PARTIAL_HEADING and found.best < ATTACH_SCORE:
        # The heading names a few families equally ("Review your network configuration"): the text says which.
        near = [k for k, v in found.scores.items() if v >= from_heading - ATTACH_MARGIN]
        # A word a crowd of families shares ("key", "model") leaves too many for a text's words to choose from.
        few = 1 < len(near) <= MAX_NEAR
        pick = topics.tell_apart(near, expand(prose(unit)), strict=True) if few else None
        if context in near and len(near) > 1:
            pick = context  # "Get a new key" under a guide about expired keys: that key family
        if pick:
            found.offer(pick, ATTACH_SCORE, f"{found.why[pick]}; the text is about {pick}")
    evidence: set[str] = set()
    if found.best < ATTACH_SCORE:
        for entry_id, score, why in _evidence(unit, kb):
            evidence.add(entry_id)
            found.offer(entry_id, score, why)
    where = "\n".join([title, *unit.parents, unit.heading, unit.text])
    scores = {k: v for k, v in found.scores.items() if not platform_missing(k, where)}
    if not scores:
        return None, 0.0, "not about a specific error", False
    body = {t.entry_id: t.score for t in topics.score(expand(prose(unit)))}
    scores = {k: v + BODY_TOPIC_WEIGHT * body.get(k, 0.0) for k, v in scores.items()}
    found.scores = scores
    strong = from_heading >= ATTACH_SCORE
    _settle_shared_status(unit, heading, found, kb, topics)
    scores = found.scores
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], order.get(kv[0], 1_000), kv[0]))
    best, score = ranked[0]
    strong = strong or best in evidence
    if score < ATTACH_SCORE:
        if not names_an_error(heading):
            return None, score, "not about a specific error", False
        return None, score, f"best family {best} scores only {score:.2f}", False
    child = _refined(best, unit, found, kb, topics)
    if child:  # a subsection's own words name a narrower family of what its parent heading is about
        return child, min(score, 1.0), f"{found.why[best]}; its own heading is about {child}", True
    if len(ranked) > 1:
        second, second_score = ranked[1]
        entries = kb.entries
        related = entries[best].specialises == second or entries[second].specialises == best
        if score - second_score < ATTACH_MARGIN and not related and order[best] == order[second]:
            if best in evidence and second in evidence:
                return best, min(score, 1.0), found.why[best], True  # two quoted errors: the other is added beside it
            if context in (best, second):
                return context, min(score, 1.0), f"{found.why[context]}; the enclosing heading is about {context}", True
            pick = topics.tell_apart([best, second], expand(prose(unit)))
            if pick:
                return pick, min(scores[pick], 1.0), f"{found.why[pick]}; the text is about {pick}", strong
            parent = entries[best].specialises
            if parent and parent == entries[second].specialises:
                return parent, min(score, 1.0), f"{best} and {second} both fit: their common family", strong
            return None, score, f"{best} and {second} fit equally well", strong
    return best, min(score, 1.0), found.why[best], strong


def names_an_error(heading: str) -> bool:
    """Whether a heading names a specific error: a status, an error code or an exception class."""
    signals = extract(heading)
    if signals.http_status or signals.status or signals.reasons or signals.exceptions or signals.finish_reasons:
        return True
    return bool(ERROR_TOKEN_RE.search(heading))


BARE_STATUS_RE = re.compile(r"(?<![\w.])([45]\d\d)(?![\w.])")


def subject(unit: Unit, title: str = "") -> str:
    """What a unit is about: its heading, after the nearest enclosing heading (or the title) that names an error.

    A bare status code in a heading ("Why do I get 429?") is spelt out as one, which the matcher
    would not assume of a number in a paste.
    """
    heading = unit.heading
    if unit.kind != "faq" and not names_an_error(heading):
        named = [p for p in (title, *unit.parents) if p and names_an_error(p)]
        heading = f"{named[-1]}: {heading}" if named else heading
    codes = BARE_STATUS_RE.findall(heading)
    if len(set(codes)) == 1 and not extract(heading).http_status:
        heading += f" (error {codes[0]})"
    return heading


def slug(text: str, taken: set[str]) -> str:
    """A stable entry id from a heading: its first words, lower case, dash-separated, unique in `taken`."""
    words = re.findall(r"[a-z0-9]+", text.lower())[:7]
    base = "-".join(words) or "article-entry"
    found, n = base, 2
    while found in taken:
        found, n = f"{base}-{n}", n + 1
    return found


def _new_entry(unit: Unit, entry_id: str, article: Article, display: str, known: dict[str, str]) -> Guide:
    advice = unit.advice
    signals = extract(unit.text)
    summary = (advice.summary or advice.causes or [f"Described in {article.title}."])[0]
    quoted = {m.casefold() for m in unit.messages}
    tokens = [
        m.group(0)
        for m in ERROR_TOKEN_RE.finditer(unit.heading)
        if "_" in m.group(0) and m.group(0).casefold() not in known and m.group(0).casefold() not in quoted
    ]
    return Guide(
        path=display,
        id=entry_id,
        title=unit.heading,
        http_status=signals.http_status,
        status=signals.status,
        retryable="unknown",
        docs=[],
        signatures=[Signature("messages", t, 0) for t in dict.fromkeys(tokens)],
        summary=summary,
        causes=advice.causes,
        fix=advice.fix,
        diagnosis=advice.diagnosis,
        example=advice.code[0] if advice.code else "",
        reviewed=False,
    )


def _known_signatures(kb: KnowledgeBase) -> dict[str, str]:
    return {s.text.casefold(): s.entry_id for s in kb.signatures if s.kind != "prose"}


CAUSE_SCORE = 0.6  # a cause item's own topic score (weighted) that makes it about a family


def _cause_families(unit: Unit, entry_id: str, kb: KnowledgeBase, topics: Topics) -> list[str]:
    """Families close to `entry_id` (its narrower or sibling families) that one cause item is all about."""
    entry = kb.entries[entry_id]
    found = []
    for cause in [*unit.advice.summary[:1], *unit.advice.causes[:8]]:  # what it means, and why it happens
        ranked = topics.score(expand(cause))
        if not ranked or TOPIC_WEIGHT * ranked[0].score < CAUSE_SCORE:
            continue
        top = ranked[0]
        if len(ranked) > 1 and top.score - ranked[1].score < ATTACH_MARGIN:
            continue
        other = kb.entries[top.entry_id]
        close = other.specialises == entry_id or (other.specialises and other.specialises == entry.specialises)
        # Two of its words, one that only this family's id has among its kin ("disabled", not "content").
        named = close and topics.distinctive(top.entry_id, other.specialises or "") & set(top.words)
        if top.entry_id != entry_id and named and len(top.words) > 1 and top.entry_id not in found:
            found.append(top.entry_id)
    return found


def _item_family(text: str, kb: KnowledgeBase) -> str | None:
    """The family one item's quoted error names confidently, if any."""
    if not ERROR_TOKEN_RE.search(text) and not FAILURE_WORDS_RE.search(text):
        return None
    result = match(text, kb, limit=2, about_gemini=True)
    top = result.top
    return top.id if top and top.score >= EVIDENCE_SCORE and result.confident else None


def _without_conflicts(unit: Unit, entry_id: str, kb: KnowledgeBase, table, plan: ArticlePlan) -> Unit:
    """The unit with every claim that contradicts the family's guide taken out (and listed)."""
    entry = kb.entries[entry_id]
    ident = " ".join(unit.cells[:3]) if unit.kind == "table-row" else unit.heading
    found = heading_conflict(ident, entry, unit.label)
    plan.conflicts += [found] if found else []
    advice = Advice()
    observed = PROBLEM_HEADING_RE.search(unit.heading) is not None
    for kind in ("summary", "causes", "diagnosis", "fix"):
        items = getattr(unit.advice, kind)
        if observed:  # under "Problem", an item naming another family's error is that family's, not a claim
            items = [i for i in items if _item_family(i, kb) in (None, entry_id)]
        kept, conflicts = check_items(items, entry, table, unit.label)
        setattr(advice, kind, kept)
        plan.conflicts += conflicts
    advice.code = list(unit.advice.code)
    # Lead-ins and prose that are not advice can still make the claim: list them for the reviewer too.
    listed = {c.claim for c in plan.conflicts}
    for line in unit.text.splitlines()[1:]:
        _, more = check_items([line], entry, table, unit.label)
        plan.conflicts += [c for c in more if c.claim not in listed and c.rule != "http-status"]
    for pair in unit.advice.faq:
        kept, conflicts = check_items([pair["a"]], entry, table, unit.label)
        plan.conflicts += conflicts
        if kept:
            advice.faq.append(pair)
    return Unit(unit.kind, unit.heading, unit.parents, unit.text, advice, unit.messages, unit.cells)


def _also_about(
    unit: Unit, entry_id: str, kb: KnowledgeBase, topics: Topics, *, title: str = ""
) -> list[tuple[str, float, str]]:
    """Other families a placed unit is about too, each with a score and why."""
    found: list[tuple[str, float, str]] = []
    words = _words(expand(unit.heading))
    for other in kb.entries:  # a heading naming two families in full ("Invalid or Missing API Key")
        if other != entry_id and len(other.split("-")) > 2 and _naming(other, words)[0] >= 1.0:
            found.append((other, NAMING_BONUS, f'heading also names "{other}"'))
    for other in _cause_families(unit, entry_id, kb, topics):  # a cause all about a narrower or sibling family
        found.append((other, CAUSE_SCORE, "one of its causes is about it"))
    found += _evidence(unit, kb, quoted=False)  # machine output that names another family confidently
    for child, parent in topics.parents.items():  # the same error on a platform the unit is about ("Vertex AI")
        only_platform = topics.distinctive(child, parent) and topics.distinctive(child, parent) <= set(PLATFORM_WORDS)
        if parent == entry_id and only_platform and not platform_missing(child, unit.heading + "\n" + unit.text):
            found.append((child, CAUSE_SCORE, "the same error on the platform the text is about"))
    unique: dict[str, tuple[str, float, str]] = {}
    context = "\n".join([title, *unit.parents, unit.heading, unit.text])
    for family in found:
        if family[0] != entry_id and not platform_missing(family[0], context):
            unique.setdefault(family[0], family)
    return list(unique.values())


def plan_article(article: Article, kb: KnowledgeBase, *, display: str, taken: set[str]) -> ArticlePlan:
    """What `article` adds to `kb`: placements, new unreviewed entries, new signatures and conflicts.

    `taken` holds entry ids already in use (curated and earlier articles' new entries); it is updated.
    """
    plan = ArticlePlan(article, display, hashlib.sha256(display.encode()).hexdigest()[:16])
    known = _known_signatures(kb)
    topics = topics_for(kb)
    table = rules(kb.entries)
    about: dict[str, str | None] = {}  # heading -> the family it names on its own

    def heading_subject(heading: str) -> str | None:
        if heading not in about:
            alone = Unit("section", heading, (), heading, Advice())
            family, score, _ = choose_family(alone, kb, topics)
            joined = JOINED_RE.search(heading)
            # One word is not enough to lend a subject ("internal wiki" is not about internal errors).
            words = next((t.words for t in topics.score(expand(heading)) if t.entry_id == family), ())
            status = kb.entries[family].http_status if family else None
            clear = names_an_error(heading) or len(words) > 1 or str(status) in BARE_STATUS_RE.findall(heading)
            about[heading] = family if score >= SUBJECT_SCORE and clear and not joined else None
        return about[heading]

    for unit in article.units:
        enclosing = [h for h in [*reversed(unit.parents), article.title] if h and h != unit.heading]
        context = next((f for h in enclosing if (f := heading_subject(h))), None)
        entry_id, score, why = choose_family(unit, kb, topics, title=article.title, context=context)
        home = entry_id
        if entry_id is not None:
            clean = _without_conflicts(unit, entry_id, kb, table, plan)
            if clean.advice or not unit.advice:
                plan.placements.append(Placement(clean, entry_id, score, why))
                for other, other_score, other_why in _also_about(unit, entry_id, kb, topics, title=article.title):
                    also = _without_conflicts(unit, other, kb, table, plan)
                    plan.placements.append(Placement(also, other, other_score, other_why))
            else:
                plan.placements.append(Placement(unit, None, score, f"only claims that contradict {entry_id}'s guide"))
        elif (
            unit.kind == "section"
            and names_an_error(subject(unit))
            and (unit.advice.fix or unit.advice.causes)
            and not out_of_scope(unit.heading)
        ):
            home = slug(unit.heading, taken)
            taken.add(home)
            plan.new_entries.append(_new_entry(unit, home, article, display, known))
            plan.placements.append(Placement(unit, home, score, f"no family covers it ({why})", new_entry=True))
        else:
            plan.placements.append(Placement(unit, None, score, why))
        if home is None and out_of_scope(_scope_text(unit)):
            continue  # an out-of-scope error's messages are not Gemini signatures
        for text in unit.messages:
            plan.signatures.append(_signature_plan(text, home, kb, known))
    seen: set[str] = set()
    unique = []
    for sig in plan.signatures:
        if sig.text.casefold() not in seen:
            seen.add(sig.text.casefold())
            unique.append(sig)
    plan.signatures = unique
    return plan


def _signature_plan(text: str, home: str | None, kb: KnowledgeBase, known: dict[str, str]) -> SignaturePlan:
    """Where a quoted message belongs: the family it matches on its own, else the unit's family."""
    owner = known.get(text.casefold())
    if owner:
        return SignaturePlan(text, owner, "known", f"already a signature of {owner}")
    result = match(text, kb, limit=2, about_gemini=True)
    top = result.top
    if (
        top
        and top.score >= SIGNATURE_SCORE
        and (result.confident or len(result.matches) < 2 or top.score - result.matches[1].score >= ATTACH_MARGIN)
    ):
        return SignaturePlan(text, top.id, "new", top.why)
    if home and ERROR_TOKEN_RE.search(text):
        return SignaturePlan(text, home, "new", "quoted in the section about it")
    return SignaturePlan(text, None, "unrecognised", "matches no family clearly")
