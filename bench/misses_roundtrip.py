"""The misses round trip, measured (issue 17): learning from what the bot could not answer.

1. One real paste, through Slack on loopback (the bot behind HTTP, the Slack stand-in, a real state file):
   the bot abstains on it in a channel; a maintainer labels the miss in App Home, adds it as a signature and
   approves the proposal; `gemini-kb misses --jsonl` and `gemini-kb ingest` run; a bot on the rebuilt
   knowledge base answers the same paste.
2. Every TRAIN paste of tests/data/real/pastes.jsonl the shipped knowledge base abstains on, labelled and
   approved the same way (error lines only) in one build: how many are answered afterwards, and what the
   build does to the TEST side (confident right / confident wrong, before and after).

Usage: python bench/misses_roundtrip.py [--paste b0144]      (make misses-roundtrip)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.cli import main as cli  # noqa: E402
from bot.curation import Curation  # noqa: E402
from bot.state import StateDB  # noqa: E402
from ingest.bootstrap import open_or_build  # noqa: E402
from ingest.build import build, signature_lines  # noqa: E402
from kb import corpus  # noqa: E402
from kb.excerpt import error_lines  # noqa: E402
from kb.matcher import match  # noqa: E402
from kb.settings import GUIDES_DIR  # noqa: E402
from kb.store import PROJECT_ROOT, KnowledgeBase, open_kb  # noqa: E402
from tests.bot_harness import TOKEN, running_bot  # noqa: E402
from tests.slack_stub import SlackStub, as_payload_form, home_opened_event, message_event, view_actions  # noqa: E402

MAINTAINER = "UMAINT001"
CHANNEL = "CROUNDTRP"


def _run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(list(argv))
    return code, out.getvalue()


def _element(view: dict, block_id: str, action_id: str) -> dict:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    return {**next(e for e in block["elements"] if e["action_id"] == action_id), "block_id": block_id}


def slack_round_trip(record: dict, tmp: Path) -> dict[str, object]:
    """Step 1; what happened at each stage."""
    base = tmp / "base.sqlite"
    build([GUIDES_DIR], base, root=PROJECT_ROOT)
    kb = open_kb(base)
    state_path = tmp / "state.sqlite"
    figures: dict[str, object] = {"paste": record["id"], "label": record["label"]}
    before = match(record["text"], kb)
    figures["before"] = {"confident": before.confident, "why": before.abstain_reason}
    with SlackStub(token=TOKEN) as slack:
        with running_bot(kb, slack, state_path, maintainers=(MAINTAINER,), digest_every=0) as bot:
            runs = 0

            def send(payload: dict) -> None:
                nonlocal runs
                bot.send(*as_payload_form(payload))
                runs += 1
                bot.settle(runs)

            bot.event(message_event(record["text"], channel=CHANNEL))
            runs += 1
            bot.settle(runs)
            figures["bot_posted_before"] = len(bot.messages())
            [miss] = bot.state.misses()
            bot.event(home_opened_event(MAINTAINER))
            runs += 1
            bot.settle(runs)
            view = slack.calls("views.publish")[-1].params["view"]
            select = _element(view, f"miss:{miss['id']}", "curation_label")
            option = next(o for o in select["options"] if o["value"] == record["label"])
            send(view_actions({**select, "selected_option": option}, user=MAINTAINER))
            send(view_actions(_element(view, f"miss:{miss['id']}", "curation_add_signature"), user=MAINTAINER))
            [proposal] = bot.state.proposals()
            view = slack.calls("views.publish")[-1].params["view"]
            send(view_actions(_element(view, f"proposal:{proposal['id']}", "curation_approve"), user=MAINTAINER))
            figures["proposal"] = {k: proposal[k] for k in ("id", "entry_id", "text", "channel", "day")}
        os.environ.update(
            GEMINI_KB_STATE_DB=str(state_path),
            GEMINI_KB_DB=str(tmp / "next.sqlite"),
            GEMINI_KB_APPROVED=str(tmp / "approved.jsonl"),
        )
        _code, exported = _run_cli("misses", "--jsonl")
        figures["corpus_records"] = [json.loads(line) for line in exported.splitlines()]
        _code, built = _run_cli("ingest")
        figures["ingest"] = built.strip()
        rebuilt = open_or_build(tmp / "next.sqlite")
        with running_bot(rebuilt, slack, tmp / "after.sqlite", digest_every=0) as after:
            after.event(message_event(record["text"], channel=CHANNEL))
            after.settle(1)
            posted = after.messages()
    result = match(record["text"], rebuilt)
    figures["after"] = {
        "confident": result.confident,
        "top": result.top.id if result.top else None,
        "score": round(result.top.score, 2) if result.top else None,
        "bot_posted": len(posted),
    }
    return figures


def _judge(records: list[dict], kb: KnowledgeBase) -> dict[str, int]:
    right = wrong = 0
    for r in records:
        result = match(r["text"], kb)
        if not result.confident or result.top is None:
            continue
        if result.top.id in {r["label"], *r.get("alt", [])}:
            right += 1
        else:
            wrong += 1
    return {"pastes": len(records), "confident_right": right, "confident_wrong": wrong}


def batch(tmp: Path) -> dict[str, object]:
    """Step 2: every abstained TRAIN paste labelled and approved, one build."""
    base = open_kb(tmp / "base.sqlite")
    train, test = corpus.split(corpus.load())
    missed = [
        r
        for r in train
        if r["label"] != "none" and not match(r["text"], base).confident and signature_lines(error_lines(r["text"]))
    ]
    abstained = [r for r in train if r["label"] != "none" and not match(r["text"], base).confident]
    state = StateDB(tmp / "batch-state.sqlite")
    curation = Curation(base, state)
    for r in missed:
        outcome = curation.propose(family=r["label"], text=r["text"], channel="CBATCH", origin="bench", by="bench")
        curation.decide(outcome.id, approve=True, by="bench")
    curation.export_approved(tmp / "batch.jsonl")
    state.close()
    started = time.perf_counter()
    report = build([GUIDES_DIR, tmp / "batch.jsonl"], tmp / "batch.sqlite", root=PROJECT_ROOT)
    after = open_kb(tmp / "batch.sqlite")
    return {
        "train_labelled_abstained": len(abstained),
        "with_error_lines": len(missed),
        "approved_signatures": report.approved,
        "build_s": round(time.perf_counter() - started, 2),
        "train_missed_after": _judge(missed, after),
        "test_before": _judge(test, base),
        "test_after": _judge(test, after),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paste", default="b0144", help="a TRAIN paste id the shipped knowledge base abstains on")
    args = parser.parse_args(argv)
    record = next((r for r in corpus.load() if r["id"] == args.paste), None)
    if record is None or record["id"] in corpus.test_ids():
        parser.error(f"{args.paste}: not a TRAIN paste of {corpus.CORPUS}")
    with tempfile.TemporaryDirectory(prefix="misses-roundtrip-") as name:
        tmp = Path(name)
        figures = {"round_trip": slack_round_trip(record, tmp), "batch": batch(tmp)}
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    trip = figures["round_trip"]
    ok = not trip["before"]["confident"] and trip["after"]["confident"] and trip["after"]["top"] == record["label"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
