"""`make fit`: choose the matcher's weights, calibration and threshold on the train side, in pure Python.

Procedure (deterministic; run time stays a dot product):
1. Examples: the real corpus's train split (`kb.corpus`) and the team-written set. Each paste's
   candidates and their features come from the matcher itself (features do not depend on weights).
2. Ranking: a conditional logit over each paste's candidates plus "none of these" (score
   `null_bias`): maximise the log-probability of the right entries (label or alt; "none" for pastes
   not about Gemini), with an L2 penalty, by Newton steps with the Fisher information.
3. Calibration: the ranking model is refitted on folds of the examples (grouped by source) and the
   top candidate's share on the held-out fold is mapped to "top is right" by a logistic
   (Platt) fit, so the probability reflects pastes the weights did not see.
4. Threshold: the lowest calibrated probability at which, out of fold, confident-but-wrong answers
   stay within MAX_WRONG of the Gemini pastes and confident answers within MAX_NONE of the others.

The test split is never read here.
Usage: python -m kb.fit [--db PATH] [--out kb/params.json] [--dry-run]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from kb.corpus import CORPUS, load, split
from kb.evaluate import DEFAULT_SET, load_set
from kb.features import TRANSPORT_FAMILIES, confidence_features
from kb.matcher import Matcher, _sigmoid
from kb.params import CONFIDENCE_FEATURES, FEATURES, PARAMS_FILE, Params
from kb.settings import load_settings
from kb.store import KnowledgeBase, open_kb
from kb.vocabulary import learn

L2 = 1.0  # ridge penalty on the weights (in units of one paste)
REAL_WEIGHT = 1.0  # a real paste counts this many team-written ones
FOLDS = 5  # for the out-of-fold calibration
MAX_WRONG = 0.02  # the targets the threshold is chosen to meet (out of fold): confident but wrong, of Gemini pastes
MAX_NONE = 0.03  # ... and answered confidently, of pastes not about Gemini
WRONG_COST = 3.0  # when no threshold meets them: a confident wrong answer costs this many right ones
ITERATIONS = 60
DIM = len(FEATURES) + 1  # the features and a constant (minus the null's score)
# Evidence for an entry can only speak for it: these weights are kept >= 0 (the fit is projected).
NON_NEGATIVE = frozenset(
    "message fuzzy reason exception finish_reason quota more_hits prose prose_best names status_root http_root "
    "bare_root http_agree status_agree lifecycle structured parent live_close".split()
)
# Where the train split has (almost) no example of a feature, its weight shrinks towards this prior
# instead of towards 0: a bare status line speaks for its broadest family as much as a message does for
# its own; a bare Live close for the Live family. Data, where there is some, outweighs the prior.
PRIOR = {"bare_root": 1.0, "live_close": 3.0}
_PRIOR = [PRIOR.get(name, 0.0) for name in FEATURES] + [0.0]
_LOWER = [0.0 if name in NON_NEGATIVE else -math.inf for name in FEATURES] + [-math.inf]


@dataclass
class Example:
    """One paste as the fit sees it."""

    id: str
    group: str  # the unit of the folds (the source)
    weight: float
    targets: set[str] | None  # right entries; None: "none of these" is right
    ids: list[str]
    xs: list[list[float]]
    family: dict[str, set[str]]
    foreign: bool  # the signals behind the matcher's gates (which no weight can overrule)
    context: bool

    def gated(self, top: str) -> bool:
        """Whether the matcher's gates forbid a confident answer with `top` on top."""
        return (self.foreign and not self.context) or (top in TRANSPORT_FAMILIES and not self.context)


def examples(matcher: Matcher, records: list[tuple[dict, float]]) -> list[Example]:
    """Features of every candidate of every record."""
    out = []
    for rec, weight in records:
        cands, signals, _ = matcher.candidates(str(rec["text"]))
        label = str(rec["label"])
        targets = None if label == "none" else {label, *rec.get("alt", [])}
        xs = [[c.features.get(f, 0.0) for f in FEATURES] + [1.0] for c in cands]
        ids = [c.entry_id for c in cands]
        family = {eid: matcher.evidence.family_of(eid) for eid in ids}
        group = str(rec.get("source") or rec.get("id"))
        out.append(
            Example(
                str(rec.get("id")),
                group,
                weight,
                targets,
                ids,
                xs,
                family,
                bool(signals.foreign),
                signals.gemini_context,
            )
        )
    return out


def _scores(w: list[float], ex: Example) -> list[float]:
    return [sum(a * b for a, b in zip(w, x, strict=True)) for x in ex.xs]


def _objective(w: list[float], data: list[Example]) -> float:
    total = -0.5 * L2 * sum((v - m) ** 2 for v, m in zip(w[:-1], _PRIOR, strict=False))
    for ex in data:
        s = _scores(w, ex)
        top = max([0.0, *s])
        log_all = top + math.log(math.exp(-top) + sum(math.exp(v - top) for v in s))
        if ex.targets is None:
            log_right = 0.0
        else:
            right = [v for v, eid in zip(s, ex.ids, strict=True) if eid in ex.targets]
            if not right:
                continue
            m = max(right)
            log_right = m + math.log(sum(math.exp(v - m) for v in right))
        total += ex.weight * (log_right - log_all)
    return total


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (a small dense system)."""
    n = len(b)
    m = [[*row[:], b[i]] for i, row in enumerate(a)]
    for col in range(n):
        piv = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[piv] = m[piv], m[col]
        if abs(m[col][col]) < 1e-12:
            continue
        for r in range(n):
            if r != col and m[r][col]:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col], strict=True)]
    return [m[i][n] / m[i][i] if abs(m[i][i]) > 1e-12 else 0.0 for i in range(n)]


def fit_ranker(data: list[Example]) -> list[float]:
    """Weights (last: the constant) maximising the penalised conditional log-likelihood."""
    # Pastes the foreign-vendor gate decides whatever the scores teach the ranking nothing (and would only
    # teach it that a reason code in another vendor's error is weak evidence).
    usable = [
        ex
        for ex in data
        if ex.xs and (ex.targets is None or ex.targets & set(ex.ids)) and not (ex.foreign and not ex.context)
    ]
    w = [max(m, lo) for m, lo in zip(_PRIOR, _LOWER, strict=True)]
    current = _objective(w, usable)
    for _ in range(ITERATIONS):
        grad = [0.0] * DIM
        hess = [[0.0] * DIM for _ in range(DIM)]
        for ex in usable:
            s = _scores(w, ex)
            top = max([0.0, *s])
            e = [math.exp(v - top) for v in s]
            z = math.exp(-top) + sum(e)
            p = [v / z for v in e]
            mean = [sum(pi * x[k] for pi, x in zip(p, ex.xs, strict=True)) for k in range(DIM)]
            if ex.targets is not None:
                r = [v if eid in ex.targets else 0.0 for v, eid in zip(e, ex.ids, strict=True)]
                zr = sum(r)
                target_mean = [sum(ri * x[k] for ri, x in zip(r, ex.xs, strict=True)) / zr for k in range(DIM)]
            else:
                target_mean = [0.0] * DIM
            for k in range(DIM):
                grad[k] += ex.weight * (target_mean[k] - mean[k])
            for pi, x in zip(p, ex.xs, strict=True):
                if pi < 1e-9:
                    continue
                for i in range(DIM):
                    if x[i]:
                        row, f = hess[i], ex.weight * pi * x[i]
                        for j in range(DIM):
                            row[j] += f * x[j]
            for i in range(DIM):
                if mean[i]:
                    row, f = hess[i], ex.weight * mean[i]
                    for j in range(DIM):
                        row[j] -= f * mean[j]
        for k in range(DIM - 1):
            grad[k] -= L2 * (w[k] - _PRIOR[k])
            hess[k][k] += L2
        hess[DIM - 1][DIM - 1] += 1e-6
        step = _solve(hess, grad)
        scale = 1.0
        while scale > 1e-3:
            trial = [max(lo, a + scale * b) for a, b, lo in zip(w, step, _LOWER, strict=True)]
            value = _objective(trial, usable)
            if value >= current - 1e-9:
                break
            scale /= 2
        else:
            break
        gain = value - current
        w, current = trial, value
        if gain < 1e-7:
            break
    return w


def top_of(w: list[float], ex: Example) -> tuple[str | None, float, float, dict[str, float]]:
    """The top candidate, its share against all and "none", its family's share, and its features."""
    if not ex.xs:
        return None, 0.0, 0.0, {}
    s = _scores(w, ex)
    order = sorted(range(len(s)), key=lambda i: (-s[i], ex.ids[i]))
    top = max([0.0, *s])
    z = math.exp(-top) + sum(math.exp(v - top) for v in s)
    best = order[0]
    share = math.exp(s[best] - top) / z
    fam = ex.family[ex.ids[best]]
    related = sum(math.exp(s[i] - top) / z for i in order[1:] if ex.ids[i] in fam)
    return ex.ids[best], share, related, dict(zip(FEATURES, ex.xs[best], strict=False))


def _fold(group: str) -> int:
    return int.from_bytes(hashlib.sha256(group.encode()).digest()[:4], "big") % FOLDS


def fit_logistic(rows: list[tuple[list[float], float, float]], l2: float = 1e-3) -> list[float]:
    """Plain weighted logistic regression by Newton (IRLS); each row is (x, y, weight)."""
    dim = len(rows[0][0])
    w = [0.0] * dim
    for _ in range(50):
        grad = [0.0] * dim
        hess = [[l2 if i == j else 0.0 for j in range(dim)] for i in range(dim)]
        for x, y, weight in rows:
            p = _sigmoid(sum(a * b for a, b in zip(w, x, strict=True)))
            for i in range(dim):
                grad[i] += weight * (y - p) * x[i]
                for j in range(dim):
                    hess[i][j] += weight * p * (1 - p) * x[i] * x[j]
        for i in range(dim):
            grad[i] -= l2 * w[i]
        step = _solve(hess, grad)
        w = [a + b for a, b in zip(w, step, strict=True)]
        if max(abs(b) for b in step) < 1e-8:
            break
    return w


def out_of_fold(data: list[Example]) -> list[tuple[Example, list[float], bool, bool]]:
    """(example, confidence features, top is right, gated) with the ranker fitted without the example's fold."""
    out = []
    for k in range(FOLDS):
        w = fit_ranker([ex for ex in data if _fold(ex.group) != k])
        for ex in data:
            if _fold(ex.group) != k:
                continue
            top, share, related, feats = top_of(w, ex)
            if top is None:
                continue
            x = confidence_features(share, related, feats)
            out.append((ex, x, ex.targets is not None and top in ex.targets, ex.gated(top)))
    return out


def choose_threshold(probs: list[tuple[float, bool, float, bool]]) -> float:
    """The lowest probability from which confident answers stay within the targets, on out-of-fold
    (probability, right, weight, not about Gemini) tuples: at most MAX_WRONG of the Gemini pastes answered
    confidently and wrongly, at most MAX_NONE of the other pastes answered at all. When no threshold
    meets both, the one where answering pays most with a wrong answer costing WRONG_COST right ones."""
    gemini = sum(w for _p, _r, w, none in probs if not none) or 1.0
    others = sum(w for _p, _r, w, none in probs if none) or 1.0
    grid = [step / 100 for step in range(20, 96)]
    for t in grid:
        wrong = sum(w for p, right, w, none in probs if p >= t and not none and not right) / gemini
        answered_none = sum(w for p, _r, w, none in probs if p >= t and none) / others
        if wrong <= MAX_WRONG and answered_none <= MAX_NONE:
            return t
    return max(grid, key=lambda t: sum(w * (1.0 if r else -WRONG_COST) for p, r, w, _n in probs if p >= t))


LAST_REPORT: dict[str, float] = {}  # out-of-fold figures of the last fit, on the real train pastes


def out_of_fold_figures(
    probs: list[tuple[float, bool, float, bool]], threshold: float, keep: list[bool] | None = None
) -> dict[str, float]:
    """Confident top-1, confident-but-wrong and none-confident at `threshold`, out of fold (train side only),
    over the rows `keep` marks (all by default)."""
    rows = [r for i, r in enumerate(probs) if keep is None or keep[i]]
    gemini = [r for r in rows if not r[3]] or [(0.0, False, 1.0, False)]
    others = [r for r in rows if r[3]] or [(0.0, False, 1.0, True)]
    return {
        "top1": sum(r[1] for r in gemini) / len(gemini),
        "confident_top1": sum(r[1] and r[0] >= threshold for r in gemini) / len(gemini),
        "confident_wrong": sum(not r[1] and r[0] >= threshold for r in gemini) / len(gemini),
        "none_confident": sum(r[0] >= threshold for r in others) / len(others),
    }


def cross_fitted_examples(kb: KnowledgeBase, records: list[tuple[dict, float]], base: Params) -> list[Example]:
    """Examples whose learned-vocabulary features come from a vocabulary built without their own fold,
    so the fit weighs the vocabulary as it will work on pastes it has not seen."""
    out: list[Example] = []
    for k in range(FOLDS):
        inside = [(r, w) for r, w in records if _fold(str(r.get("source") or r.get("id"))) == k]
        outside = [(str(r["label"]), str(r["text"])) for r, w in records if (r, w) not in inside]
        matcher = Matcher(kb, replace(base, vocabulary=learn(outside)))
        out += examples(matcher, inside)
    return out


def fit(kb: KnowledgeBase, records: list[tuple[dict, float]], base: Params | None = None) -> Params:
    """Fitted parameters for `kb` from weighted labelled records."""
    base = base or Params()  # the fixed knobs; fitted fields are all replaced below
    data = cross_fitted_examples(kb, records, base)
    oof = out_of_fold(data)
    calib = fit_logistic([(x, float(right), ex.weight) for ex, x, right, _ in oof])
    # A gated paste is never answered, whatever its probability.
    probs = [
        (
            0.0 if gated else _sigmoid(sum(a * b for a, b in zip(calib, x, strict=True))),
            right,
            ex.weight,
            ex.targets is None,
        )
        for ex, x, right, gated in oof
    ]
    w = fit_ranker(data)
    real = sum(1 for r, _w in records if not _is_team(r))
    real_ids = {str(r.get("id")) for r, _w in records if not _is_team(r)}
    is_real = [ex.id in real_ids for ex, *_ in oof]
    # The targets are about real pastes: the threshold is chosen on the real ones (all, when there are none).
    threshold = choose_threshold([p for p, keep in zip(probs, is_real, strict=True) if keep] or probs)
    LAST_REPORT.clear()
    LAST_REPORT.update(out_of_fold_figures(probs, threshold, is_real))
    return replace(
        base,
        weights={name: round(v, 4) for name, v in zip(FEATURES, w, strict=False)},
        null_bias=round(-w[-1], 4),
        calibration={name: round(v, 4) for name, v in zip(CONFIDENCE_FEATURES, calib, strict=True)},
        confident=threshold,
        vocabulary=learn((str(r["label"]), str(r["text"])) for r, _w in records),
        fitted_on=f"{real} real train pastes (x{REAL_WEIGHT:g}) + {len(records) - real} team-written pastes",
    )


def _is_team(record: dict) -> bool:
    """A team-written paste (tests/data/pastes.jsonl) rather than a real one: it has no source."""
    return not record.get("source")


def training_records() -> list[tuple[dict, float]]:
    """The real corpus's train side and the team-written set, with their weights."""
    real = split(load(CORPUS))[0] if CORPUS.exists() else []
    return [(r, REAL_WEIGHT) for r in real] + [(r, 1.0) for r in load_set(DEFAULT_SET)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kb.fit", description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="knowledge-base file (default: the configured one, built if needed)")
    parser.add_argument("--out", default=str(PARAMS_FILE), help="where to write the parameters")
    parser.add_argument("--dry-run", action="store_true", help="print the parameters, write nothing")
    args = parser.parse_args(argv)
    kb = open_kb(Path(args.db) if args.db else load_settings().kb_path)
    params = fit(kb, training_records())
    data = {
        k: v
        for k, v in asdict(params).items()
        if k in ("weights", "null_bias", "calibration", "confident", "vocabulary", "fitted_on")
    }
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if args.dry_run:
        print(text, end="")
    else:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}: confident from {params.confident:.2f}; {params.fitted_on}")
    print("out of fold, real train pastes: " + ", ".join(f"{k} {v:.3f}" for k, v in LAST_REPORT.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
