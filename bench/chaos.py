"""Chaos: the bot killed, stopped, starved of connections and cut off from Slack, on loopback.

A benchmark, not a test (timings on a shared machine vary). Four parts, each against real processes:

- crash: `serve --http` on a SQLite state file takes the 600-event mix of bench/load.py; at a random
  point of the load (after 10-90 % of the deliveries were sent) it gets kill -9 (or SIGTERM), and a new
  process is started on the same file. Like Slack, the sender resends every delivery that got no 200
  until one does. Counted: expected answers lost and duplicated (goal 0 and 0), five runs of each.
- slowloris: 500 hostile connections (half idle, half trickling a header byte a second; each reopened when
  the server cuts it off) while signed events keep flowing: latency of /healthz and of event acks.
- socket: Socket Mode against tests/socket_stub.py: time from a silent drop (no close frame, no FIN) to
  the next answer; ack latency of envelopes sent right after a `disconnect` warning.
- idle: CPU used by an idle bot in each mode over `--idle-seconds` (default 60).

    .venv/bin/python bench/chaos.py [--runs 5] [--events 600] [--parts crash,slowloris,socket,idle] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from websockets.exceptions import ConnectionClosed  # noqa: E402

from bench.bot_latency import SECRET, TOKEN, _build_kb, _free_port, _percentile, bot_env  # noqa: E402
from bench.load import CHATTER, Delivery, _answered, plan  # noqa: E402
from tests.serve_process import wait_healthy  # noqa: E402
from tests.slack_stub import (  # noqa: E402
    SlackStub,
    as_json,
    event_callback,
    message_event,
    post,
    signed_headers,
)
from tests.socket_stub import SocketStub, events_api_envelope  # noqa: E402

ENTRY = "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))"
APP_TOKEN = "xapp" + "-1-A0CHAOS-0000-fake"  # fake, for the local stand-in


def _spawn(env: dict[str, str], args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", ENTRY, "serve", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    problem = wait_healthy(port, proc, timeout)
    if problem:
        raise SystemExit(problem)


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 1),
        "p99": round(_percentile(values, 99), 1),
        "max": round(max(values), 1),
    }


# -- crash ----------------------------------------------------------------------------------------


def crash_run(how: str, events: int, concurrency: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp, SlackStub(token=TOKEN) as slack:
        kb_path = Path(tmp) / "kb.sqlite"
        _build_kb(kb_path)
        env = bot_env(slack.api_url, kb_path, Path(tmp) / "state.sqlite")
        work = plan(events, 0.05, seed, kb_path)
        seen: set[tuple[str, str]] = set()
        for delivery in work.deliveries:  # the people's messages exist in Slack (a thread's parent can be read)
            event = json.loads(delivery.body)["event"]
            if (event["channel"], event["ts"]) not in seen:
                seen.add((event["channel"], event["ts"]))
                slack.add_message(event["channel"], dict(event))
        port = _free_port()
        url = f"http://127.0.0.1:{port}/slack/events"
        proc = _spawn(env, ["--http", "--host", "127.0.0.1", "--port", str(port)])
        _wait_ready(port, proc)
        unacked: list[Delivery] = []
        lock = threading.Lock()
        sent = [0]

        def send(delivery: Delivery) -> None:
            with lock:
                sent[0] += 1
            headers = signed_headers(SECRET, delivery.body, content_type="application/json")
            if delivery.retry:
                headers.update({"X-Slack-Retry-Num": str(delivery.retry), "X-Slack-Retry-Reason": "http_error"})
            try:
                ok = post(url, delivery.body, headers, timeout=3).status == 200
            except OSError:
                ok = False
            if not ok:
                with lock:
                    unacked.append(delivery)

        blow_after = rng.uniform(0.1, 0.9)  # a random point of the load: this share of deliveries sent
        start = time.perf_counter()
        pool = ThreadPoolExecutor(concurrency)
        futures = [pool.submit(send, d) for d in work.deliveries]
        while sent[0] < blow_after * len(work.deliveries):
            time.sleep(0.005)
        blow_at = time.perf_counter() - start
        in_flight_posts = len(slack.calls("chat.postMessage"))
        if how == "kill":
            proc.kill()
        else:
            proc.send_signal(signal.SIGTERM)
        stop_started = time.perf_counter()
        code = proc.wait(30)
        stop_s = time.perf_counter() - stop_started
        for f in futures:
            f.result()
        pool.shutdown()
        proc = _spawn(env, ["--http", "--host", "127.0.0.1", "--port", str(port)])
        try:
            _wait_ready(port, proc)
            resent = 0
            for attempt in (1, 2, 3):  # Slack's three retries, without its minutes of waiting
                with lock:
                    again, unacked[:] = list(unacked), []
                if not again:
                    break
                resent += len(again)
                with ThreadPoolExecutor(concurrency) as retry_pool:
                    list(retry_pool.map(send, [Delivery(d.kind, d.key, d.body, retry=attempt) for d in again]))
            slack.wait_for(lambda: work.expected <= _answered(slack), timeout=90)
            quiet = len(slack.calls("chat.postMessage"))
            while slack.wait_for(lambda seen=quiet: len(slack.calls("chat.postMessage")) > seen, timeout=3.0):
                quiet = len(slack.calls("chat.postMessage"))
            wall = time.perf_counter() - start
            replies = slack.calls("chat.postMessage")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    per_key: dict[tuple[str, str | None], int] = {}
    for call in replies:
        key = (call.params["channel"], call.params.get("thread_ts"))
        per_key[key] = per_key.get(key, 0) + 1
    return {
        "how": "kill -9" if how == "kill" else "SIGTERM",
        "at_s": round(blow_at, 2),
        "at_share": round(blow_after, 2),
        "replies_before_blow": in_flight_posts,
        "exit_code": code,
        "stop_s": round(stop_s, 2),
        "resent_unacked": resent,
        "expected": len(work.expected),
        "lost": len(work.expected - per_key.keys()),
        "duplicated": sum(n - 1 for n in per_key.values()),
        "unexpected": len(per_key.keys() - work.expected),
        "all_answered_s": round(wall, 1),
    }


# -- slowloris ------------------------------------------------------------------------------------


def slowloris(connections: int, seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, SlackStub(token=TOKEN) as slack:
        kb_path = Path(tmp) / "kb.sqlite"
        _build_kb(kb_path)
        env = bot_env(slack.api_url, kb_path, Path(tmp) / "state.sqlite")
        port = _free_port()
        proc = _spawn(env, ["--http", "--host", "127.0.0.1", "--port", str(port)])
        _wait_ready(port, proc)
        stop = threading.Event()
        reopened = [0]

        def attacker(trickle: bool) -> None:
            sock: socket.socket | None = None
            while not stop.is_set():
                try:
                    if sock is None:
                        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                        if trickle:
                            sock.sendall(b"POST /slack/events HTTP/1.1\r\n")
                        reopened[0] += 1
                    if trickle:
                        sock.sendall(b"X")
                    else:
                        sock.setblocking(False)
                        try:
                            if sock.recv(1) == b"":
                                raise OSError("closed")
                        except BlockingIOError:
                            pass
                except OSError:
                    if sock is not None:
                        sock.close()
                    sock = None
                stop.wait(1.0)
            if sock is not None:
                sock.close()

        threads = [threading.Thread(target=attacker, args=(i % 2 == 1,), daemon=True) for i in range(connections)]
        for t in threads:
            t.start()
        time.sleep(3)  # all connections open
        health_ms: list[float] = []
        ack_ms: list[float] = []
        failures = 0
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
                    response.read()
                health_ms.append((time.perf_counter() - started) * 1000)
            except OSError:
                failures += 1
            event = message_event(CHATTER[n % len(CHATTER)], channel=f"D0LORIS{n:04d}", channel_type="im")
            body = as_json(event_callback(event))[0]
            try:
                reply = post(
                    f"http://127.0.0.1:{port}/slack/events",
                    body,
                    signed_headers(SECRET, body, content_type="application/json"),
                    timeout=10,
                )
                if reply.status == 200:
                    ack_ms.append(reply.seconds * 1000)
                else:
                    failures += 1
            except OSError:
                failures += 1
            n += 1
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(3)
        answered = len(slack.calls("chat.postMessage"))
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return {
        "hostile_connections": connections,
        "hostile_opens": reopened[0],
        "seconds": seconds,
        "healthz_ms": _summary(health_ms),
        "event_ack_ms": _summary(ack_ms),
        "failed_requests": failures,
        "events_sent": n,
        "events_answered": answered,
    }


# -- Socket Mode -----------------------------------------------------------------------------------


def socket_mode(drops: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, SlackStub(token=TOKEN, app_token=APP_TOKEN) as slack, SocketStub() as ws:
        slack.socket_url = ws.url
        kb_path = Path(tmp) / "kb.sqlite"
        _build_kb(kb_path)
        env = bot_env(slack.api_url, kb_path, Path(tmp) / "state.sqlite")
        env["SLACK_APP_TOKEN"] = APP_TOKEN
        proc = _spawn(env, [])
        try:
            return _socket_mode_run(proc, ws, slack, drops)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def _socket_mode_run(proc: subprocess.Popen, ws: SocketStub, slack: SlackStub, drops: int) -> dict[str, object]:
    """Silent drops, then a disconnect warning, against a running Socket Mode bot."""
    if not ws.wait_connected(timeout=60):
        raise SystemExit("Socket Mode never connected")
    recover_s: list[float] = []
    sent = 0

    def answer_after(since: float) -> float:
        nonlocal sent
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # Slack keeps sending; an event counts once it is answered
            channel = f"D0SOCK{sent:04d}"
            sent += 1
            envelope = events_api_envelope(
                event_callback(message_event(CHATTER[0], channel=channel, channel_type="im"))
            )
            with contextlib.suppress(Exception):  # sent to a dead connection: Slack would retry it elsewhere
                ws.push(envelope)
            if slack.wait_for(
                lambda ch=channel: any(c.params["channel"] == ch for c in slack.calls("chat.postMessage")),
                timeout=1.0,
            ):
                return time.monotonic() - since
        return float("inf")

    for i in range(drops):
        ws.wait_connected(count=i + 1)
        ws.blackhole()
        recover_s.append(round(answer_after(time.monotonic()), 2))
    cpu_before = _cpu_seconds(proc.pid)
    # A disconnect warning, then envelopes at once: acks must not wait for the reconnect.
    warned = ws.ask_to_reconnect("warning")
    pushed_at: dict[str, float] = {}
    for n in range(20):
        envelope = events_api_envelope(
            event_callback(message_event(CHATTER[1], channel=f"D0WARN{n:04d}", channel_type="im"))
        )
        pushed_at[envelope["envelope_id"]] = time.time()
        try:  # the first ten on the connection that was warned, while it is still open
            ws.push(envelope, warned if n < 10 else None)
        except ConnectionClosed:  # the client closed it already: Slack would deliver on the new one
            ws.wait_connected(count=2, timeout=10)
            ws.push(envelope)
        time.sleep(0.05)
    ws.wait_for(lambda: all(ws.acked(e) for e in pushed_at), timeout=10)
    ack_ms = [(ws.acked(e).at - t) * 1000 for e, t in pushed_at.items() if ws.acked(e)]
    cpu = _cpu_seconds(proc.pid) - cpu_before
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(30)
    return {
        "silent_drops": drops,
        "drop_to_answer_s": recover_s,
        "acks_after_warning_ms": _summary(ack_ms),
        "acks_missing": 20 - len(ack_ms),
        "cpu_s_during_warning_phase": round(cpu, 2),
        "sigterm_exit_code": code,
    }


# -- idle CPU --------------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle(seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, SlackStub(token=TOKEN, app_token=APP_TOKEN) as slack, SocketStub() as ws:
        slack.socket_url = ws.url
        kb_path = Path(tmp) / "kb.sqlite"
        _build_kb(kb_path)
        http_env = bot_env(slack.api_url, kb_path, Path(tmp) / "http-state.sqlite")
        socket_env = {
            **bot_env(slack.api_url, kb_path, Path(tmp) / "socket-state.sqlite"),
            "SLACK_APP_TOKEN": APP_TOKEN,
        }
        port = _free_port()
        http = _spawn(http_env, ["--http", "--host", "127.0.0.1", "--port", str(port)])
        sock = _spawn(socket_env, [])
        _wait_ready(port, http)
        ws.wait_connected(timeout=60)
        time.sleep(2)
        before = {name: _cpu_seconds(p.pid) for name, p in (("http", http), ("socket", sock))}
        time.sleep(seconds)
        used = {name: round(_cpu_seconds(p.pid) - before[name], 3) for name, p in (("http", http), ("socket", sock))}
        for p in (http, sock):
            p.send_signal(signal.SIGTERM)
            p.wait(30)
    return {"seconds": seconds, "cpu_s": used, "cpu_percent": {k: round(100 * v / seconds, 2) for k, v in used.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="kill -9 runs and SIGTERM runs (default 5 each)")
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--connections", type=int, default=500, help="slow-loris connections (default 500)")
    parser.add_argument("--loris-seconds", type=float, default=30)
    parser.add_argument("--drops", type=int, default=3, help="silent Socket Mode drops (default 3)")
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--parts", default="crash,slowloris,socket,idle")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    out: dict[str, object] = {}
    if "crash" in parts:
        runs = []
        for i in range(args.runs):
            for how in ("kill", "term"):
                r = crash_run(how, args.events, args.concurrency, args.seed + i)
                runs.append(r)
                if not args.json:
                    print(
                        f"{r['how']:>7} at {r['at_s']:.2f} s ({r['at_share']:.0%} sent, {r['replies_before_blow']} "
                        f"answered): {r['lost']} lost, {r['duplicated']} duplicated of "
                        f"{r['expected']} expected ({r['resent_unacked']} unacknowledged deliveries resent; exit "
                        f"{r['exit_code']} after {r['stop_s']} s; all answered after {r['all_answered_s']} s)",
                        flush=True,
                    )
        out["crash"] = {
            "runs": runs,
            "lost": sum(r["lost"] for r in runs),
            "duplicated": sum(r["duplicated"] for r in runs),
        }
    if "slowloris" in parts:
        out["slowloris"] = slowloris(args.connections, args.loris_seconds)
        if not args.json:
            s = out["slowloris"]
            print(
                f"slow-loris, {s['hostile_connections']} hostile connections ({s['hostile_opens']} opened in all): "
                f"/healthz {s['healthz_ms']} ms, event acks {s['event_ack_ms']} ms, {s['failed_requests']} failed; "
                f"{s['events_answered']} of {s['events_sent']} events answered",
                flush=True,
            )
    if "socket" in parts:
        out["socket"] = socket_mode(args.drops)
        if not args.json:
            s = out["socket"]
            print(
                f"Socket Mode: silent drop to next answer {s['drop_to_answer_s']} s; acks after a disconnect "
                f"warning {s['acks_after_warning_ms']} ms ({s['acks_missing']} missing); SIGTERM exit "
                f"{s['sigterm_exit_code']}",
                flush=True,
            )
    if "idle" in parts:
        out["idle"] = idle(args.idle_seconds)
        if not args.json:
            s = out["idle"]
            print(f"idle over {s['seconds']:.0f} s: CPU seconds {s['cpu_s']} ({s['cpu_percent']} %)", flush=True)
    if "crash" in out and not args.json:
        c = out["crash"]
        print(f"crash runs: {c['lost']} answers lost, {c['duplicated']} duplicated in all")
    if args.json:
        print(json.dumps(out, indent=2))
    crash = out.get("crash") or {"lost": 0, "duplicated": 0}
    return 0 if crash["lost"] == 0 and crash["duplicated"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
