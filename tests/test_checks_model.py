"""The model check: metadata of a known model, closest names on 404, and --deep count_tokens."""

from __future__ import annotations

import pytest

from bot.checks.model import closest_models
from bot.checks.runner import run_checks
from tests.gemini_stub import PROXY_VARS, GeminiStub, stub_key

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def stub():
    with GeminiStub() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


def model_check(kb, stub, name: str, *, key: str = "valid", deep: bool = False, kinds=("model",)):
    return run_checks(
        list(kinds),
        key=stub_key(key),
        base_url=stub.url,
        model=name,
        timeout=TIMEOUT,
        deep=deep,
        kb=kb,
        allow_private=True,
    )


def test_known_model_reports_methods_and_token_limits(kb, stub):
    report = model_check(kb, stub, "models/gemini-2.5-flash")
    (result,) = report.results
    assert result.ok
    assert result.data["display_name"] == "Gemini 2.5 Flash"
    assert "generateContent" in result.data["supported_actions"]
    assert (result.data["input_token_limit"], result.data["output_token_limit"]) == (1_048_576, 65_536)


def test_unknown_model_suggests_the_closest_names_the_key_sees(kb, stub):
    (result,) = model_check(kb, stub, "gemini-2.5-flsh").results
    assert not result.ok
    assert result.entry_id == "model-not-found"
    assert result.data["closest"][0] == "gemini-2.5-flash"
    assert "did you mean gemini-2.5-flash" in result.detail


def test_deep_check_counts_tokens_on_the_model(kb, stub):
    report = model_check(kb, stub, "gemini-2.5-pro", deep=True)
    assert [r.name for r in report.results] == ["model", "model.count_tokens"]
    assert report.ok and report.results[1].data["total_tokens"] == 2
    assert stub.seen[-1].path == "/v1beta/models/gemini-2.5-pro:countTokens"


def test_model_check_with_a_failing_key_is_explained_by_the_key_problem(kb, stub):
    (result,) = model_check(kb, stub, "gemini-2.5-flash", key="overloaded").results
    assert not result.ok and result.entry_id == "model-overloaded"


def test_model_is_not_checked_when_the_key_check_failed(kb, stub):
    report = model_check(kb, stub, "gemini-2.5-flash", key="invalid", kinds=("key", "model"))
    assert [(r.name, r.ok, r.entry_id) for r in report.results] == [
        ("key", False, "api-key-invalid"),
        ("model", False, None),
    ]


def test_closest_models_ignores_prefix_and_case():
    names = ["models/gemini-2.5-flash", "models/gemini-2.5-pro", "models/gemini-embedding-001"]
    assert closest_models("Models/Gemini-2.5-Pro-latest", names)[0] == "gemini-2.5-pro"
    assert closest_models("zzzz", names) == []
