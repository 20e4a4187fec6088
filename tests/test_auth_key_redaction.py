"""Auth keys (`AQ.` + about 50 characters, issued by AI Studio since 2026) are secrets like `AIza` keys:
redacted in pastes, answers, log records and state rows, and the poster is told to rotate them."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from bot.chat_command import parse_command
from bot.logs import configure_logging
from bot.render_text import answer_text
from bot.state import StateDB
from kb.matcher import match
from kb.redact import mask, redact

# Shaped like a real auth key (53 characters); never valid.
AUTH_KEY = "AQ.Ab8RN6FAKEq7Wd2LmZ0pXv9RtY4nKs8GhJ3bCe6FaU-x_01234"
PASTE = (
    '{"error": {"code": 401, "message": "Request had invalid authentication credentials. '
    'Expected OAuth 2 access token, login cookie or other valid authentication credential.", '
    f'"status": "UNAUTHENTICATED"}}}} from client = genai.Client(api_key="{AUTH_KEY}")'
)


def test_an_auth_key_is_redacted_wherever_it_stands():
    assert len(AUTH_KEY) == 53
    for text in (AUTH_KEY, f"key={AUTH_KEY}", f"Authorization: Bearer {AUTH_KEY}", f"GEMINI_API_KEY='{AUTH_KEY}'"):
        clean, kinds = redact(text)
        assert AUTH_KEY not in clean and AUTH_KEY[10:30] not in clean, text
        assert kinds, text
    clean, kinds = redact(f"my key is {AUTH_KEY}, it fails")
    assert clean == "my key is [REDACTED google-api-key], it fails" and kinds == ["google-api-key"]
    assert mask(AUTH_KEY) == "AQ.A…234"


def test_words_that_merely_start_with_aq_are_left_alone():
    for text in ("AQ.", "see AQ.section 4", "SQL AQ.queue_table", "the AQI.value", "xAQ.Ab8RN6" + "y" * 50):
        assert redact(text) == (text, []), text


def test_a_paste_with_an_auth_key_is_answered_without_it_and_asks_for_rotation(kb):
    result = match(PASTE, kb)
    assert result.secrets_found and result.secret_kinds == ["google-api-key"]
    out = answer_text(result, kb)
    assert AUTH_KEY not in out and AUTH_KEY[8:24] not in out
    assert "rotate it now" in out


def test_a_bare_auth_key_sent_to_the_slash_command_is_checked_not_looked_up():
    cmd = parse_command(AUTH_KEY)
    assert (cmd.action, cmd.kinds, cmd.key, cmd.text) == ("checks", ("key",), AUTH_KEY, "")
    assert AUTH_KEY not in repr(cmd)


def test_log_records_never_carry_an_auth_key():
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=stream)
    logging.getLogger("bot.app").info("paste %s", PASTE, extra={"paste": AUTH_KEY})
    try:
        raise ValueError(f"Expected OAuth 2 access token: {AUTH_KEY}")
    except ValueError:
        logging.getLogger("bot.slash").exception("check failed for %s", AUTH_KEY)
    output = stream.getvalue()
    assert output and AUTH_KEY not in output and AUTH_KEY[8:24] not in output
    assert "[REDACTED google-api-key]" in output


def test_state_rows_never_carry_an_auth_key(tmp_path: Path):
    state = StateDB(tmp_path / "state.sqlite")
    state.record_paste(source="channel", channel="C1", entry_id=None, confidence=0.1, confident=False, text=PASTE)
    state.record_check(
        source="slash", user="U1", kinds=["key"], target=f"key {AUTH_KEY}", ok=False, failed=["key"], entry_ids=[], ms=1
    )
    rows = [str(r) for table in ("pastes", "checks") for r in state.db.execute(f"SELECT * FROM {table}").fetchall()]
    assert rows and all(AUTH_KEY[8:24] not in row for row in rows)
    assert any("[REDACTED google-api-key]" in row for row in rows)
    state.close()
    assert AUTH_KEY[8:24].encode() not in (tmp_path / "state.sqlite").read_bytes()
