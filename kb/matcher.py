"""Map a pasted error to knowledge-base entries, say why, and abstain when unsure.

Pipeline: clean (markup, escaped JSON) -> redact -> focus (head, tail and error-looking lines of a
long paste) -> signals -> normalise -> candidates (signal index + in-memory BM25) -> evidence
features per candidate entry (kb/features.py) -> a linear score with fitted weights -> the top
candidate's share against "none of these" -> a calibrated probability that the answer is right.
Every number is a named field of `kb.params.Params`; the weights are fitted by `make fit`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from kb.clean import clean, collapse_frames, focus
from kb.features import EXACT_FEATURES, TRANSPORT_FAMILIES, Candidate, Evidence, confidence_features
from kb.normalize import normalize
from kb.params import CONFIDENCE_FEATURES, FEATURES, Params, load_params
from kb.redact import redact
from kb.signals import Signals, extract
from kb.store import KnowledgeBase


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
    """The answer to a paste. The top match's score is the calibrated probability that it is right."""

    matches: list[Match]
    confident: bool
    secrets_found: bool
    secret_kinds: list[str] = field(default_factory=list)
    signals: Signals = field(default_factory=Signals)
    abstain_reason: str = ""
    note: str = ""  # context worth saying beside the answer (e.g. a Live API close)

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
            "note": self.note,
        }


@dataclass
class Scored:
    """A paste's candidates after scoring: what `match` decides from and `--explain` shows."""

    candidates: list[Candidate]  # best first
    scores: list[float]  # linear score of each candidate
    shares: list[float]  # each candidate's share against all and "none of these"
    probability: float  # calibrated probability that the top candidate is right
    related_share: float  # share of the top's parent and children
    gate: str  # a rule that forbids a confident answer whatever the score ("" when none)
    signals: Signals
    secret_kinds: list[str]
    note: str


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def linear(params: Params, features: dict[str, float]) -> float:
    """The ranking score of one candidate."""
    return sum(params.weight(name) * value for name, value in features.items())


def calibrate(params: Params, share: float, related_share: float, top: dict[str, float]) -> float:
    """Probability that the top candidate is right (a logistic fitted out of fold, see kb/fit.py)."""
    x = confidence_features(share, related_share, top)
    return _sigmoid(sum(params.calibration.get(name, 0.0) * v for name, v in zip(CONFIDENCE_FEATURES, x, strict=True)))


class Matcher:
    """Holds the in-memory indexes built from a knowledge base; `match` only reads them."""

    def __init__(self, kb: KnowledgeBase, params: Params | None = None):
        self.kb = kb
        self.params = params or load_params()
        self.evidence = Evidence(kb, self.params)

    def prepare(self, text: str, *, about_gemini: bool = False) -> tuple[str, Signals, list[str]]:
        """The focused text the matcher reads, its signals, and the kinds of secrets redacted."""
        cleaned = clean(text if isinstance(text, str) else str(text))
        redacted, secret_kinds = redact(cleaned)
        focused = focus(collapse_frames(redacted), self.params.focus_chars)
        signals = extract(focused)
        if about_gemini:
            # Known to be about Gemini: other vendors' mentions do not count, and an error it names is a
            # Gemini error (a section that names none is not made likely by the article's topic alone).
            names_error = bool(
                signals.http_status or signals.status or signals.reasons or signals.exceptions or signals.finish_reasons
            )
            signals.gemini_context, signals.foreign = signals.gemini_context or names_error, []
        return focused, signals, secret_kinds

    def candidates(self, text: str, *, about_gemini: bool = False) -> tuple[list[Candidate], Signals, list[str]]:
        """Candidate entries with their evidence features (independent of the fitted weights)."""
        focused, signals, secret_kinds = self.prepare(text, about_gemini=about_gemini)
        cands = self.evidence.collect(focused, normalize(focused), signals, words=not about_gemini or signals.question)
        if (
            about_gemini
            and not signals.gemini_context
            and any(c.features.get(f) for c in cands for f in EXACT_FEATURES)
        ):
            # Text about Gemini that quotes a known error message word for word names a Gemini error.
            signals.gemini_context = True
            for c in cands:
                c.features["gemini_context"] = 1.0
                c.features.pop("client_no_context", None)
        return cands, signals, secret_kinds

    def score(self, text: str, *, about_gemini: bool = False) -> Scored:
        """Score every candidate and calibrate the top one."""
        p = self.params
        cands, signals, secret_kinds = self.candidates(text, about_gemini=about_gemini)
        scored = sorted(((linear(p, c.features), c) for c in cands), key=lambda sc: (-sc[0], sc[1].entry_id))
        scores = [s for s, _ in scored]
        ordered = [c for _, c in scored]
        top = max([p.null_bias, *scores])
        total = math.exp(p.null_bias - top) + sum(math.exp(s - top) for s in scores)
        shares = [math.exp(s - top) / total for s in scores]
        related_share = 0.0
        probability = 0.0
        if ordered:
            family = self.evidence.family_of(ordered[0].entry_id)
            related_share = sum(sh for c, sh in zip(ordered[1:], shares[1:], strict=True) if c.entry_id in family)
            probability = calibrate(p, shares[0], related_share, ordered[0].features)
        gate = ""
        if about_gemini:
            pass
        elif signals.foreign and not signals.gemini_context:
            gate = f"the paste is about {signals.foreign[0]}, not Gemini"
        elif ordered and ordered[0].entry_id in TRANSPORT_FAMILIES and not signals.gemini_context:
            gate = f"a {ordered[0].entry_id} failure of any HTTP client, and nothing in the paste says Gemini"
        note = ""
        if signals.live_close:
            reason = f": {signals.live_reason[:80]}" if signals.live_reason else ""
            note = f"Live API session closed with {signals.live_close}{reason}"
        return Scored(ordered, scores, shares, probability, related_share, gate, signals, secret_kinds, note)

    def match(self, text: str, *, limit: int = 3, about_gemini: bool = False) -> MatchResult:
        """The best entries for `text`, best first, with a confident flag.

        `about_gemini` says the text is known to be about Gemini (a Gemini troubleshooting article),
        so the matcher does not ask the text itself to show it; it then answers from error signatures
        and statuses only, not from how the words resemble a description (the caller judges those).
        """
        s = self.score(text, about_gemini=about_gemini)
        matches = []
        for i, cand in enumerate(s.candidates[:limit]):
            # The top shows the calibrated probability; a runner-up how well it stands against "none of
            # these" on its own (its evidence, not its share against the top), never above the top.
            value = s.probability if i == 0 else min(_sigmoid(s.scores[i] - self.params.null_bias), s.probability)
            why = cand.why()
            if i == 0 and s.note:
                why = f"{why} ({s.note})" if why else s.note
            matches.append(Match(cand.entry_id, self.kb.entries[cand.entry_id].title, value, why))
        confident, reason = self.decide(s)
        return MatchResult(matches, confident, bool(s.secret_kinds), s.secret_kinds, s.signals, reason, s.note)

    def decide(self, s: Scored) -> tuple[bool, str]:
        """Confident when the calibrated probability reaches the one threshold and no gate forbids it."""
        if not s.candidates:
            return False, "nothing in the paste matches a known error"
        if s.gate:
            return False, s.gate
        if s.probability >= self.params.confident:
            return True, ""
        top = s.candidates[0].entry_id
        if (
            len(s.candidates) > 1
            and s.shares[1] > s.shares[0] / 3
            and s.candidates[1].entry_id not in (self.evidence.family_of(top))
        ):
            return False, f"{top} and {s.candidates[1].entry_id} are about equally likely ({s.probability:.2f})"
        if not s.signals.gemini_context and s.probability < self.params.confident:
            return False, f"the best match, {top}, is too weak ({s.probability:.2f}) and nothing says Gemini"
        return False, f"the best match, {top}, is too weak ({s.probability:.2f} < {self.params.confident:.2f})"

    def explain(self, text: str, *, limit: int = 5) -> dict[str, object]:
        """Features, weights and contributions of the top candidates, the probability and the decision."""
        s = self.score(text)
        confident, reason = self.decide(s)
        rows = []
        for cand, score, share in list(zip(s.candidates, s.scores, s.shares, strict=True))[:limit]:
            contributions = {
                name: {
                    "value": round(v, 3),
                    "weight": round(self.params.weight(name), 3),
                    "contribution": round(v * self.params.weight(name), 3),
                }
                for name, v in cand.features.items()
                if v
            }
            rows.append(
                {
                    "id": cand.entry_id,
                    "score": round(score, 3),
                    "share": round(share, 3),
                    "why": cand.why(),
                    "features": contributions,
                }
            )
        return {
            "candidates": rows,
            "null_score": round(self.params.null_bias, 3),
            "related_share": round(s.related_share, 3),
            "probability": round(s.probability, 3),
            "threshold": self.params.confident,
            "confident": confident,
            "abstain_reason": reason,
            "note": s.note,
            "signals": s.signals.as_dict(),
            "features": list(FEATURES),
        }


def matcher_for(kb: KnowledgeBase) -> Matcher:
    """One matcher per knowledge base object (indexes are built once), owned by that object."""
    return kb.derived("matcher", Matcher)


def match(text: str, kb: KnowledgeBase, *, limit: int = 3, about_gemini: bool = False) -> MatchResult:
    """Match `text` against `kb`; see `Matcher.match`."""
    return matcher_for(kb).match(text, limit=limit, about_gemini=about_gemini)
