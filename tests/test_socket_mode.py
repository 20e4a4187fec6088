"""Socket Mode end to end on loopback: the real bolt App behind bot.socket_mode, the Slack stand-in as the Web
API and tests.socket_stub as Slack's WebSocket endpoint, which can drop a connection silently."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import GeminiBot, build_app
from bot.socket_mode import PING_INTERVAL_S, PING_TIMEOUT_S, SocketMode, SocketModeError
from bot.state import StateDB
from kb.settings import BotSettings
from kb.store import KnowledgeBase
from tests.bot_harness import KEY_ERROR, RATE_ERROR, TOKEN
from tests.slack_stub import SlackStub, event_callback, message_event
from tests.socket_stub import SocketStub, events_api_envelope

APP_TOKEN = "xapp-1-A0000TEST-0000-stubappleveltoken"


@dataclass
class SocketBot:
    bot: GeminiBot
    client: SocketMode
    slack: SlackStub
    sockets: SocketStub

    def send(self, event: dict) -> str:
        envelope = events_api_envelope(event_callback(event))
        self.sockets.push(envelope)
        return envelope["envelope_id"]

    def replies_to(self, channel: str) -> list[dict]:
        return [c.params for c in self.slack.calls("chat.postMessage") if c.params["channel"] == channel]


@contextmanager
def socket_bot(kb: KnowledgeBase, tmp_path: Path) -> Iterator[SocketBot]:
    with SlackStub(token=TOKEN, app_token=APP_TOKEN) as slack, SocketStub() as sockets:
        slack.socket_url = sockets.url
        state = StateDB(tmp_path / "state.sqlite")
        settings = BotSettings(bot_token=TOKEN, app_token=APP_TOKEN, api_url=slack.api_url)
        bot = build_app(settings, kb, state)
        client = SocketMode(bot.app, APP_TOKEN, api_url=slack.api_url).start()
        try:
            assert sockets.wait_connected()
            yield SocketBot(bot, client, slack, sockets)
        finally:
            client.close()
            bot.close(drain_s=2)
            state.close()


def _dm(text: str, n: int) -> dict:
    return message_event(text, channel=f"D0SOCK{n:04d}", channel_type="im")


def test_events_over_the_socket_are_acked_and_answered_once(kb: KnowledgeBase, tmp_path: Path):
    with socket_bot(kb, tmp_path) as sb:
        event = message_event(KEY_ERROR)
        envelope = events_api_envelope(event_callback(event))
        sb.sockets.push(envelope)
        sb.sockets.push({**envelope, "retry_attempt": 1})  # Slack resends what it thinks was not acked
        assert sb.sockets.wait_for(
            lambda: len([a for a in sb.sockets.acks if a.envelope_id == envelope["envelope_id"]]) == 2
        )
        assert sb.slack.wait_for(lambda: sb.replies_to("C0000CHAN"))
        time.sleep(0.5)
        [reply] = sb.replies_to("C0000CHAN")
        assert reply["thread_ts"] == event["ts"] and "api-key-invalid" in reply["text"]


def test_a_silent_drop_is_noticed_and_answers_resume_within_15_s(kb: KnowledgeBase, tmp_path: Path):
    with socket_bot(kb, tmp_path) as sb:
        assert sb.sockets.blackhole() == 1  # no close frame, no FIN, no pong: the bytes just stop
        dropped = time.monotonic()
        assert sb.sockets.wait_connected(count=2, timeout=15), "no new connection within 15 s of a silent drop"
        reconnected = time.monotonic() - dropped
        assert reconnected <= PING_INTERVAL_S + PING_TIMEOUT_S + 3
        envelope_id = sb.send(_dm(RATE_ERROR, 1))
        assert sb.sockets.wait_for(lambda: sb.sockets.acked(envelope_id))
        assert sb.slack.wait_for(lambda: sb.replies_to("D0SOCK0001"))
        assert sb.sockets.acked(envelope_id).connection == 2


def test_every_envelope_around_a_disconnect_warning_is_acked(kb: KnowledgeBase, tmp_path: Path):
    with socket_bot(kb, tmp_path) as sb:
        old = sb.sockets.ask_to_reconnect("warning")
        ids = [sb.send(_dm(KEY_ERROR, n)) for n in range(5)]  # still arriving on the old connection
        assert sb.sockets.wait_connected(count=2)
        ids += [sb.send(_dm(RATE_ERROR, n)) for n in range(5, 10)]  # on the new one
        old.close()  # Slack closes the old connection a little later
        assert sb.sockets.wait_for(lambda: all(sb.sockets.acked(i) for i in ids), timeout=5)
        channels = {f"D0SOCK{n:04d}" for n in range(10)}
        assert sb.slack.wait_for(lambda: channels <= {c.params["channel"] for c in sb.slack.calls("chat.postMessage")})
        assert len(sb.slack.calls("chat.postMessage")) == 10


def test_a_slash_command_over_the_socket_is_answered_in_its_ack(kb: KnowledgeBase, tmp_path: Path):
    from tests.slack_stub import slash_command

    with socket_bot(kb, tmp_path) as sb:
        form = slash_command("help", response_url=sb.slack.response_url())
        envelope = {
            "envelope_id": "e-slash-1",
            "type": "slash_commands",
            "payload": form,
            "accepts_response_payload": True,
        }
        sb.sockets.push(envelope)
        assert sb.sockets.wait_for(lambda: sb.sockets.acked("e-slash-1"))
        payload = sb.sockets.acked("e-slash-1").payload or {}
        assert "/gemini-check key" in payload.get("text", "")


def test_start_up_errors_are_one_line(kb: KnowledgeBase, tmp_path: Path):
    with SlackStub(token=TOKEN, app_token=APP_TOKEN) as slack, SocketStub() as sockets:
        slack.socket_url = sockets.url
        state = StateDB(tmp_path / "state.sqlite")
        bot = build_app(BotSettings(bot_token=TOKEN, app_token=APP_TOKEN, api_url=slack.api_url), kb, state)
        try:
            cases = {
                "xapp-1-A0000TEST-0000-wrongtoken": "SLACK_APP_TOKEN was refused by Slack (invalid_auth)",
                TOKEN: "not an app-level token",
            }
            for token, expected in cases.items():
                with pytest.raises(SocketModeError) as info:
                    SocketMode(bot.app, token, api_url=slack.api_url).start()
                assert expected in str(info.value) and "\n" not in str(info.value)
                assert token not in str(info.value)
            with pytest.raises(SocketModeError, match=r"^Slack is unreachable"):
                SocketMode(bot.app, APP_TOKEN, api_url="http://127.0.0.1:9/api/").start()
            slack.socket_url = "ws://127.0.0.1:9/link"
            with pytest.raises(SocketModeError, match=r"^cannot open the Socket Mode WebSocket"):
                SocketMode(bot.app, APP_TOKEN, api_url=slack.api_url).start()
        finally:
            bot.close(drain_s=0)
            state.close()


def _can_be_pid_1() -> bool:
    import shutil
    import subprocess

    if not shutil.which("unshare"):
        return False
    done = subprocess.run(["unshare", "--fork", "--pid", "true"], capture_output=True, timeout=10)
    return done.returncode == 0


@pytest.mark.parametrize("pid_1", [False, True], ids=["process", "pid-1"])
def test_socket_mode_process_keeps_a_health_file_and_stops_cleanly_on_sigterm(
    kb_path: Path, tmp_path: Path, pid_1: bool
):
    """As PID 1 (a container's CMD) a signal without a handler is ignored: `docker stop` would wait and kill."""
    import os
    import signal

    if pid_1 and not _can_be_pid_1():
        pytest.skip("cannot make a PID namespace here (unshare)")

    from bot.health_file import check
    from tests.serve_process import ServeProcess, serve_env

    health = tmp_path / "health.json"
    with SlackStub(token=TOKEN, app_token=APP_TOKEN) as slack, SocketStub() as sockets:
        slack.socket_url = sockets.url
        env = serve_env(
            kb_path,
            tmp_path / "state.sqlite",
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_APP_TOKEN=APP_TOKEN,
            SLACK_API_URL=slack.api_url,
            GEMINI_KB_HEALTH_FILE=str(health),
        )
        proc = ServeProcess([], env, prefix=["unshare", "--fork", "--pid", "--kill-child"] if pid_1 else None)
        try:
            assert sockets.wait_connected(timeout=60), proc.log
            assert sockets.wait_for(lambda: health.exists(), timeout=10)
            ok, why = check(health)
            assert ok, why
            envelope = events_api_envelope(event_callback(_dm(KEY_ERROR, 7)))
            sockets.push(envelope)
            assert sockets.wait_for(lambda: sockets.acked(envelope["envelope_id"]))
            assert slack.wait_for(lambda: slack.calls("chat.postMessage"))
            stopped = time.monotonic()
            os.kill(proc.bot_pid(), signal.SIGTERM)
            assert proc.wait(15) == 0, proc.log
            assert time.monotonic() - stopped < 10
            assert not health.exists()
        finally:
            proc.stop()


def test_envelopes_acked_before_a_kill_are_answered_once_by_the_next_process(kb_path: Path, tmp_path: Path):
    from tests.serve_process import ServeProcess, serve_env
    from tests.slack_stub import Scripted

    events = 24
    with SlackStub(token=TOKEN, app_token=APP_TOKEN) as slack, SocketStub() as sockets:
        slack.socket_url = sockets.url
        slack.script("chat.postMessage", *[Scripted(delay=0.5)] * events)
        env = serve_env(
            kb_path,
            tmp_path / "state.sqlite",
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_APP_TOKEN=APP_TOKEN,
            SLACK_API_URL=slack.api_url,
        )
        first = ServeProcess([], env)
        second = None
        try:
            assert sockets.wait_connected(timeout=60), first.log
            ids = [_push(sockets, _dm(KEY_ERROR, 100 + n)) for n in range(events)]
            assert sockets.wait_for(lambda: all(sockets.acked(i) for i in ids), timeout=10)
            first.proc.kill()  # acknowledged: Slack will never resend these
            first.wait(10)
            assert len(slack.calls("chat.postMessage")) < events, "nothing was in flight"
            second = ServeProcess([], env)
            channels = {f"D0SOCK{100 + n:04d}" for n in range(events)}

            def answered() -> dict[str, int]:
                counts: dict[str, int] = {}
                for call in slack.calls("chat.postMessage"):
                    counts[call.params["channel"]] = counts.get(call.params["channel"], 0) + 1
                return counts

            assert slack.wait_for(lambda: channels <= set(answered()), timeout=40), second.log[-2000:]
            time.sleep(2.5)
            assert {c: n for c, n in answered().items() if n != 1} == {}
        finally:
            first.stop()
            if second is not None:
                second.stop()


def _push(sockets: SocketStub, event: dict) -> str:
    envelope = events_api_envelope(event_callback(event))
    sockets.push(envelope)
    return envelope["envelope_id"]
