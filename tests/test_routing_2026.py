"""Routing of real pastes for the ten 2025-2026 families: top entry and confidence.

The pastes (`tests/data/routing_2026.jsonl`) are quoted from the public thread named in each record's
`source` (machine text verbatim, keys faked, people's sentences rewritten); they are a subset of the team
corpus `corpus/parts/kbfam.jsonl`, with the same ids. `kind` is `routed` (the new family must answer,
confidently) or `neighbour` (the text belongs to an older family, which must keep winning).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kb.matcher import match
from tests.test_guides import FAMILIES_2025_2026

DATA = Path(__file__).parent / "data" / "routing_2026.jsonl"
RECORDS = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
ROUTED = [r for r in RECORDS if r["kind"] == "routed"]
NEIGHBOURS = [r for r in RECORDS if r["kind"] == "neighbour"]
NEW_FAMILIES = set(FAMILIES_2025_2026)


@pytest.mark.parametrize("rec", ROUTED, ids=[f"{r['id']}-{r['label']}" for r in ROUTED])
def test_a_real_paste_routes_confidently_to_its_new_family(kb, rec):
    result = match(rec["text"], kb)
    assert result.top is not None and result.top.id == rec["label"], (rec["source"], result.matches)
    assert result.confident, (rec["source"], result.abstain_reason)


@pytest.mark.parametrize("rec", NEIGHBOURS, ids=[f"{r['id']}-{r['label']}" for r in NEIGHBOURS])
def test_a_paste_of_an_older_family_is_not_taken_by_the_new_one(kb, rec):
    result = match(rec["text"], kb)
    assert result.top is not None and result.top.id == rec["label"], (rec["source"], result.matches)
    assert result.confident and result.top.id not in rec["alt"]


def test_every_new_family_has_a_routed_paste_and_nothing_else_is_routed():
    assert {r["label"] for r in ROUTED} == NEW_FAMILIES


def test_a_live_deadline_close_is_the_session_limit_not_an_http_504(kb):
    paste = next(r["text"] for r in ROUTED if r["source"] == "google-gemini/cookbook#387")
    ids = [m.id for m in match(paste, kb).matches]
    assert ids[0] == "live-session-limit" and "deadline-exceeded" in ids[1:]
