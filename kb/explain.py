"""`gemini-kb ask --explain`: why the matcher ranked and decided as it did, for one paste.

Shows the top candidates with each feature's value, weight and contribution to the score, the
score of "none of these", the calibrated probability against the threshold, and why it abstained.
"""

from __future__ import annotations

from kb.matcher import matcher_for
from kb.store import KnowledgeBase


def explain(text: str, kb: KnowledgeBase, *, limit: int = 5) -> dict[str, object]:
    """The explanation as data (see `Matcher.explain`)."""
    return matcher_for(kb).explain(text, limit=limit)


def render(data: dict[str, object]) -> str:
    """The explanation as text, one block per candidate."""
    lines: list[str] = []
    decision = "CONFIDENT" if data["confident"] else f"abstains: {data['abstain_reason']}"
    lines.append(
        f"probability {data['probability']:.3f} (threshold {data['threshold']:.2f}) -> {decision}"
        f"   [related share {data['related_share']:.3f}]"
    )
    if data.get("note"):
        lines.append(f"note: {data['note']}")
    sig = data["signals"]
    shown = {k: v for k, v in sig.items() if v not in (None, [], False, "")}  # type: ignore[union-attr]
    lines.append("signals: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    lines.append(f'"none of these" scores {data["null_score"]:.3f}')
    for i, cand in enumerate(data["candidates"], start=1):  # type: ignore[union-attr]
        lines.append(f"{i}. {cand['id']}  score {cand['score']:.3f}  share {cand['share']:.3f}")
        if cand["why"]:
            lines.append(f"   why: {cand['why']}")
        feats = sorted(cand["features"].items(), key=lambda kv: -abs(kv[1]["contribution"]))
        for name, f in feats:
            lines.append(f"   {name:<18} {f['value']:>6.3f} x {f['weight']:>7.3f} = {f['contribution']:>7.3f}")
    if not data["candidates"]:
        lines.append("no candidates: nothing in the paste matches a signature, a status or a description")
    return "\n".join(lines) + "\n"
