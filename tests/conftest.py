"""Shared fixtures: the shipped knowledge base built once per session into a temporary folder."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.build import build
from kb.settings import GUIDES_DIR
from kb.store import PROJECT_ROOT, KnowledgeBase, open_kb
from tests.bot_harness import TOKEN, Running, running_bot
from tests.gemini_stub import GeminiStub
from tests.slack_stub import SlackStub
from tests.state_fixtures import backend, make_state, pg_cluster, pg_url, state_target  # noqa: F401


@pytest.fixture(scope="session")
def kb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly built knowledge-base file of the shipped guides."""
    path = tmp_path_factory.mktemp("kb") / "kb.sqlite"
    build([GUIDES_DIR], path, root=PROJECT_ROOT)
    return path


@pytest.fixture(scope="session")
def kb(kb_path: Path) -> KnowledgeBase:
    """The shipped knowledge base, opened read-only."""
    return open_kb(kb_path)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the user's real knowledge base and state files."""
    monkeypatch.setenv("GEMINI_KB_DB", str(tmp_path / "home-kb.sqlite"))
    monkeypatch.setenv("GEMINI_KB_STATE_DB", str(tmp_path / "home-state.sqlite"))
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(var, raising=False)
    for var in ("GEMINI_KB_STATE_URL", "GEMINI_KB_APPROVED", "GEMINI_KB_MAINTAINERS", "GEMINI_KB_DIGEST_EVERY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo what a test's `configure_logging` did to the root logger (its stream dies with the test)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    filters = {h: list(h.filters) for h in handlers}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler, kept in filters.items():
        handler.filters[:] = kept
    root.setLevel(level)


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    """The Slack Web API stand-in on 127.0.0.1, recording every call."""
    with SlackStub(token=TOKEN) as stub:
        yield stub


@pytest.fixture
def gemini(monkeypatch: pytest.MonkeyPatch) -> Iterator[GeminiStub]:
    """The Gemini API stand-in, configured as the checks' endpoint."""
    with GeminiStub(slow_seconds=5.0) as stub:
        monkeypatch.setenv("GEMINI_BASE_URL", stub.url)
        monkeypatch.setenv("GEMINI_CHECK_ALLOW_PRIVATE", "1")
        yield stub


@pytest.fixture
def running(kb: KnowledgeBase, slack: SlackStub, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Running]:
    """The bot serving HTTP on 127.0.0.1 against the Slack stand-in (and the Gemini one, when the test uses it:
    the bot reads its settings once, at start-up, so the stand-in must be up first)."""
    if "gemini" in request.fixturenames:
        request.getfixturevalue("gemini")
    with running_bot(kb, slack, tmp_path / "state.sqlite") as bot:
        yield bot
