"""Each cleaning, redaction, signal and normalisation rule on its own, and the match call."""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from kb.clean import MAX_CHARS, cap, clean
from kb.matcher import match
from kb.normalize import normalize
from kb.redact import mask, redact
from kb.signals import extract

FAKE_KEY = "AIzaSyFAKEFAKEFAKEFAKEFAKEFAKEFAKE12345"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("&lt;b&gt; &amp; x", "<b> & x"),
        ("see <https://ai.google.dev/x|the docs>", "see https://ai.google.dev/x the docs"),
        ("<https://example.com/a>", "https://example.com/a"),
        ("hey <@U123ABC> look", "hey @user look"),
        ("in <#C0123|oncall>", "in #oncall"),
        ("<!here> broken", " broken"),
        ("```python\nboom\n```", "\nboom\n\n"),
        ("`inline`", "inline"),
        ("a\x00b\x1bc", "a b c"),
        ("bad \ud800 surrogate", "bad  surrogate"),
    ],
)
def test_clean_rules(raw, expected):
    assert clean(raw) == expected


def test_cap_keeps_head_and_tail():
    text = "HEAD line\n" + ("noise frame\n" * 5000) + "google.genai.errors.ClientError: 429 last line"
    capped = cap(text)
    assert len(capped) <= MAX_CHARS + 10
    assert capped.startswith("HEAD line") and capped.endswith("429 last line")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (f"key={FAKE_KEY}", "google-api-key"),
        ("Authorization: Bearer ya29.a0AfH6SMBfakefakefakefake", "google-oauth-token"),
        ("token xoxb-0000000000-FAKEFAKEFAKE", "slack-token"),
        ("xapp-1-A0FAKE-0000-abcdefabcdef", "slack-app-token"),
        ("-H 'x-goog-api-key: AQ.fakeauthkeyvalue123'", "api-key-header"),
        ("https://host/v1beta/models?key=AQ.fakefakefake1", "api-key-param"),
        ("GEMINI_API_KEY=AQ.fakefakefakefake", "api-key-assignment"),
        ("-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----", "private-key"),
    ],
)
def test_redact_rules(text, kind):
    out, kinds = redact(text)
    assert kind in kinds
    assert "[REDACTED" in out
    secret = text.split("=")[-1] if kind.startswith("api-key-param") else None
    if secret:
        assert secret not in out


def test_mask_shows_only_the_ends():
    assert mask(FAKE_KEY) == "AIza…345"
    assert mask("short") == "…"


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ('{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}', "http_status", 429),
        ("HTTP/2 503 \r\ncontent-type: application/json", "http_status", 503),
        ("[GoogleGenerativeAI Error]: [404 Not Found] models/x", "http_status", 404),
        ("google.api_core.exceptions.PermissionDenied: 403 denied", "status", None),
        ("status = StatusCode.UNAVAILABLE details", "status", "UNAVAILABLE"),
        ("'reason': 'API_KEY_INVALID'", "reasons", ["API_KEY_INVALID"]),
        ("finish_reason=<FinishReason.SAFETY: 'SAFETY'>", "finish_reasons", ["SAFETY"]),
        ('"finishReason": "MAX_TOKENS"', "finish_reasons", ["MAX_TOKENS"]),
        (
            "quotaId: GenerateRequestsPerDayPerProjectPerModel-FreeTier",
            "quota_ids",
            ["GenerateRequestsPerDayPerProjectPerModel-FreeTier"],
        ),
        ("POST https://us-central1-aiplatform.googleapis.com/v1/x", "hosts", ["us-central1-aiplatform.googleapis.com"]),
        ("model='gemini-2.5-flash-preview-05-20' failed", "models", ["gemini-2.5-flash-preview-05-20"]),
        ("for API version v1beta, or", "api_version", "v1beta"),
        ("KeyError: 'user_id'", "gemini_context", False),
        ("from google import genai", "gemini_context", True),
    ],
)
def test_signal_rules(text, field, value):
    assert getattr(extract(text), field) == value


def test_exception_classes_are_extracted():
    sig = extract("google.api_core.exceptions.ResourceExhausted: 429 Resource has been exhausted")
    assert "ResourceExhausted" in sig.exceptions
    assert sig.http_status == 429


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models/gemini-9-ultra is not found", "models/<*> is not found"),
        ("The input token count (1048577) exceeds (1048576)", "the input token count (<*>) exceeds (<*>)"),
        ("retry in 20.5s please", "retry in <*> please"),
        ("The File 8ihs1o5x0vr2 is not ACTIVE", "the file <*> is not active"),
        ("files/abc-123 and projects/my-proj-1", "files/<*> and projects/<*>"),
        ("see https://ai.google.dev/x?y=1 now", "see <*> now"),
        ("limit: 0, model: gemini-2.0-flash", "limit: 0, model: <*>"),
        ("id 3f2a9c1e-1111-2222-3333-444455556666", "id <*>"),
        ("models/<model> is not found", "models/<*> is not found"),
    ],
)
def test_normalise_rules(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize(
    "query",
    ['"', '" OR *', "NEAR(a b)", "AND OR NOT", "-api -key", "col:value", "a* ^b", "((((", "'); DROP TABLE entries; --"],
)
def test_fts_syntax_in_pastes_is_harmless(kb, query):
    result = match(f"{query} API key not valid {query}", kb)
    assert result.matches and result.matches[0].id == "api-key-invalid"


def test_match_explains_itself(kb):
    body = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
        }
    }
    result = match(json.dumps(body), kb)
    assert result.confident and result.top.id == "api-key-invalid"
    assert "reason API_KEY_INVALID" in result.top.why
    assert 0.0 <= result.top.score <= 1.0
    assert result.signals.http_status == 400


def test_retired_model_is_told_apart_from_a_misspelt_one(kb):
    tmpl = "404 NOT_FOUND models/{} is not found for API version v1beta, or is not supported for generateContent."
    retired = match(tmpl.format("gemini-1.5-flash"), kb)
    assert retired.top.id == "model-retired" and retired.confident
    assert "gemini-1.5-flash" in retired.top.why
    misspelt = match(tmpl.format("gemini-2.5-flsh"), kb)
    assert misspelt.top.id == "model-not-found" and misspelt.confident


@pytest.mark.parametrize("text", ["", "   ", "lunch at noon?", "KeyError: 'user_id'"])
def test_non_gemini_text_is_not_answered_confidently(kb, text):
    assert not match(text, kb).confident


def test_ask_json_shape_and_usage_errors(kb_path, capsys):
    assert main(["--db", str(kb_path), "ask", "--json", f"API key not valid {FAKE_KEY}"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"confident", "matches", "secrets_found"} <= set(data)
    assert set(data["matches"][0]) >= {"id", "title", "score", "why"}
    assert data["secrets_found"] is True
    assert FAKE_KEY not in json.dumps(data)
    assert main(["--db", str(kb_path), "ask", "--jsonl", "extra"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["--db", str(kb_path), "ask", "--nope"])
    assert exc.value.code == 2


def test_ask_without_match_says_so(kb_path, capsys):
    assert main(["--db", str(kb_path), "ask", "is anyone up for lunch?"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("No confident match")
