"""The labelled pastes: accuracy and abstention figures the product must hold."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

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
