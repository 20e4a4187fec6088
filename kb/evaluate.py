"""`make eval`: how well the matcher answers labelled pastes, on the real corpus's train and test sides
and on the team-written set, per family and per shape, with the test misses and a reliability table.

Measures (a paste's right answers are its label and its `alt` ids):
- On pastes labelled with a Gemini family:
  - confident top-1: the top match is right and the matcher is confident;
  - top-1: the top match is right;
  - top-3: a right answer is among the first three matches;
  - confident but wrong: the matcher is confident and the top match is not right.
- On pastes labelled `none` (not a Gemini API problem):
  - answered confidently: the matcher is confident about some entry.
- Calibration: pastes are binned by the top match's probability (its score); in each bin the mean
  probability is set against the share whose top match is right (`none` pastes are never right);
  the expected calibration error is the bin-size-weighted mean gap.

Test misses are printed to read, never to tune on: weights and rules are chosen on train only.
Usage: python -m kb.evaluate [PATH ...] [--db PATH] [--misses] [--json]
       (no PATH: the real corpus's train and test sides, then tests/data/pastes.jsonl)
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from kb.corpus import CORPUS, load, split
from kb.matcher import match
from kb.settings import load_settings
from kb.store import KnowledgeBase, open_kb

DEFAULT_SET = Path(__file__).resolve().parent.parent / "tests" / "data" / "pastes.jsonl"
BINS = (0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0001)


@dataclass
class Report:
    """Eval figures over a labelled set."""

    gemini: int = 0
    none: int = 0
    top1: int = 0
    top3: int = 0
    confident_top1: int = 0
    confident_wrong: int = 0
    abstained: int = 0
    false_confident: int = 0
    misses: list[dict[str, object]] = field(default_factory=list)
    per_family: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    per_shape: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    calibration: list[tuple[float, bool]] = field(default_factory=list)  # (top probability, top is right)

    def figures(self) -> dict[str, float]:
        g, n = max(self.gemini, 1), max(self.none, 1)
        return {
            "confident_top1": self.confident_top1 / g,
            "top1": self.top1 / g,
            "top3": self.top3 / g,
            "confident_wrong": self.confident_wrong / g,
            "none_confident": self.false_confident / n,
            "wrongly_abstained": self.abstained / g,
            "ece": expected_calibration_error(self.calibration),
            # Earlier names, kept for callers of the old report.
            "confident_correct": self.confident_top1 / g,
            "false_confident_on_none": self.false_confident / n,
        }


def load_set(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def reliability(pairs: list[tuple[float, bool]]) -> list[tuple[float, float, int, float, float]]:
    """(bin low, bin high, count, mean probability, share right) per non-empty bin."""
    rows = []
    for lo, hi in itertools.pairwise(BINS):
        inside = [(p, ok) for p, ok in pairs if lo <= p < hi]
        if inside:
            rows.append(
                (
                    lo,
                    min(hi, 1.0),
                    len(inside),
                    sum(p for p, _ in inside) / len(inside),
                    sum(ok for _, ok in inside) / len(inside),
                )
            )
    return rows


def expected_calibration_error(pairs: list[tuple[float, bool]]) -> float:
    total = len(pairs)
    return sum(n * abs(mean_p - acc) for _lo, _hi, n, mean_p, acc in reliability(pairs)) / total if total else 0.0


def evaluate(kb: KnowledgeBase, records: list[dict[str, object]]) -> Report:
    """Run every paste through the matcher and count."""
    report = Report()
    for rec in records:
        label, text = str(rec["label"]), str(rec["text"])
        right = {label, *rec.get("alt", [])} - {"none"}
        shape = str(rec.get("shape", "?"))
        result = match(text, kb, limit=3)
        ids = [m.id for m in result.matches]
        top_right = bool(ids) and ids[0] in right
        if result.top:
            report.calibration.append((result.top.score, top_right))
        sh = report.per_shape[shape]
        sh["n"] += 1
        miss = {
            "id": rec.get("id"),
            "label": label,
            "shape": shape,
            "got": ids,
            "score": result.top.score if result.top else 0.0,
            "confident": result.confident,
            "why": result.top.why if result.top else "",
            "abstain": result.abstain_reason,
        }
        if label == "none":
            report.none += 1
            sh["none"] += 1
            if result.confident:
                report.false_confident += 1
                sh["none_confident"] += 1
                report.misses.append(miss)
            continue
        report.gemini += 1
        sh["gemini"] += 1
        fam = report.per_family[label]
        fam["n"] += 1
        if top_right:
            report.top1 += 1
            fam["top1"] += 1
            sh["top1"] += 1
            if result.confident:
                report.confident_top1 += 1
                fam["confident_top1"] += 1
                sh["confident_top1"] += 1
        elif result.confident:
            report.confident_wrong += 1
            fam["confident_wrong"] += 1
            sh["confident_wrong"] += 1
        if right & set(ids):
            report.top3 += 1
        if not result.confident:
            report.abstained += 1
            fam["abstained"] += 1
        if not (top_right and result.confident):
            report.misses.append(miss)
    return report


def render(report: Report, title: str = "", *, families: bool = True) -> str:
    f = report.figures()
    lines = [
        f"== {title} ==" if title else "",
        f"Gemini pastes: {report.gemini}   none pastes: {report.none}",
        f"confident top-1           {f['confident_top1']:.3f}",
        f"top-1                     {f['top1']:.3f}",
        f"top-3                     {f['top3']:.3f}",
        f"confident but wrong       {f['confident_wrong']:.3f}",
        f"none answered confidently {f['none_confident']:.3f}",
        f"calibration error (ECE)   {f['ece']:.3f}",
    ]
    if families:
        lines += [
            "",
            "Per family, where not all confident and right:",
            f"  {'family':<28} {'n':>3} {'top1':>5} {'conf':>5}",
        ]
        for fam, c in sorted(report.per_family.items(), key=lambda kv: (kv[1]["confident_top1"] / kv[1]["n"], kv[0])):
            if c["confident_top1"] < c["n"]:
                lines.append(f"  {fam:<28} {c['n']:>3} {c['top1']:>5} {c['confident_top1']:>5}")
        lines += [
            "",
            "Per shape:",
            f"  {'shape':<18} {'gem':>4} {'conf1':>6} {'top1':>5} {'cwrong':>6} {'none':>5} {'nconf':>5}",
        ]
        for shape, c in sorted(report.per_shape.items()):
            g = max(c["gemini"], 1)
            lines.append(
                f"  {shape:<18} {c['gemini']:>4} {c['confident_top1'] / g:>6.2f} {c['top1'] / g:>5.2f}"
                f" {c['confident_wrong']:>6} {c['none']:>5} {c['none_confident']:>5}"
            )
    return "\n".join(line for line in lines if line is not None)


def render_reliability(report: Report) -> str:
    lines = ["Reliability (top match probability vs share right):", "  bin          n   mean p   right"]
    for lo, hi, n, mean_p, acc in reliability(report.calibration):
        lines.append(f"  {lo:.2f}-{hi:.2f}  {n:>4}   {mean_p:.3f}   {acc:.3f}")
    lines.append(f"  ECE {report.figures()['ece']:.3f} over {len(report.calibration)} pastes")
    return "\n".join(lines)


def named_sets(paths: list[str]) -> list[tuple[str, list[dict[str, object]]]]:
    """The sets to evaluate: the given files, or the real corpus's sides and the team-written set."""
    if paths:
        return [(p, load_set(Path(p))) for p in paths]
    sets: list[tuple[str, list[dict[str, object]]]] = []
    if CORPUS.exists():
        train, test = split(load(CORPUS))
        sets += [("real corpus, train side", train), ("real corpus, TEST side", test)]
    else:
        print(f"(no real corpus at {CORPUS}: run 'python -m kb.corpus assemble PARTS')", file=sys.stderr)
    return [*sets, ("team-written set (tests/data/pastes.jsonl)", load_set(DEFAULT_SET))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kb.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="labelled JSON lines (default: real corpus sides + team set)")
    parser.add_argument("--db", help="knowledge-base file (default: the configured one, built if needed)")
    parser.add_argument("--misses", action="store_true", help="list every miss of every set")
    parser.add_argument("--json", action="store_true", help="print figures as JSON")
    args = parser.parse_args(argv)
    kb = open_kb(Path(args.db) if args.db else load_settings().kb_path)
    out: dict[str, object] = {}
    for name, records in named_sets(args.paths):
        report = evaluate(kb, records)
        out[name] = {"figures": report.figures(), "misses": report.misses}
        if args.json:
            continue
        print(render(report, name))
        print()
        print(render_reliability(report))
        if args.misses or "TEST" in name:
            print(f"\nMisses ({len(report.misses)}){' — to read, not to tune on' if 'TEST' in name else ''}:")
            for m in report.misses:
                print(
                    f"  {m['id']} {m['label']} [{m['shape']}] -> {m['got'][:3]} {m['score']:.2f}"
                    f" {'CONFIDENT' if m['confident'] else 'abstain: ' + str(m['abstain'])}"
                )
        print()
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
