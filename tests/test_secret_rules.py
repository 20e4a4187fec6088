"""`kb.redact`: each rule on its own, every secret shape of `tests/secret_shapes.py` in every encoding,
and what must stay untouched (error text, model names, ids)."""

from __future__ import annotations

import pytest

from kb.redact import RULES, find, looks_random, redact
from tests.bot_harness import KEY_ERROR, RATE_ERROR
from tests.secret_shapes import SHAPES, all_shapes, leaked

# rule -> (a text it must find a secret in, the secret, a look-alike it must leave alone)
EXAMPLES: dict[str, tuple[str, str, str]] = {
    "private-key": (
        "-----BEGIN PRIVATE KEY-----\nMIIEvFAKEabc123\nMIIEFAKEdef456",
        "MIIEFAKEdef456",
        "-----BEGIN CERTIFICATE-----",
    ),
    "google-api-key": (
        "k AIzaSyFAKE0123456789abcdefghijklmnopq",
        "AIzaSyFAKE0123456789abcdefghijklmnopq",
        "AIza short",
    ),
    "google-oauth-token": ("ya29.a0FAKEtoken0123456789", "ya29.a0FAKEtoken0123456789", "ya29.short"),
    "google-refresh-token": (
        "1//0gFAKE0123456789abcdefghijklmnopqrstuv",
        "1//0gFAKE0123456789abcdefghijklmnopqrstuv",
        "http://0.0.0.0",
    ),
    "google-oauth-client-secret": ("GOCSPX-FAKE0123456789abcdefghij", "GOCSPX-FAKE0123456789abcdefghij", "GOCSPX-x"),
    "slack-token": ("xoxb-1234-FAKEFAKEFAKE", "xoxb-1234-FAKEFAKEFAKE", "xoxb-1"),
    "slack-app-token": ("xapp-1-A0FAKE-0000-abcdefabcdef", "xapp-1-A0FAKE-0000-abcdefabcdef", "xapp-x"),
    "slack-webhook": (
        "https://hooks.slack.com/services/T0FAKE/B0FAKE/FAKE0123456789",
        "T0FAKE/B0FAKE/FAKE0123456789",
        "https://hooks.slack.com/",
    ),
    "aws-access-key-id": ("AKIAFAKE0123456789AB", "AKIAFAKE0123456789AB", "XAKIAFAKE0123456789AB"),
    "openai-key": (
        "sk-proj-FAKE0123456789abcdefghij",
        "sk-proj-FAKE0123456789abcdefghij",
        "task-force-0123456789abcdefghij",
    ),
    "github-token": (
        "github_pat_FAKE0123456789abcdefgh_ijklmnopqrstuvwxyz0123456789",
        "github_pat_FAKE0123456789abcdefgh_ijklmnopqrstuvwxyz0123456789",
        "ghp_short",
    ),
    "gitlab-token": ("glpat-FAKE0123456789abcdef", "glpat-FAKE0123456789abcdef", "glpat-x"),
    "huggingface-token": ("hf_FAKE0123456789abcdefghijklmnopqr", "hf_FAKE0123456789abcdefghijklmnopqr", "shf_x"),
    "stripe-key": ("sk_live_FAKE0123456789abcdefgh", "sk_live_FAKE0123456789abcdefgh", "sk_live_"),
    "jwt": (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJGQUtFIn0.FAKEsig",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJGQUtFIn0.FAKEsig",
        "eyJ.only",
    ),
    "bearer-token": ("Authorization: Bearer FAKEopaque0123456789", "FAKEopaque0123456789", "bearer of bad news"),
    "basic-auth": ("Authorization: Basic dXNlcjpGQUtFcGFzcw==", "dXNlcjpGQUtFcGFzcw==", "basic troubleshooting"),
    "url-credentials": ("http://user:FAKEpass1@proxy:3128", "FAKEpass1", "https://example.com:443/x"),
    "api-key-header": ("x-goog-api-key: FAKEopaque0123", "FAKEopaque0123", "x-goog-api-key header missing"),
    "api-key-param": ("https://x/v1beta/models?key=FAKEopaque0123", "FAKEopaque0123", "?key=short"),
    "api-key-assignment": (
        'os.environ["GEMINI_API_KEY"] = "plainFAKEvalue"',
        "plainFAKEvalue",
        'api_key=os.environ["GEMINI_API_KEY"]',
    ),
    "named-secret": ("client_secret: Xk9fFAKE2LmZ8rT4vW6y", "Xk9fFAKE2LmZ8rT4vW6y", "token_count: 1234567890123456"),
    "random-token": ("id Xk9fFAKE2LmZ8rT4vW6yB1nC3 end", "Xk9fFAKE2LmZ8rT4vW6yB1nC3", "gemini-2.5-flash-preview-05-20"),
}


def test_every_rule_has_an_example():
    assert {r.name for r in RULES} == set(EXAMPLES)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_each_rule_alone_finds_its_secret_and_leaves_its_look_alike(rule):
    text, secret, look_alike = EXAMPLES[rule.name]
    assert any(secret in found for found in find(rule, text)), find(rule, text)
    assert find(rule, look_alike) == []


@pytest.mark.parametrize("secret", all_shapes(), ids=lambda s: s.shape)
def test_every_shape_is_redacted_in_clear_and_decoded_forms(secret):
    out, kinds = redact(secret.text)
    assert kinds, out
    assert not leaked(secret, out), out


def test_the_shapes_cover_the_classes_asked_for():
    classes = {cls for cls, *_ in SHAPES}
    assert len(SHAPES) >= 60
    assert {
        "google",
        "slack",
        "vendor",
        "private key",
        "header",
        "code",
        "split",
        "encoded",
        "invisible",
        "entities",
    } <= classes


@pytest.mark.parametrize(
    "text",
    [
        KEY_ERROR,
        RATE_ERROR,
        "404 models/gemini-2.5-flash-preview-05-20 is not found for API version v1beta",
        "request id 3f1c7a1e-4b2d-4c8a-9e3f-0a1b2c3d4e5f failed with 503 UNAVAILABLE",
        "GEMINI_API_KEY is not set; export GEMINI_API_KEY=$(cat key.txt)",
        "api_key=os.environ['GEMINI_API_KEY']",
        "token_count: 1234567890123456 exceeds the limit",
        "The above exception was the direct cause of the following exception:",
        "YOUR_API_KEY_HERE",
        "x-goog-api-key header is missing",
        "basic troubleshooting",
    ],
)
def test_ordinary_error_text_is_left_alone(text):
    assert redact(text) == (text, [])


def test_random_looking_means_mixed_and_long():
    assert looks_random("Xk9fFAKE2LmZ8rT4vW6y")
    for word in ("generativelanguage", "YOUR_API_KEY_HERE", "1234567890123456", "gemini-2.5-flash", "short1A"):
        assert not looks_random(word), word


def test_strict_mode_also_drops_unnamed_random_tokens_but_keeps_paths_and_hosts():
    text = "POST https://gateway.example.com/v1/Xk9fFAKE2LmZ8rT4vW6yB1nC3dE5g failed"
    assert redact(text) == (text, [])
    out, kinds = redact(text, strict=True)
    assert kinds == ["random-token"] and "Xk9fFAKE" not in out and "https://gateway.example.com/v1/" in out


@pytest.mark.parametrize("before", [" ", "model ", "models/", "(", "\n"])
def test_a_boundary_rule_finds_its_secret_after_any_separator(before):
    for shape in all_shapes(seed=5):
        if shape.one_word and "%" not in shape.text:
            assert not leaked(shape, redact(before + shape.text)[0]), (before, shape.shape)
