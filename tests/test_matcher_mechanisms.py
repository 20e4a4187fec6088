"""The matcher's general mechanisms, each on its own: unwrapping, focus, Live closes, gates, status roots,
questions, BM25 against FTS5, parameters, the fit, and `ask --explain`."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from kb.bm25 import BM25Index, tokens
from kb.clean import MAX_CHARS, clean, focus
from kb.fit import Example as FitExample
from kb.fit import choose_threshold, fit_logistic, fit_ranker
from kb.matcher import Matcher, match
from kb.params import FEATURES, Params, confidence_label, load_params, params_from_dict
from kb.signals import extract

# -- cleaning and focus ---------------------------------------------------------------------------


def test_escaped_json_inside_json_is_unwrapped():
    inner = {"error": {"code": 403, "message": "Your API key was reported as leaked.", "status": "PERMISSION_DENIED"}}
    wrapped = json.dumps({"error": {"message": json.dumps(json.dumps(inner)), "code": 502}})
    out = clean(wrapped)
    assert '"status": "PERMISSION_DENIED"' in out and "\\" not in out


def test_a_wrapped_error_is_answered_by_what_is_inside(kb):
    inner = {
        "error": {
            "code": 403,
            "message": "Your API key was reported as leaked. Please use another API key.",
            "status": "PERMISSION_DENIED",
        }
    }
    relay = "litellm.BadRequestError: GeminiException - " + json.dumps({"error": {"message": json.dumps(inner)}})
    result = match(relay, kb)
    assert result.top.id == "api-key-leaked" and result.confident


def _log(lines: int, error: str, at: float) -> str:
    rows = [f"2026-11-29T10:00:{i % 60:02d}Z INFO worker request {i} served in {i % 700} ms" for i in range(lines)]
    rows.insert(int(lines * at), error)
    return "\n".join(rows)


def test_focus_keeps_an_error_in_the_middle_of_a_long_log_and_stays_bounded():
    error = "google.genai.errors.ClientError: 429 RESOURCE_EXHAUSTED. You exceeded your current quota"
    text = _log(4000, error, 0.4)  # about 250 KB, the error followed by thousands of lines
    kept = focus(text)
    assert error in kept and len(kept) <= MAX_CHARS + 200
    assert kept.startswith("2026-11-29T10:00:00Z") and kept.rstrip().endswith(f"served in {3999 % 700} ms")


def test_focus_leaves_short_pastes_alone():
    assert focus("a\nb") == "a\nb"


def test_an_error_followed_by_sixty_log_lines_is_found(kb):
    error = (
        '{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", '
        '"status": "INVALID_ARGUMENT", "details": [{"reason": "API_KEY_INVALID"}]}}'
    )
    text = _log(60, error, 0.0) + "\n" + _log(3000, "", 0.0)
    result = match(text, kb)
    assert result.top.id == "api-key-invalid"


def test_one_long_line_is_read_in_pieces():
    text = "x" * 300_000 + ' "status": "RESOURCE_EXHAUSTED" ' + "y" * 300_000
    assert "RESOURCE_EXHAUSTED" in focus(text)


# -- signals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "reason"),
    [
        (
            "websockets.exceptions.ConnectionClosedError: received 1008 (policy violation) API key expired.",
            1008,
            "API key expired.",
        ),
        (
            '{"type":"close","data":{"code":1011,"reason":"Deadline expired before operation could complete."}}',
            1011,
            "Deadline expired before operation could complete.",
        ),
        ("voice relay: WebSocket closed during setup: 1007", 1007, ""),
        ("Receive loop error, restarting Gemini session: 1008 None. Policy check failed", 1008, "Policy check failed"),
        ("the agent disconnects with a 1011 error after ten minutes", 1011, ""),
        ("closed with code=1011, reason=Internal error", 1011, "Internal error"),
    ],
)
def test_live_close_rules(text, code, reason):
    sig = extract(text)
    assert sig.live_close == code and sig.live_reason == reason


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ('"service": "language.googleapis.com"', "foreign", ["language.googleapis.com"]),
        ("POST https://cloudcode-pa.googleapis.com/v1internal:x", "foreign", []),
        ("https://us-central1-aiplatform.googleapis.com/v1/projects/p", "foreign", []),
        ("openai.RateLimitError: Error code: 429", "foreign", ["openai"]),
        ("curl https://api.example.com/v2/stock failed", "other_hosts", ["api.example.com"]),
        ("https://generativelanguage.googleapis.com/v1beta/models", "other_hosts", []),
        ("why does gemini return empty text?", "question", True),
        ("Traceback (most recent call last): why?", "question", False),
        ('{"candidates": [{"finishReason": "RECITATION"}]}', "gemini_context", True),
        ("finish_reason=SAFETY", "gemini_context", True),
        ("ConnectionResetError: [Errno 104] Connection reset by peer", "gemini_context", False),
        ("HTTP/1.1 502 Bad Gateway upstream said {'code': 429}", "http_statuses", [429, 502]),
        ("the response has a status code of 503 and the validator threw", "http_status", 503),
    ],
)
def test_new_signal_rules(text, field, value):
    got = getattr(extract(text), field)
    assert (sorted(got) if isinstance(got, list) else got) == (sorted(value) if isinstance(value, list) else value)


# -- decisions ------------------------------------------------------------------------------------------


def test_a_bare_status_line_answers_its_broadest_family(kb):
    assert match("429 RESOURCE_EXHAUSTED", kb).top.id == "rate-limit-exceeded"


def test_the_readme_key_example_is_answered(kb):
    result = match("API key not valid. Please pass a valid API key.", kb)
    assert result.top.id == "api-key-invalid" and result.confident


@pytest.mark.parametrize(
    "text",
    [
        "openai.RateLimitError: Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o', "
        "'type': 'requests', 'code': 'rate_limit_exceeded'}}",
        "anthropic.APIStatusError: {'type': 'error', 'error': {'type': 'overloaded_error', 'message': 'Overloaded'}}",
        "ConnectionResetError: [Errno 104] Connection reset by peer",
        "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='api.stripe.com', port=443): Read timed out.",
    ],
)
def test_other_vendors_and_bare_transport_errors_are_not_answered_confidently(kb, text):
    assert not match(text, kb).confident


def test_a_transport_error_for_the_gemini_host_is_answered(kb):
    text = (
        "httpx.ConnectError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate "
        "in certificate chain (_ssl.c:1006) while calling https://generativelanguage.googleapis.com/v1beta/models"
    )
    result = match(text, kb)
    assert result.top.id == "tls-or-proxy-error" and result.confident, result.abstain_reason


def test_a_finish_reason_dump_is_not_refused_as_not_gemini(kb):
    text = '{"candidates": [{"finishReason": "RECITATION", "index": 0}], "usageMetadata": {"promptTokenCount": 9}}'
    result = match(text, kb)
    assert result.top.id == "recitation-blocked" and "not Gemini" not in result.abstain_reason


def test_a_live_close_naming_a_family_answers_that_family_with_the_live_note(kb):
    text = (
        "websockets.exceptions.ConnectionClosedError: received 1008 (policy violation) API key expired. "
        "Please renew the API key."
    )
    result = match(text, kb)
    assert result.top.id == "api-key-expired"
    assert "Live API" in result.note and "Live API" in result.top.why


def test_a_bare_live_close_answers_live_api_closed(kb):
    assert match("gemini live session: websocket closed with code 1007", kb).top.id == "live-api-closed"


def test_a_live_deadline_close_is_the_session_limit(kb):
    text = "google.genai live: received 1011 (internal error) Deadline expired before operation could complete."
    assert match(text, kb).top.id == "live-session-limit"


def test_a_question_in_words_gets_candidates_from_the_descriptions(kb):
    result = match("why does the gemini api say my api key is missing?", kb)
    assert result.top is not None and result.top.id == "api-key-missing"


def test_runner_ups_never_read_above_the_top(kb):
    for text in ["429 RESOURCE_EXHAUSTED", "models/gemini-9 is not found for API version v1beta", "finish_reason: 2"]:
        result = match(text, kb, limit=5)
        assert all(m.score <= result.matches[0].score for m in result.matches[1:])


# -- BM25 against SQLite FTS5 ------------------------------------------------------------------------------

DOCS = [
    "api key not valid please pass a valid api key",
    "resource has been exhausted e g check quota",
    "you exceeded your current quota please check your plan and billing details",
    "the model is overloaded please try again later",
    "api key expired please renew the api key",
    "quota exceeded for quota metric generate content api requests per minute",
]


def test_bm25_reproduces_fts5_scores(tmp_path: Path):
    db = sqlite3.connect(tmp_path / "fts.sqlite")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='unicode61')")
    db.executemany("INSERT INTO t(rowid, body) VALUES (?, ?)", list(enumerate(DOCS, start=1)))
    index = BM25Index(enumerate(DOCS, start=1))
    for query in (["quota"], ["api", "key"], ["please", "quota", "overloaded"], ["exhausted", "check"]):
        fts = dict(
            db.execute(
                "SELECT rowid, bm25(t) FROM t WHERE t MATCH ?", (" OR ".join(f'"{q}"' for q in query),)
            ).fetchall()
        )
        ours = index.scores(query)
        assert set(ours) == set(fts)
        for doc_id, score in ours.items():
            assert math.isclose(score, -fts[doc_id], rel_tol=1e-9, abs_tol=1e-9), (query, doc_id)
    db.close()


def test_vocabulary_learns_shared_words_and_splits_cjk_runs():
    from kb.vocabulary import learn, terms

    pastes = [
        ("client-timeout", "the call hangs forever, timeout ignored"),
        ("client-timeout", "request hangs, no timeout"),
    ]
    vocab = learn([*pastes, ("none", "lunch today?"), ("rate-limit-exceeded", "too many requests hangs once")])
    assert "timeout" in vocab["client-timeout"] and "forever" not in vocab["client-timeout"]  # one paste is not enough
    assert "rate-limit-exceeded" not in vocab
    assert {"连接", "接超", "超时"} <= set(terms("连接超时"))


def test_bm25_work_is_bounded_by_the_postings_budget():
    index = BM25Index(enumerate([f"common rare{i}" for i in range(100)]))
    assert len(index.scores(["rare7", "common"], max_postings=10)) == 1  # the common word is left out
    assert len(index.scores(["rare7", "common"])) == 100
    assert tokens("API_KEY_INVALID: models/gemini-2.5") == ["api", "key", "invalid", "models", "gemini", "2", "5"]


# -- parameters ------------------------------------------------------------------------------------------------


def test_the_checked_in_parameters_load_and_name_only_known_features():
    params = load_params()
    assert set(params.weights) <= set(FEATURES) and params.weights
    assert 0.0 < params.confident < 1.0
    with pytest.raises(ValueError):
        params_from_dict({"weights": {"no_such_feature": 1.0}})
    with pytest.raises(ValueError):
        params_from_dict({"drain_sim_th": 0.4})


def test_a_confident_answer_never_reads_low():
    params = load_params()
    assert confidence_label(params.confident, params) in ("medium", "high")
    assert confidence_label(params.confident - 0.01, params) == "low"


def test_the_matcher_uses_the_parameters_it_is_given(kb):
    text = "API key not valid. Please pass a valid API key."
    never = Matcher(
        kb,
        Params(
            weights=dict(load_params().weights),
            null_bias=load_params().null_bias,
            calibration=dict(load_params().calibration),
            confident=0.999999,
        ),
    )
    assert not never.match(text).confident and match(text, kb).confident


# -- the fit ---------------------------------------------------------------------------------------------------------


def _example(i: int, right_has_message: bool) -> FitExample:
    msg = FEATURES.index("message")
    x_right = [0.0] * (len(FEATURES) + 1)
    x_wrong = [0.0] * (len(FEATURES) + 1)
    x_right[-1] = x_wrong[-1] = 1.0
    if right_has_message:
        x_right[msg] = 1.0
    else:
        x_wrong[msg] = 1.0
    return FitExample(
        str(i),
        str(i),
        1.0,
        {"right"},
        ["right", "wrong"],
        [x_right, x_wrong],
        {"right": set(), "wrong": set()},
        False,
        True,
    )


def test_the_ranker_learns_that_a_message_hit_speaks_for_its_entry_and_is_deterministic():
    data = [_example(i, right_has_message=i % 5 != 0) for i in range(50)]
    first, second = fit_ranker(data), fit_ranker(data)
    assert first == second
    assert first[FEATURES.index("message")] > 0.5


def test_logistic_fit_and_threshold():
    rows = [([x / 10, 1.0], float(x > 4), 1.0) for x in range(10)] + [([0.45, 1.0], 1.0, 1.0)]
    w = fit_logistic(rows)
    assert w[0] > 0
    probs = [(0.9, True, 1.0, False), (0.6, False, 1.0, False), (0.7, True, 1.0, False), (0.3, False, 1.0, True)]
    assert 0.6 < choose_threshold(probs) <= 0.7


# -- explain ---------------------------------------------------------------------------------------------------------


def test_ask_explain_shows_features_weights_and_the_decision(kb_path, capsys):
    assert main(["--db", str(kb_path), "ask", "--explain", "429 RESOURCE_EXHAUSTED"]) == 0
    out = capsys.readouterr().out
    assert "probability" in out and "threshold" in out and "rate-limit-exceeded" in out
    assert " x " in out and '"none of these"' in out
    assert main(["--db", str(kb_path), "ask", "--explain", "--json", "lunch?"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"candidates", "probability", "threshold", "abstain_reason"} <= set(data)
