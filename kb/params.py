"""Every number that decides the matcher's ranking and confidence, in one typed object loaded once.

Two kinds of parameter live here (the Drain3 habit: one config object, every knob named):
- fixed knobs of the procedure (how much text to read, how many candidates to score), set by hand
  and documented field by field;
- fitted weights: the feature weights of the ranking model and the calibration of its confidence,
  chosen on the train split of the real corpus by `make fit` (kb/fit.py) and checked in as
  `kb/params.json`. Nothing here is tuned on the test split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from functools import cache
from pathlib import Path

PARAMS_FILE = Path(__file__).resolve().parent / "params.json"

# The evidence features of one candidate entry; each gets one fitted weight (see kb/features.py).
FEATURES: tuple[str, ...] = (
    "message",  # best exact (or template) hit of a message signature, times its specificity
    "fuzzy",  # best near-miss of a message signature (rapidfuzz), 0..1
    "reason",  # an ErrorInfo reason / error code of the entry named in the paste
    "exception",  # an exception class of the entry named in the paste
    "finish_reason",  # a finish / block reason of the entry named in the paste
    "quota",  # a quota id of the entry named in the paste
    "more_hits",  # further signature hits beyond the best one, with diminishing weight
    "prose",  # BM25 fit of the paste's words to the entry's title, summary and causes, relative to the best
    "prose_best",  # 1 for the entry whose description fits the words best
    "names",  # share of the words of the entry's id the paste uses (`API key missing`)
    "vocab",  # BM25 fit of the paste's words to the words people used for the entry (learned, kb/vocabulary.py)
    "vocab_best",  # 1 for the entry whose learned vocabulary fits best
    "status_root",  # the paste names a status and the entry is the broadest family of that status
    "http_root",  # the paste gives only an HTTP code and the entry is the broadest family of it
    "bare_root",  # as status_root/http_root, for a paste that says little besides the status (`429 RESOURCE_EXHAUSTED`)
    "http_agree",  # the paste's HTTP code is the entry's
    "http_disagree",  # the paste carries an HTTP code, none of them the entry's
    "status_agree",  # the paste's status name is the entry's
    "status_disagree",  # the paste names a status, none of them the entry's
    "client_side",  # the entry has no HTTP status (a client-side failure) while the paste carries an error code
    "lifecycle",  # a model named in the paste was shut down (the model lifecycle table)
    "structured",  # a structured rule: quota limit 0, a method the model does not support
    "parent",  # the entry narrows a candidate family and adds evidence of its own (then it inherits the parent's)
    "live_close",  # a Live API close with no other family's message in its reason
    "gemini_context",  # the paste shows it is about Gemini (SDK, host, model name): shifts every candidate
    "foreign",  # the paste names another vendor or Google service: shifts every candidate
    "question",  # the paste is a question in words without machine output: shifts every candidate
    "other_service",  # the paste names a host that is neither Google's nor local: shifts every candidate
    "client_no_context",  # a client-side family (no HTTP status) for a paste that shows no sign of Gemini
)


# What the confidence reads of the top candidate (see kb/features.py `confidence_features`).
CONFIDENCE_FEATURES: tuple[str, ...] = (
    "share",  # logit of the top candidate's share against all candidates and "none of these"
    "related",  # share held by the top's parent and children (a close runner-up that is no rival)
    "exact",  # the top has an exact hit: a message, reason, finish reason, quota id, structured rule
    "words_only",  # the top has only words for it (description, family name), no signature or status
    "context",  # the paste shows it is about Gemini
    "question",  # the paste is a question in words
    "bias",
)


@dataclass(frozen=True)
class Params:
    """The matcher's parameters; `load_params()` reads the fitted ones once."""

    # -- retrieval (fixed) --------------------------------------------------------------------
    bm25_k1: float = 1.2  # BM25 term-frequency saturation (FTS5's default)
    bm25_b: float = 0.75  # BM25 length normalisation (FTS5's default)
    retrieve_words: int = 24  # most specific words of a paste used to retrieve signatures
    retrieve_min_words: int = 12  # used even when common, so a large knowledge base still finds candidates
    common_df: int = 1000  # a word in more signatures than this retrieves everything and ranks nothing
    retrieve_rows: int = 120  # signature rows taken from the BM25 ranking
    max_postings: int = 2_500  # index entries read per query at most (rarest words first): bounded work at scale
    root_families: int = 3  # at most this many broadest families of one status get status evidence
    status_families: int = 8  # families of one status made candidates by a paste that gives only the status
    max_candidates: int = 40  # entries scored per paste, the strongest by their best single hit
    # -- reading a paste (fixed) ------------------------------------------------------------
    focus_chars: int = 8_000  # text the matcher reads; longer pastes keep head, tail and error-looking lines
    fuzzy_min_len: int = 14  # shorter signatures must match exactly
    fuzzy_cutoff: float = 85.0  # rapidfuzz partial_ratio below this is no hit
    fuzzy_chars: int = 6_000  # the fuzzy comparison reads this much of the focused paste
    template_gap: int = 80  # one `<*>` of a signature stands for at most this many characters
    # -- hit strengths (fixed; the fitted weights scale them) ----------------------------------
    word_hit: float = 0.9  # a reason/finish reason/exception found as a word in text rather than as a field
    prose_specificity: float = 0.5  # a prose description says less than a signature
    code_specificity: float = 0.9  # a lone error code (`ECONNRESET`) as a message says a lot
    specificity_base: float = 0.45  # specificity of a message signature of n words: base + per_word * n
    specificity_per_word: float = 0.11
    fuzzy_floor: float = 0.35  # strength of a fuzzy hit at the cutoff; rises to fuzzy_floor + fuzzy_span at 100
    fuzzy_span: float = 0.4
    more_hits_decay: float = 0.25  # the i-th further hit counts more_hits_decay / i of its strength
    evidence_floor: float = 0.3  # own evidence at least this strong makes status-only evidence redundant
    inherit_floor: float = 0.5  # own evidence needed before a family inherits its parent's
    # -- fitted ---------------------------------------------------------------------------------
    weights: dict[str, float] = field(default_factory=dict)  # feature -> weight of the ranking model
    null_bias: float = 0.0  # score of "none of these": the bar every candidate has to clear
    # Confidence: a logistic over the top candidate's share and what kind of evidence it has
    # (CONFIDENCE_FEATURES), fitted on out-of-fold scores so it reflects pastes the weights did not see.
    calibration: dict[str, float] = field(default_factory=lambda: {"share": 1.0})
    confident: float = 0.5  # calibrated probability from which an answer is confident (bot/blocks.py too)
    high: float = 0.85  # from here the confidence reads "high"
    vocabulary: dict[str, list[str]] = field(default_factory=dict)  # family -> words people use (learned)
    fitted_on: str = ""  # what the fit saw (for the record)

    def weight(self, name: str) -> float:
        return self.weights.get(name, 0.0)


def params_from_dict(data: dict[str, object]) -> Params:
    """Params with the known fields of `data` over the defaults (unknown keys are an error)."""
    known = {f.name for f in fields(Params)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown matcher parameters: {sorted(unknown)}")
    weights = data.get("weights", {})
    if not isinstance(weights, dict) or set(weights) - set(FEATURES):
        raise ValueError(f"unknown feature weights: {sorted(set(weights) - set(FEATURES))}")
    calibration = data.get("calibration", {})
    if not isinstance(calibration, dict) or set(calibration) - set(CONFIDENCE_FEATURES):
        raise ValueError(f"unknown confidence features: {sorted(set(calibration) - set(CONFIDENCE_FEATURES))}")
    return replace(Params(), **data)  # type: ignore[arg-type]


@cache
def load_params(path: Path = PARAMS_FILE) -> Params:
    """The checked-in fitted parameters (defaults when the file is absent, as before the first fit)."""
    if not path.exists():
        return Params()
    return params_from_dict(json.loads(path.read_text(encoding="utf-8")))


def confidence_label(score: float, params: Params | None = None) -> str:
    """'high', 'medium' or 'low' on the same scale and threshold as the matcher's confident flag."""
    p = params or load_params()
    return "high" if score >= max(p.high, p.confident) else "medium" if score >= p.confident else "low"
