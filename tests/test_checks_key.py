"""The key check against the local stand-in: each API answer and transport failure maps to its entry."""

from __future__ import annotations

import json
import logging

import pytest

from bot.checks.runner import run_checks
from kb.redact import mask
from tests.gemini_stub import PROXY_VARS, GeminiStub, closed_port_url, stub_key

TIMEOUT = 0.5


@pytest.fixture(scope="module")
def stub():
    with GeminiStub(slow_seconds=3 * TIMEOUT) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


def key_check(kb, key: str | None, url: str):
    report = run_checks(
        ["key"], key=key, base_url=url, model=None, timeout=TIMEOUT, deep=False, kb=kb, allow_private=True
    )
    assert [r.name for r in report.results] == ["key"]
    return report.results[0]


def test_valid_key_counts_the_models_it_sees(kb, stub):
    result = key_check(kb, stub_key("valid"), stub.url)
    assert result.ok, result.detail
    assert result.data["models"] == 5 and result.data["generate_models"] == 4
    assert result.entry_id is None
    assert stub.seen[-1].path == "/v1beta/models"  # pinned to v1beta, not the SDK's v1 default


@pytest.mark.parametrize(
    ("behaviour", "entry_id", "in_detail"),
    [
        ("invalid", "api-key-invalid", "400 INVALID_ARGUMENT"),
        ("disabled", "service-disabled", "reason SERVICE_DISABLED"),
        ("quota", "rate-limit-exceeded", "retry after 27s"),
        ("overloaded", "model-overloaded", "503 UNAVAILABLE"),
        ("slow", "client-timeout", "ReadTimeout"),
    ],
)
def test_failed_key_check_is_explained_by_its_entry(kb, stub, behaviour, entry_id, in_detail):
    result = key_check(kb, stub_key(behaviour), stub.url)
    assert not result.ok
    assert result.entry_id == entry_id, result.data.get("match")
    assert in_detail in result.detail
    assert result.entry_title and result.fix and len(result.fix) <= 3


def test_invalid_key_keeps_the_error_info_reason(kb, stub):
    result = key_check(kb, stub_key("invalid"), stub.url)
    assert result.data["code"] == 400 and result.data["reasons"] == ["API_KEY_INVALID"]


def test_refused_connection_is_a_connect_failure(kb):
    result = key_check(kb, stub_key("valid"), closed_port_url("http"))
    assert not result.ok
    assert result.entry_id == "dns-or-connect-failure"
    assert "Connection refused" in result.detail


def test_missing_key_is_explained_without_any_request(kb, stub):
    before = len(stub.seen)
    result = key_check(kb, None, stub.url)
    assert not result.ok and result.entry_id == "api-key-missing"
    assert len(stub.seen) == before


def test_slow_answer_is_bounded_by_the_timeout(kb, stub):
    result = key_check(kb, stub_key("slow"), stub.url)
    assert result.latency_ms is not None and result.latency_ms < TIMEOUT * 1000 * 2


def test_key_never_appears_in_results_or_logs(kb, stub, caplog):
    caplog.set_level(logging.DEBUG)
    for behaviour in ("valid", "invalid", "quota"):
        key = stub_key(behaviour)
        report = run_checks(
            ["key", "model"],
            key=key,
            base_url=stub.url,
            model="gemini-2.5-flash",
            timeout=TIMEOUT,
            deep=True,
            kb=kb,
            allow_private=True,
        )
        dumped = json.dumps(report.as_dict(), ensure_ascii=False)
        assert key not in dumped and mask(key) in dumped
        assert key not in caplog.text
    assert caplog.records  # the SDK and the HTTP client did log: the assertion above means something


def test_http_base_url_needs_the_allow_setting(kb, stub):
    report = run_checks(
        ["key"],
        key=stub_key("valid"),
        base_url=stub.url,
        model=None,
        timeout=TIMEOUT,
        deep=False,
        kb=kb,
        allow_private=False,
    )
    assert not report.ok
    assert "GEMINI_CHECK_ALLOW_PRIVATE" in report.results[0].detail
