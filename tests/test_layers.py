"""The architecture's rules, checked on the code itself: layers without cycles, a read-only store,
settings only from the environment given, and no module-level cache keeping knowledge bases alive."""

from __future__ import annotations

import gc
import sqlite3
import weakref
from pathlib import Path

import pytest

from bench.import_graph import cycles, import_graph
from bot.policy import RateLimiter
from kb.matcher import match
from kb.schema import Entry, entry_columns, entry_row
from kb.settings import DEFAULT_BASE_URL, load_settings
from kb.store import KnowledgeBase, KnowledgeBaseError, open_kb

# Developer tools that build throw-away knowledge bases; they belong under bench/ (owned by the matcher work).
KB_DEV_TOOLS: set[str] = set()


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_no_import_cycles_anywhere(graph):
    assert cycles(graph) == []


def test_kb_imports_nothing_from_ingest_or_bot(graph):
    wrong = {
        (mod, t) for mod, targets in graph.items() if mod.startswith("kb") and mod not in KB_DEV_TOOLS for t in targets
    }
    assert {(m, t) for m, t in wrong if t.split(".")[0] in ("ingest", "bot")} == set()


def test_ingest_never_imports_bot_and_only_the_bootstrap_builds_at_start_up(graph):
    assert not [(m, t) for m, ts in graph.items() if m.startswith("ingest") for t in ts if t.startswith("bot")]
    runtime = {"kb.store", "kb.matcher", "bot.service", "bot.app", "bot.console", "bot.ask"}
    assert not [(m, t) for m in runtime for t in graph[m] if t == "ingest.build"]


def test_adapters_reach_the_state_only_through_the_service(graph):
    # bot.app takes the state database only to hand it to the service; bot.serve opens it (and reads it
    # for `stats` and /healthz); bot.blocks renders the summary the service returns (a type only);
    # bot.curation (the service's curation part) opens it for the `misses` / `proposals` / `ingest` commands.
    users = {m for m, targets in graph.items() if "bot.state" in targets}
    assert users == {"bot.service", "bot.app", "bot.serve", "bot.blocks", "bot.curation"}


def test_settings_read_only_the_environment_they_are_given(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("XDG_CACHE_HOME", "/nowhere/cache")
    monkeypatch.setenv("GEMINI_BASE_URL", "https://from-process-env.example")
    settings = load_settings({"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")})
    assert settings.kb_path == tmp_path / ".cache" / "gemini-kb" / "kb.sqlite"
    assert settings.state_path == tmp_path / "data" / "gemini-kb" / "state.sqlite"
    assert settings.bot.base_url == DEFAULT_BASE_URL and settings.bot.allow_private is False
    given = load_settings({"HOME": str(tmp_path), "GEMINI_BASE_URL": "https://gw.example", "PORT": "8080"})
    assert given.bot.base_url == "https://gw.example" and given.port == 8080


def test_entry_columns_come_from_the_one_entry_dataclass(kb):
    entry = next(iter(kb.entries.values()))
    assert set(entry_columns()) == {f for f in Entry.__dataclass_fields__ if f != "sources"}
    assert set(entry_row(entry)) == set(entry_columns())


def test_opening_never_builds(tmp_path: Path):
    missing = tmp_path / "kb.sqlite"
    with pytest.raises(KnowledgeBaseError, match="gemini-kb ingest"):
        open_kb(missing)
    assert not missing.exists()


def test_a_path_with_hash_and_question_mark_opens_the_file_it_names(kb_path: Path, tmp_path: Path):
    odd = tmp_path / "we#ird?dir" / "kb.sqlite"
    odd.parent.mkdir()
    odd.write_bytes(kb_path.read_bytes())
    kb = open_kb(odd)
    assert kb.entries and not (tmp_path / "we").exists()
    kb.close()


def test_matchers_live_and_die_with_their_knowledge_base(kb_path: Path):
    refs = []
    for _ in range(3):
        kb = KnowledgeBase(kb_path)
        match("429 RESOURCE_EXHAUSTED", kb)
        refs.append(weakref.ref(kb))
        kb.close()
        del kb
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


def test_rate_limiter_forgets_users_idle_for_a_whole_window():
    now = [0.0]
    limiter = RateLimiter(2, 60.0, clock=lambda: now[0])
    for i in range(12_000):
        assert limiter.allow(f"user{i}")[0]
    assert len(limiter) == 12_000
    now[0] = 61.0
    assert limiter.allow("late")[0]
    assert len(limiter) == 1
    assert limiter.allow("late")[0] and not limiter.allow("late")[0]  # the limit itself is unchanged


def test_state_database_is_not_a_knowledge_base(tmp_path: Path):
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).close()
    with pytest.raises(KnowledgeBaseError):
        open_kb(other)


def test_a_knowledge_base_of_another_schema_is_refused_with_the_way_out(kb_path: Path, tmp_path: Path):
    old = tmp_path / "old.sqlite"
    old.write_bytes(kb_path.read_bytes())
    conn = sqlite3.connect(old)
    with conn:
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        conn.execute("ALTER TABLE models DROP COLUMN extra")
    conn.close()
    with pytest.raises(KnowledgeBaseError, match=r"schema version 2, not .*gemini-kb ingest"):
        open_kb(old)
