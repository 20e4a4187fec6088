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


@pytest.mark.parametrize(
    "name",
    [
        "gemini-2.5-flash:generateContent#",  # the SDK would append :countTokens after the `#`: generation
        "gemini-2.5-flash:generateContent?",
        "gemini-2.5-flash:streamGenerateContent",
        "gemini-2.5-flash/../../files",
        "gemini 2.5 flash",
        "AIzaSyFAKE0123456789abcdefghijklmnopq",
        "xoxb-1234567890-FAKEFAKEFAKEFAKE0123",
        "",
    ],
)
def test_a_name_that_is_not_a_model_name_is_never_sent(kb, stub, name):
    before = len(stub.seen)
    report = model_check(kb, stub, name, deep=True)
    (result,) = report.results
    assert not result.ok and ("not a model name" in result.detail or "no model name" in result.detail)
    assert stub.seen[before:] == []
    assert name[5:] not in report.target or not name


def test_model_names_are_normalised_not_refused():
    from bot.checks.model import model_name

    assert model_name("Models/Gemini-2.5-Pro") == "gemini-2.5-pro"
    assert model_name("tunedModels/my-tuned-model-x7k3") == "tunedModels/my-tuned-model-x7k3"
    assert model_name("text-embedding-004") == "text-embedding-004"
    assert model_name("gemini-2.0-flash-thinking-exp-01-21") == "gemini-2.0-flash-thinking-exp-01-21"
