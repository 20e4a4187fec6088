"""Property tests: any text returns a result and never raises; a planted key never comes back."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb.matcher import match

KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
api_keys = st.text(alphabet=KEY_CHARS, min_size=35, max_size=35).map(lambda s: "AIza" + s)
slack_tokens = st.text(alphabet=KEY_CHARS[:62], min_size=24, max_size=40).map(lambda s: "xoxb-1234-" + s)
oauth_tokens = st.text(alphabet=KEY_CHARS, min_size=20, max_size=60).map(lambda s: "ya29." + s)
secrets = st.one_of(api_keys, slack_tokens, oauth_tokens)
fts_noise = st.sampled_from(['"', "*", "NEAR(", "AND", "OR", "NOT", "-", "^", ":", "(", ")", "{", "}", "'"])
any_text = st.one_of(
    st.text(max_size=2000),
    st.lists(fts_noise, max_size=50).map(" ".join),
    st.binary(max_size=3000).map(lambda b: b.decode("utf-8", errors="surrogateescape")),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=500),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(text=any_text)
def test_any_text_returns_a_result(kb, text):
    result = match(text, kb)
    assert isinstance(result.confident, bool)
    json.dumps(result.as_dict())  # always serialisable
    for m in result.matches:
        assert 0.0 <= m.score <= 1.0


@SETTINGS
@given(
    prefix=st.text(max_size=300),
    secret=secrets,
    suffix=st.text(max_size=300),
    sep=st.sampled_from([" ", "\n", "=", ":", '"', "key=", "`"]),
)
def test_a_secret_anywhere_never_appears_in_the_result(kb, prefix, secret, suffix, sep):
    result = match(f"{prefix}{sep}{secret}{sep}{suffix} API key not valid", kb)
    assert result.secrets_found
    assert secret not in json.dumps(result.as_dict(), ensure_ascii=False)


def test_a_hundred_kilobytes_of_junk_is_fine(kb):
    junk = ('\x00\x07 "NEAR( AND * ((( ' + "é" * 30 + "\n") * 2500
    result = match(junk[:100_000], kb)
    assert not result.confident


def test_a_key_in_the_dropped_middle_of_a_huge_paste_is_still_found(kb):
    key = "AIza" + "Q" * 35
    text = "head\n" + "frame\n" * 4000 + f"key={key}\n" + "frame\n" * 4000 + "API key not valid"
    result = match(text, kb)
    assert result.secrets_found and key not in json.dumps(result.as_dict())
