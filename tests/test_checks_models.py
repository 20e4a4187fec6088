"""The models check: ListModels (every page) against the lifecycle table stored in the knowledge base."""

from __future__ import annotations

import json
from datetime import date

import pytest

from bot.chat_command import parse_command
from bot.checks.models import current_names, drift
from bot.checks.runner import run_checks
from bot.cli import main
from kb.schema import ModelInfo
from tests.gemini_stub import PROXY_VARS, GeminiStub, _model, stub_key

TODAY = date.today().isoformat()
UNLISTED = "gemini-test-unlisted-9"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


def served(*names: str) -> list[dict]:
    return [_model(n, n, 1_048_576, 65_536, ["generateContent", "countTokens"]) for n in names]


def models_check(kb, stub: GeminiStub, key: str = "valid"):
    return run_checks(
        ["models"], key=stub_key(key), base_url=stub.url, model=None, timeout=2.0, deep=False, kb=kb, allow_private=True
    )


def test_drift_names_each_kind_of_disagreement():
    table = [
        ModelInfo("old-1", "retired", "2024-01-01", "new-1"),
        ModelInfo("going-1", "deprecated", "2999-01-01", "new-1"),
        ModelInfo("gone-by-date", "deprecated", "2020-01-01", None),
        ModelInfo("kept-1", "active"),
    ]
    assert current_names(table, "2026-11-29") == {"going-1", "kept-1", "new-1"}
    found = drift(["models/old-1", "models/gone-by-date", "models/new-1", "models/brand-new"], table, "2026-11-29")
    assert found.still_served == ["gone-by-date", "old-1"]
    assert found.missing == ["going-1", "kept-1"]
    assert found.unknown == ["brand-new"]
    assert drift(["models/going-1", "models/kept-1", "models/new-1"], table, "2026-11-29").none


def test_models_check_follows_every_page_and_reports_drift_against_the_stored_table(kb):
    table = list(kb.models.values())
    retired = next(m.name for m in table if m.shut_down(TODAY))
    current = sorted(current_names(table, TODAY))
    with GeminiStub(models=served(retired, current[0], UNLISTED, *current[1:3]), page_cap=2) as stub:
        report = models_check(kb, stub)
        tokens = [s.page_token for s in stub.seen if s.path == "/v1beta/models"]
    [result] = report.results
    assert result.name == "models" and not result.ok
    assert result.data["served"] == 5  # all three pages were read
    assert len(tokens) == 3 and tokens[0] == "" and all(tokens[1:])
    assert result.data["still_served"] == [retired]
    assert result.data["unknown"] == [UNLISTED]
    assert result.data["missing"] == current[3:]
    assert retired in result.detail and UNLISTED in result.detail
    assert result.entry_id == "model-retired"  # the family whose table drifted explains the failure


def test_models_check_passes_when_the_api_serves_what_the_table_expects(kb):
    with GeminiStub(models=served(*sorted(current_names(list(kb.models.values()), TODAY)))) as stub:
        [result] = models_check(kb, stub).results
    assert result.ok and result.data["still_served"] == result.data["missing"] == result.data["unknown"] == []


def test_models_check_with_a_bad_key_is_explained_like_the_key_check(kb):
    with GeminiStub() as stub:
        [result] = models_check(kb, stub, key="invalid").results
    assert not result.ok and result.entry_id == "api-key-invalid"


def test_cli_check_models_and_models_table(capsys, kb_path, monkeypatch):
    with GeminiStub() as stub:
        monkeypatch.setenv("GEMINI_BASE_URL", stub.url)
        monkeypatch.setenv("GEMINI_CHECK_ALLOW_PRIVATE", "1")
        monkeypatch.setenv("GEMINI_API_KEY", stub_key("valid"))
        code = main(["--db", str(kb_path), "check", "models", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and [r["name"] for r in report["results"]] == ["models"]
    assert "gemini-2.0-flash" in report["results"][0]["data"]["still_served"]  # the stand-in still serves it
    assert main(["--db", str(kb_path), "check", "models", "extra"]) == 2
    assert "takes no argument" in capsys.readouterr().err
    assert main(["--db", str(kb_path), "models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and {"name", "status", "date", "replacement", "entry_id"} <= set(rows[0])
    assert main(["--db", str(kb_path), "models"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("MODEL") and rows[0]["name"] in text


def test_slash_command_knows_the_new_check_from_the_registry():
    assert parse_command("models").kinds == ("models",)
    assert parse_command("models share").share is True
    assert parse_command("models gemini-2.5-flash").action == "lookup"  # no argument: the words are a lookup
