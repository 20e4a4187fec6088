"""The local console and the serve/stats commands: same core, same answers, as text."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.checker import Checker
from bot.cli import main
from bot.console import pastes, run_console
from bot.render_text import answer_text
from bot.service import AnswerService
from bot.state import StateDB
from kb.matcher import match
from kb.settings import ChannelMode

KEY_ERROR = (
    "google.genai.errors.ClientError: 400 INVALID_ARGUMENT. {'error': {'code': 400, 'message': "
    "'API key not valid. Please pass a valid API key.', 'status': 'INVALID_ARGUMENT'}}"
)
RATE_ERROR = (
    "429 Too Many Requests\nRESOURCE_EXHAUSTED: Quota exceeded for generativelanguage.googleapis.com per minute"
)


def test_pastes_end_at_a_blank_line_or_at_the_end_and_commands_stand_alone():
    lines = ["first line\n", "second\n", "\n", "\n", "/gemini-check help\n", "tail\n"]
    assert list(pastes(lines)) == [
        ("paste", "first line\nsecond"),
        ("command", "/gemini-check help"),
        ("paste", "tail"),
    ]
    assert list(pastes(["a\r\n", "  \n"])) == [("paste", "a")]
    assert list(pastes([])) == []


def test_console_gives_the_same_answer_as_the_core(kb, tmp_path: Path):
    state = StateDB(tmp_path / "s.sqlite")
    checker = Checker(kb, timeout=1.0, per_user_per_minute=0)
    service = AnswerService(kb, state, checker, mode=ChannelMode.ERRORS)
    out = io.StringIO()
    stdin = io.StringIO(f"{KEY_ERROR}\n\n/gemini-check help\n/gemini-check rate-limit-exceeded\n{RATE_ERROR}")
    assert run_console(service, stdin=stdin, stdout=out) == 0
    text = out.getvalue()
    assert text.startswith(answer_text(match(KEY_ERROR, kb), kb))
    assert "/gemini-check key [KEY]" in text and "per-minute rate limit" in text
    assert text.endswith(answer_text(match(RATE_ERROR, kb), kb))
    assert state.summary().pastes == 2


def test_console_runs_checks_against_the_gemini_stand_in(kb, tmp_path: Path):
    from tests.gemini_stub import GeminiStub, stub_key

    with GeminiStub() as stub:
        checker = Checker(kb, timeout=2.0, per_user_per_minute=0, base_url=stub.url, allow_private=True)
        service = AnswerService(kb, None, checker, mode=ChannelMode.ERRORS)
        out = io.StringIO()
        typed = stub_key("invalid")
        run_console(service, stdin=io.StringIO(f"/gemini-check key {typed}\n"), stdout=out)
    assert "api-key-invalid" in out.getvalue() and typed not in out.getvalue() and "AIza…k3Q" in out.getvalue()


def _env(kb_path: Path, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GEMINI_API", "GOOGLE_API"))}
    env.update(GEMINI_KB_DB=str(kb_path), GEMINI_KB_STATE_DB=str(tmp_path / "state.sqlite"))
    return env


def test_echo_into_serve_prints_one_answer_and_exits(kb_path: Path, tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"],
        input=KEY_ERROR + "\n",
        capture_output=True,
        text=True,
        env=_env(kb_path, tmp_path),
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("API key rejected as not valid  (api-key-invalid")
    assert done.stdout.count("Confidence:") == 1 and done.stderr == ""


def test_stats_prints_the_state(kb_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("GEMINI_KB_STATE_DB", str(tmp_path / "state.sqlite"))
    assert main(["stats"]) == 0
    assert "No state database yet" in capsys.readouterr().out
    state = StateDB(tmp_path / "state.sqlite")
    state.record_paste(source="dm", channel="D1", entry_id=None, confidence=None, confident=False, text="what now")
    state.record_paste(source="channel", channel="C1", entry_id="api-key-invalid", confidence=0.9, confident=True)
    state.close()
    assert main(["stats"]) == 0
    text = capsys.readouterr().out
    assert "2 (1 matched, 1 with no match)" in text and "api-key-invalid  1" in text and "what now" in text
    assert main(["stats", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["unmatched"] == 1 and data["top_entries"] == [{"entry_id": "api-key-invalid", "count": 1}]


def test_serve_with_a_bot_token_but_no_transport_says_what_to_set(monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-2-3")
    assert main(["serve"]) == 2
    assert "SLACK_APP_TOKEN" in capsys.readouterr().err
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    assert main(["serve", "--http"]) == 2
    assert "SLACK_BOT_TOKEN" in capsys.readouterr().err


CHAINED = (
    "Traceback (most recent call last):\n"
    '  File "app.py", line 3, in <module>\n'
    "    r = requests.post(url)\n"
    "KeyError: 'candidates'\n"
    "\n"
    "The above exception was the direct cause of the following exception:\n"
    "\n"
    "Traceback (most recent call last):\n"
    '  File "app.py", line 9, in <module>\n'
    "    raise RuntimeError('generation failed') from exc\n"
    "google.genai.errors.ClientError: 429 RESOURCE_EXHAUSTED. {'error': {'code': 429, 'status': "
    "'RESOURCE_EXHAUSTED'}}\n"
)


def test_a_chained_traceback_is_one_paste_and_words_are_not_pastes():
    lines = [*CHAINED.splitlines(keepends=True), "\n", "help\n", "next paste\n", "\n", "exit\n", "after\n"]
    found = list(pastes(lines))
    assert [kind for kind, _ in found] == ["paste", "help", "paste", "exit", "paste"]
    assert found[0][1] == CHAINED.rstrip("\n")
    # During handling of the above exception... is a chain too.
    other = CHAINED.replace(
        "The above exception was the direct cause of the following exception:",
        "During handling of the above exception, another exception occurred:",
    )
    assert list(pastes(other.splitlines(keepends=True))) == [("paste", other.rstrip("\n"))]


def test_console_help_and_exit_are_commands_not_pastes(kb, tmp_path: Path):
    state = StateDB(tmp_path / "s.sqlite")
    service = AnswerService(kb, state, Checker(kb, timeout=1.0, per_user_per_minute=0), mode=ChannelMode.ERRORS)
    out = io.StringIO()
    stdin = io.StringIO(f"help\n\n{CHAINED}\nexit\n{RATE_ERROR}\n")
    assert run_console(service, stdin=stdin, stdout=out, interactive=True, why="no SLACK_BOT_TOKEN set") == 0
    text = out.getvalue()
    assert text.startswith("gemini-kb console (no SLACK_BOT_TOKEN set)")
    assert "'exit' or Ctrl-D quits" in text and text.count("Confidence:") == 1  # the chain, once; nothing after exit
    assert state.summary().pastes <= 1


def test_stats_says_when_the_state_cannot_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """A state file that cannot be opened as one is reported, not shown as an empty state."""
    path = tmp_path / "state.sqlite"
    path.write_bytes(bytes(range(256)) * 16)
    monkeypatch.setenv("GEMINI_KB_STATE_DB", str(path))
    assert main(["stats"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "cannot read the state database" in err


def test_the_interactive_console_edits_lines_and_recalls_history(kb_path: Path, tmp_path: Path):
    """On a terminal (a pty here), readline is in force: the up arrow recalls the last command."""
    import pty
    import select
    import time

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**_env(kb_path, tmp_path), "TERM": "dumb"},
        cwd=Path(__file__).resolve().parent.parent,
    )
    os.close(follower)
    seen = b""

    def read_for(seconds: float, until: Callable[[], bool]) -> None:
        nonlocal seen
        end = time.monotonic() + seconds
        while not until() and time.monotonic() < end:
            if select.select([leader], [], [], 0.1)[0]:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break

    marker = b"per-minute rate limit"
    try:
        read_for(30, lambda: b"no SLACK_BOT_TOKEN set" in seen)
        os.write(leader, b"/gemini-check rate-limit-exceeded\n")
        read_for(30, lambda: marker in seen)
        once = seen.count(marker)
        os.write(leader, b"\x1b[A\n")  # up arrow, enter: the same command again
        read_for(30, lambda: seen.count(marker) > once)
        os.write(leader, b"exit\n")
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        os.close(leader)
    assert b"no SLACK_BOT_TOKEN set" in seen
    assert once >= 1 and seen.count(marker) > once, seen[-500:]
