"""`gemini-kb check`: exit status, --json shape, key sources and masking, end to end over TLS."""

from __future__ import annotations

import json
import logging
import time

import pytest

from bot.cli import main
from kb.redact import mask
from tests.gemini_stub import PROXY_VARS, GeminiStub, TestPKI, stub_key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def stub(pki: TestPKI):
    with GeminiStub(tls=pki.trusted(), slow_seconds=2.0) as server:
        yield server


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, pki: TestPKI, stub: GeminiStub) -> None:
    """google-genai and the endpoint check both trust the test CA; the stand-in is the configured API."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("GEMINI_BASE_URL", stub.url)
    monkeypatch.setenv("GEMINI_CHECK_ALLOW_PRIVATE", "1")
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


def check(capsys, kb_path, *args: str) -> tuple[int, str, str]:
    code = main(["--db", str(kb_path), "check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_default_runs_key_and_endpoint_with_the_configured_key(capsys, kb_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", stub_key("valid"))
    start = time.perf_counter()
    code, out, _ = check(capsys, kb_path, "--json")
    elapsed = time.perf_counter() - start
    report = json.loads(out)
    assert code == 0 and report["ok"] is True
    assert [r["name"] for r in report["results"]] == [
        "key", "endpoint.proxy", "endpoint.dns", "endpoint.tcp", "endpoint.tls", "endpoint.http",
    ]  # fmt: skip
    assert set(report["results"][0]) == {"name", "ok", "latency_ms", "detail", "entry_id", "entry_title", "fix", "data"}
    assert elapsed < 5.0


def test_google_api_key_is_the_fallback(capsys, kb_path, monkeypatch):
    monkeypatch.setenv("GOOGLE_API_KEY", stub_key("invalid"))
    code, out, _ = check(capsys, kb_path, "key", "--json")
    assert code == 1 and json.loads(out)["results"][0]["entry_id"] == "api-key-invalid"


def test_key_argument_wins_over_the_environment(capsys, kb_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", stub_key("invalid"))
    code, out, _ = check(capsys, kb_path, "key", stub_key("valid"))
    assert code == 0 and "all checks passed" in out


def test_key_from_standard_input(capsys, kb_path, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(stub_key("disabled") + "\n"))
    code, out, _ = check(capsys, kb_path, "key", "-", "--json")
    assert code == 1 and json.loads(out)["results"][0]["entry_id"] == "service-disabled"


def test_failure_table_names_the_entry_and_its_fix(capsys, kb_path):
    code, out, _ = check(capsys, kb_path, "key", stub_key("quota"))
    assert code == 1
    assert "FAIL" in out and "[rate-limit-exceeded]" in out and "  1. " in out
    assert "gemini-kb show rate-limit-exceeded" in out


def test_timeout_option_bounds_the_key_check(capsys, kb_path):
    code, out, _ = check(capsys, kb_path, "key", stub_key("slow"), "--timeout", "0.4", "--json")
    result = json.loads(out)["results"][0]
    assert code == 1 and result["entry_id"] == "client-timeout" and result["latency_ms"] < 1500


def test_model_check_with_deep(capsys, kb_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", stub_key("valid"))
    code, out, _ = check(capsys, kb_path, "model", "gemini-2.5-flash", "--deep", "--json")
    assert code == 0 and [r["name"] for r in json.loads(out)["results"]] == ["model", "model.count_tokens"]


def test_endpoint_url_argument(capsys, kb_path, stub):
    code, out, _ = check(capsys, kb_path, "endpoint", stub.url)
    assert code == 0 and "endpoint.tls" in out and "PERMISSION_DENIED" in out


def test_missing_key_fails_with_its_entry(capsys, kb_path):
    code, out, _ = check(capsys, kb_path, "key", "--json")
    assert code == 1 and json.loads(out)["results"][0]["entry_id"] == "api-key-missing"


def test_private_endpoint_without_allow_setting_fails(capsys, kb_path, stub, monkeypatch):
    monkeypatch.delenv("GEMINI_CHECK_ALLOW_PRIVATE")
    code, out, _ = check(capsys, kb_path, "endpoint", "--json")
    result = json.loads(out)["results"][0]
    assert code == 1 and result["detail"].startswith("refused:")


@pytest.mark.parametrize(
    "args",
    [
        ["model"],
        ["bogus"],
        ["endpoint", "http://generativelanguage.googleapis.com"],
        ["endpoint", "--base-url", "ftp://x"],
        ["--timeout", "0"],
        ["--timeout", "1000"],
        ["key", "--base-url", "https://user:pw@example.com"],
    ],
)
def test_bad_usage_exits_2(capsys, kb_path, args):
    code, out, err = check(capsys, kb_path, *args)
    assert code == 2 and err.startswith("gemini-kb:") and out == ""


def test_key_is_masked_in_every_output_and_log(capsys, kb_path, caplog):
    caplog.set_level(logging.DEBUG)
    for behaviour in ("valid", "invalid", "slow"):
        key = stub_key(behaviour)
        for extra in ([], ["--json"]):
            _code, out, err = check(capsys, kb_path, "key", key, "--timeout", "0.4", *extra)
            assert key not in out + err + caplog.text
            assert mask(key) in (out if not extra else json.loads(out)["target"])
