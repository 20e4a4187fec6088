"""`configure_logging`: text or JSON lines, and no key or token in any part of any record."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.logs import RedactingFilter, configure_logging
from tests.bot_harness import KEY_ERROR, LEAKED_KEY

ROOT = Path(__file__).resolve().parent.parent
OAUTH = "ya29.a0AfH6SMBx-stand-in-oauth-token_0123456789abcdef"
SLACK_TOKEN = "xoxb-123456789012-1234567890123-StandInTokenValue0123456"
OPAQUE = "q7Wd2LmZ0pXv9RtY4nKs8GhJ3bCe6FaU"  # a bearer token's value: only its header makes it a secret
SECRETS = (LEAKED_KEY, OAUTH, SLACK_TOKEN, OPAQUE)


class Leaky:
    """An argument whose str() holds a token (as an exception or a client object might)."""

    def __str__(self) -> str:
        return f"<Client token={SLACK_TOKEN}>"


def _log_everything() -> None:
    log = logging.getLogger("slack_sdk.web.base_client")  # a library logger: records propagate to root
    log.debug("Sending a request - url: https://x/api?key=%s, headers: %s", LEAKED_KEY, {"Authorization": OAUTH})
    log.info("client %s, auth %r", Leaky(), f"Bearer {OPAQUE}")
    log.info("GET /v1beta/models/Authorization:%%20Bearer%%20%s", OPAQUE)  # URL-encoded, as an HTTP client logs
    logging.getLogger("bot.app").info("answered event", extra={"event_id": "Ev0001", "ms": 12.5, "paste": LEAKED_KEY})
    try:
        raise ValueError(f"API key not valid: {LEAKED_KEY}")
    except ValueError:
        logging.getLogger("bot.slash").exception("checks crashed with %s", OAUTH)
    logging.getLogger("bot.state").warning("state %s", SLACK_TOKEN, stack_info=True)


def _assert_clean(output: str) -> None:
    for secret in SECRETS:
        assert secret not in output
        assert secret[8:20] not in output
    assert "[REDACTED google-api-key]" in output and "[REDACTED slack-token]" in output


def test_text_format_redacts_message_arguments_exception_stack_and_extra():
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="text", stream=stream)
    _log_everything()
    output = stream.getvalue()
    _assert_clean(output)
    lines = output.splitlines()
    assert " DEBUG slack_sdk.web.base_client: Sending a request - url: https://x/api?key=[REDACTED" in lines[0]
    assert "Bearer [REDACTED bearer-token]" in output
    assert "Traceback (most recent call last)" in output and "ValueError: API key not valid: [REDACTED" in output
    assert "Stack (most recent call last)" in output


def test_json_format_is_one_object_per_line_with_extra_fields():
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=stream)
    _log_everything()
    output = stream.getvalue()
    _assert_clean(output)
    records = [json.loads(line) for line in output.splitlines()]  # every line is one JSON object
    assert len(records) == 6
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
        assert record["time"].endswith("+00:00") and "T" in record["time"]
    answered = next(r for r in records if r["message"] == "answered event")
    assert answered["event_id"] == "Ev0001" and answered["ms"] == 12.5 and answered["level"] == "INFO"
    assert answered["paste"] == "[REDACTED google-api-key]"
    crashed = next(r for r in records if r["logger"] == "bot.slash")
    assert crashed["level"] == "ERROR" and "ValueError: API key not valid: [REDACTED" in crashed["exc"]
    assert "stack" in records[-1]


def test_level_filters_and_a_second_call_replaces_the_first_handler():
    first, second = io.StringIO(), io.StringIO()
    configure_logging(level="DEBUG", fmt="text", stream=first)
    configure_logging(level="WARNING", fmt="json", stream=second)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_gemini_kb", False)]
    assert len(ours) == 1
    logging.getLogger("bot.app").info("not shown")
    logging.getLogger("bot.app").warning("shown %s", LEAKED_KEY)
    assert first.getvalue() == ""
    [line] = second.getvalue().splitlines()
    assert json.loads(line)["message"] == "shown [REDACTED google-api-key]"


def test_handlers_installed_by_others_redact_too():
    """A handler a platform or test runner put on the root logger first gets the filter as well."""
    theirs = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(theirs)
    configure_logging(level="INFO", fmt="text", stream=io.StringIO())
    assert any(isinstance(f, RedactingFilter) for f in theirs.filters)
    logging.getLogger("waitress").error("request with %s", SLACK_TOKEN)
    assert SLACK_TOKEN not in theirs.stream.getvalue() and "[REDACTED slack-token]" in theirs.stream.getvalue()


def test_environment_chooses_format_and_level_and_rejects_nonsense():
    stream = io.StringIO()
    configure_logging(stream=stream, env={"LOG_FORMAT": "JSON", "LOG_LEVEL": "error"})
    logging.getLogger("x").warning("quiet")
    logging.getLogger("x").error("loud")
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == ["loud"]
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        configure_logging(env={"LOG_FORMAT": "xml"})
    with pytest.raises(ValueError, match="LOG_LEVEL"):
        configure_logging(env={"LOG_LEVEL": "chatty"})


def test_serve_refuses_a_bad_log_format(monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("LOG_FORMAT", "xml")
    assert main(["serve", "--console"]) == 2
    assert "LOG_FORMAT='xml'" in capsys.readouterr().err


def test_serve_logs_json_lines_without_the_pasted_key(kb_path: Path, tmp_path: Path):
    """The real entry point: `gemini-kb serve` (console) with LOG_FORMAT=json at DEBUG, a key pasted and checked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GEMINI_", "GOOGLE_API", "LOG_"))}
    env.update(
        GEMINI_KB_DB=str(kb_path),
        GEMINI_KB_STATE_DB=str(tmp_path / "state.sqlite"),
        GEMINI_BASE_URL="https://127.0.0.1:9",  # refused by the SSRF guard: nothing leaves the machine
        LOG_FORMAT="json",
        LOG_LEVEL="DEBUG",
    )
    paste = f"{KEY_ERROR}\ncurl -H 'x-goog-api-key: {LEAKED_KEY}' ...\n\n/gemini-check key {LEAKED_KEY}\n"
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"],
        input=paste,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode in (0, 1), done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert any(r["logger"] == "bot.checker" and r.get("typed_key") is True for r in records), done.stderr
    assert LEAKED_KEY not in done.stderr and LEAKED_KEY not in done.stdout
    assert "api-key-invalid" in done.stdout
