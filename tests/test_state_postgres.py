"""PostgreSQL as the shared state: two bots (replicas) on one database, a server that is unreachable at
start-up, and one that stops and comes back while the bots run. A real server on 127.0.0.1 throughout."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bot.cli import main
from bot.durable import job_key
from bot.state import StateError
from bot.state_postgres import PostgresState, safe_url
from tests.bot_harness import KEY_ERROR, RATE_ERROR, Running, running_bot
from tests.pg_cluster import Cluster, _free_port
from tests.slack_stub import BOT_USER_ID, SlackStub, as_json, event_callback, message_event


def _health(running: Running) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{running.server.url}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _posted(slack: SlackStub) -> list[tuple[str, str | None]]:
    return sorted((c.params["channel"], c.params.get("thread_ts")) for c in slack.calls("chat.postMessage"))


def _wait(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _dead_url() -> str:
    return f"postgresql://gemini:s3cretpass@127.0.0.1:{_free_port()}/state"


def test_a_slack_retry_answered_by_one_replica_is_not_answered_by_another(kb, slack: SlackStub, pg_url, tmp_path):
    one, two = PostgresState(pg_url), PostgresState(pg_url)
    try:
        with (
            running_bot(kb, slack, tmp_path / "unused-a", state=one) as a,
            running_bot(kb, slack, tmp_path / "unused-b", state=two) as b,
        ):
            _, envelope = a.event(event := message_event(RATE_ERROR))
            b.event(event, event_id=envelope["event_id"], **{"X-Slack-Retry-Num": "1"})  # the retry, elsewhere
            mention = message_event(f"<@{BOT_USER_ID}> {KEY_ERROR}", channel="C0000CHAN")
            a.event(mention, event_id="EvMention1")
            b.event({**mention, "type": "app_mention"}, event_id="EvMention2")  # one message, two events
            a.settle(2)
            b.settle(2)
            assert _posted(slack) == sorted([("C0000CHAN", event["ts"]), ("C0000CHAN", mention["ts"])])
            assert one.summary().pastes == two.summary().pastes == 2  # one count for the deployment
    finally:
        one.close()
        two.close()


def test_postgresql_unreachable_at_start_up_is_one_clear_line_and_exit_1(kb_path: Path, monkeypatch, capsys):
    url = _dead_url()
    with pytest.raises(StateError, match=r"^PostgreSQL state store postgresql://gemini@127\.0\.0\.1:\d+/state is un"):
        PostgresState(url, connect_timeout=2)
    monkeypatch.setenv("GEMINI_KB_STATE_URL", url)
    for argv in (["--db", str(kb_path), "serve", "--console"], ["stats"], ["state", "migrate"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is unreachable" in err and "Connection refused" in err, err
        assert "s3cretpass" not in err


def test_a_state_url_that_is_not_postgresql_is_refused():
    with pytest.raises(StateError, match="must be a postgresql:// URL"):
        PostgresState("mysql://db/state")
    assert (
        safe_url("postgresql://u:pw@db.internal:6432/state?sslmode=require") == "postgresql://u@db.internal:6432/state"
    )


def test_postgresql_stopped_mid_run_falls_back_to_memory_then_recovers(
    kb, slack: SlackStub, pg_cluster: Cluster, pg_url: str, tmp_path: Path, caplog
):
    caplog.set_level(logging.INFO, logger="bot.state")
    store = PostgresState(pg_url, probe_every=0.2)
    other = PostgresState(pg_url, probe_every=0.2)  # another replica, idle during the outage
    try:
        with running_bot(kb, slack, tmp_path / "unused", state=store) as running:
            assert store.claim("event:before")
            pg_cluster.stop()
            try:
                _, envelope = running.event(event := message_event(RATE_ERROR))
                retry = as_json(event_callback(event, event_id=envelope["event_id"]))
                # Another replica cannot know whether this one answered: Slack is asked to retry later...
                assert running.send(*retry, **{"X-Slack-Retry-Num": "1"}).status == 503
                # ...except on its last try, which is answered from memory rather than lost (here: deduped).
                assert running.send(*retry, **{"X-Slack-Retry-Num": "3"}).status == 200
                running.event(message_event(KEY_ERROR, channel="D0000DM01", channel_type="im"))
                running.settle(3)
                assert _posted(slack) == sorted([("C0000CHAN", event["ts"]), ("D0000DM01", None)])  # still answers
                status, health = _health(running)
                assert status == 200 and health["state"] == "degraded" and not health["state_persistent"]
                assert store.claim("event:during") and not store.claim("event:during")  # memory dedupes
                assert not store.claim("event:before")
                assert store.take_check_budget("U1", per_user=1, overall=0, window_s=60) == (True, 0.0)
                assert not store.take_check_budget("U1", per_user=1, overall=0, window_s=60)[0]
                assert store.take_over(owner="x", older_than=0) == [] and store.pending_count() == 0
                assert store.summary().persistent is False
            finally:
                pg_cluster.start()
            assert _wait(lambda: store.health()["state"] == "ok"), "did not reconnect"
            assert _health(running)[1]["state"] == "ok"
            lost = [r for r in caplog.records if "lost" in r.getMessage()]
            back = [r for r in caplog.records if "reachable again" in r.getMessage()]
            assert len(lost) == 1 and lost[0].levelno == logging.ERROR  # logged once, not per operation
            assert len(back) == 1 and "writes made meanwhile written back" in back[0].getMessage()
            assert not other.claim("event:during")  # written back: a retry on another replica is caught
            assert not other.claim(job_key(event["channel"], event["ts"]))  # the delivery's claim (bot.durable)
            assert store.claim("event:after") and not other.claim("event:after")
            assert store.outages == 1
            assert other.summary().pastes == 2  # the two answers recorded during the outage were written back
    finally:
        store.close()
        other.close()
