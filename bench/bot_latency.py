"""Event-to-reply latency, start-up time and memory of the HTTP-mode bot on loopback.

Starts `gemini-kb serve --http` as a real process against the local Slack stand-in, waits for
/healthz (start-up time to ready), reads its resident memory, then sends signed DM events built
from tests/data/pastes.jsonl (a DM always gets an answer) and times each one from the moment
the request is sent to the moment chat.postMessage reaches the stand-in.

    .venv/bin/python bench/bot_latency.py [--events 500] [--concurrency 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
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

from tests.slack_stub import SlackStub, as_json, event_callback, message_event, post, signed_headers  # noqa: E402

TOKEN = "xoxb" + "-bench-0000-fake"  # fake, for the local stand-in; in two parts so it never reads as a leaked token
SECRET = "bench-signing-secret"
PASTES = ROOT / "tests" / "data" / "pastes.jsonl"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _build_kb(path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "--db", str(path), "ingest"], cwd=ROOT, check=True, capture_output=True
    )


def _start(env: dict[str, str], port: int) -> tuple[subprocess.Popen, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--http", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = start + 60
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return proc, time.perf_counter() - start
        except OSError:
            time.sleep(0.01)
    proc.kill()
    raise SystemExit("serve did not become ready within 60 s")


def bot_env(slack_api_url: str, kb_path: Path, state_path: Path) -> dict[str, str]:
    """The environment of a `serve --http` bot talking to the Slack stand-in, without the caller's secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GEMINI_API", "GOOGLE_API"))}
    env.update(
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=slack_api_url,
        GEMINI_KB_DB=str(kb_path),
        GEMINI_KB_STATE_DB=str(state_path),
        LOG_LEVEL="WARNING",
    )
    return env


def run(events: int, concurrency: int) -> dict[str, object]:
    pastes = [json.loads(line)["text"] for line in PASTES.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp, SlackStub(token=TOKEN) as slack:
        kb_path = Path(tmp) / "kb.sqlite"
        _build_kb(kb_path)
        env = bot_env(slack.api_url, kb_path, Path(tmp) / "state.sqlite")
        port = _free_port()
        proc, ready_s = _start(env, port)
        try:
            rss_start = _rss_kib(proc.pid)
            url = f"http://127.0.0.1:{port}/slack/events"
            sent: dict[str, float] = {}
            lock = threading.Lock()

            def one(i: int) -> None:
                event = message_event(pastes[i % len(pastes)], channel=f"D{i:08d}", channel_type="im")
                body, ctype = as_json(event_callback(event))
                headers = signed_headers(SECRET, body, content_type=ctype)
                with lock:
                    sent[event["channel"]] = time.time()
                reply = post(url, body, headers)
                if reply.status != 200:
                    raise RuntimeError(f"event {i}: HTTP {reply.status} {reply.body}")
                if concurrency == 1:  # strictly one at a time: wait for this reply before the next event
                    slack.wait_for(lambda: len(slack.calls("chat.postMessage")) > i, timeout=10)

            for i in range(10):  # warm-up, not counted
                one(i)
            slack.wait_for(lambda: len(slack.calls("chat.postMessage")) >= 10, timeout=10)
            slack.clear()
            sent.clear()
            start = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(one, range(events)))
            slack.wait_for(lambda: len(slack.calls("chat.postMessage")) >= events, timeout=30)
            wall = time.perf_counter() - start
            replies = slack.calls("chat.postMessage")
            per_channel: dict[str, list[float]] = {}
            for call in replies:
                per_channel.setdefault(call.params["channel"], []).append(call.at)
            latencies = [(times[0] - sent[ch]) * 1000 for ch, times in per_channel.items() if ch in sent]
            rss_end = _rss_kib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(10)
    return {
        "events": events,
        "concurrency": concurrency,
        "replies": len(replies),
        "duplicates": sum(len(t) - 1 for t in per_channel.values()),
        "lost": events - len(per_channel),
        "latency_ms": {
            "median": round(statistics.median(latencies), 2),
            "p90": round(_percentile(latencies, 90), 2),
            "p99": round(_percentile(latencies, 99), 2),
            "max": round(max(latencies), 2),
        },
        "throughput_per_s": round(events / wall, 1),
        "startup_to_ready_s": round(ready_s, 3),
        "rss_after_startup_mib": round(rss_start / 1024, 1),
        "rss_after_run_mib": round(rss_end / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=1, help="events in flight (1: one at a time)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.events, args.concurrency)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        lat = result["latency_ms"]
        print(
            f"{result['events']} events, {result['concurrency']} in flight: {result['replies']} replies, "
            f"{result['duplicates']} duplicates, {result['lost']} lost\n"
            f"event-to-reply latency: median {lat['median']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms, "
            f"max {lat['max']} ms; {result['throughput_per_s']} events/s\n"
            f"start-up to ready: {result['startup_to_ready_s']} s; resident memory after start-up "
            f"{result['rss_after_startup_mib']} MiB, after the run {result['rss_after_run_mib']} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
