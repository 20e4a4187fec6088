"""The labelled pastes: accuracy and abstention figures the product must hold."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from kb.corpus import CORPUS, load, source_key, split
from kb.corpus import test_ids as frozen_test_ids
from kb.evaluate import DEFAULT_SET, evaluate, load_set
from kb.matcher import match
from tests.test_guides import COVERAGE_IDS, FAMILIES_2025_2026


@pytest.fixture(scope="module")
def records():
    return load_set(DEFAULT_SET)


@pytest.fixture(scope="module")
def report(kb, records):
    return evaluate(kb, records)


def test_the_set_is_big_and_covers_every_family(records):
    labels = Counter(r["label"] for r in records)
    assert len(records) >= 250
    assert labels["none"] >= 60
    # The ten 2025-2026 families are measured on real pastes (tests/test_routing_2026.py), not in this set.
    for entry_id in sorted(set(COVERAGE_IDS) - set(FAMILIES_2025_2026)):
        assert labels[entry_id] >= 4, entry_id
    assert set(labels) <= {*COVERAGE_IDS, "none"}


def test_top1_accuracy(report):
    assert report.figures()["top1"] >= 0.95, report.misses


def test_top3_accuracy(report):
    assert report.figures()["top3"] >= 0.99, report.misses


def test_few_confident_answers_on_pastes_that_are_not_about_gemini(report):
    assert report.figures()["false_confident_on_none"] <= 0.03, [m for m in report.misses if m["label"] == "none"]


def test_team_set_confident_answers(report):
    figures = report.figures()
    assert figures["confident_top1"] >= TEAM_FLOORS["confident_top1"]
    assert figures["confident_wrong"] <= TEAM_FLOORS["confident_wrong"]


# Floors a little below what the matcher reaches on the frozen TEST side of the real corpus (weights,
# rules and vocabularies are chosen on the train side only): a change that makes matching worse fails.
TEST_FLOORS = {"confident_top1": 0.74, "top1": 0.87, "top3": 0.94}
TEST_CEILINGS = {"confident_wrong": 0.06, "none_confident": 0.06, "ece": 0.08}
TEAM_FLOORS = {"confident_top1": 0.94, "confident_wrong": 0.035}


@pytest.fixture(scope="module")
def real_test_report(kb):
    if not CORPUS.exists():
        pytest.skip("no real corpus (tests/data/real/pastes.jsonl)")
    _train, test = split(load(CORPUS))
    assert len(test) >= 300
    return evaluate(kb, test)


@pytest.mark.parametrize("measure", sorted(TEST_FLOORS))
def test_real_test_side_floor(real_test_report, measure):
    assert real_test_report.figures()[measure] >= TEST_FLOORS[measure]


@pytest.mark.parametrize("measure", sorted(TEST_CEILINGS))
def test_real_test_side_ceiling(real_test_report, measure):
    assert real_test_report.figures()[measure] <= TEST_CEILINGS[measure]


def test_the_split_is_by_source_and_frozen():
    records = load(CORPUS)
    train, test = split(records)
    assert {r["id"] for r in test} == frozen_test_ids()
    train_sources = {source_key(r["source"]) for r in train}
    assert not [r["id"] for r in test if source_key(r["source"]) in train_sources]


SECRET_RE = re.compile(
    r"AIza[0-9A-Za-z_\-]{35}|AQ\.[0-9A-Za-z_\-]{40,80}|ya29\.[0-9A-Za-z_\-.]{10,}|xox[abposr]-[0-9A-Za-z\-]{10,}"
)


def test_pastes_with_secrets_are_flagged_and_never_echoed(kb, records):
    flagged = [r for r in records if r.get("secret")]
    assert len(flagged) >= 10
    for rec in flagged:
        secrets = SECRET_RE.findall(rec["text"])
        assert secrets, rec["id"]
        result = match(rec["text"], kb)
        assert result.secrets_found, rec["id"]
        dumped = json.dumps(result.as_dict())
        assert not [s for s in secrets if s in dumped], rec["id"]
