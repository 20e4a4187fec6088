"""Load: the HTTP-mode bot under a mix of Slack traffic, checked for exactly-once replies.

Starts `gemini-kb serve --http` as a real process against the local Slack stand-in (as
bench/bot_latency.py does) and sends signed events from many concurrent senders: error pastes in
channels, chatter in channels, DMs, mentions (each arrives twice, as app_mention and as message, like
Slack sends it) and Slack retries (resends of some deliveries with X-Slack-Retry-Num). Which channel
messages deserve an answer is worked out beforehand with the bot's own matcher and policy, so a reply
that never comes is a loss, a second one a duplicate, and one nobody expected is reported too.
`--rate-limited N` makes the stand-in answer the first N chat.postMessage calls with 429 Retry-After: 1.

    .venv/bin/python bench/load.py [--events 2000] [--concurrency 50] [--retries 0.1] [--rate-limited 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bot_latency import (  # noqa: E402
    PASTES,
    SECRET,
    TOKEN,
    _build_kb,
    _free_port,
    _percentile,
    _rss_kib,
    _start,
    bot_env,
)
from bot.slack_events import classify, should_answer  # noqa: E402
from kb.matcher import match  # noqa: E402
from kb.settings import ChannelMode  # noqa: E402
from kb.store import open_kb  # noqa: E402
from tests.slack_stub import (  # noqa: E402
    BOT_ID,
    BOT_USER_ID,
    Scripted,
    SlackStub,
    as_json,
    event_callback,
    message_event,
    new_ts,
    post,
    signed_headers,
)

CHATTER = (
    "anyone up for lunch?",
    "has anyone tried gemini 2.5 flash for summaries? it's pretty good",
    "standup moved to 10:30 today",
    "TIL the API returns a 400 when you send an empty prompt, makes sense",
    "thanks, that fixed it!",
    "deploy is done, metrics look fine",
)
MIX = (("channel-error", 35), ("chatter", 20), ("dm", 25), ("mention", 20))  # shares of Slack messages
CHANNELS = [f"C0LOAD{n:04d}" for n in range(8)]


@dataclass
class Delivery:
    """One POST to /slack/events: an event, or a Slack retry of one."""

    kind: str
    key: tuple[str, str | None]  # where its reply lands: (channel, thread_ts)
    body: str
    retry: int = 0


@dataclass
class Plan:
    deliveries: list[Delivery] = field(default_factory=list)
    expected: set[tuple[str, str | None]] = field(default_factory=set)  # keys that must get exactly one reply
    silent: set[tuple[str, str | None]] = field(default_factory=set)  # keys that must get none
    kinds: dict[str, int] = field(default_factory=dict)


def plan(events: int, retries: float, seed: int, kb_path: Path) -> Plan:
    """`events` distinct Slack deliveries (a mention counts twice), plus resends of a `retries` share."""
    rng = random.Random(seed)
    pastes = [json.loads(line)["text"] for line in PASTES.read_text().splitlines() if line.strip()]
    kb = open_kb(kb_path)
    answered_in_channel: dict[str, bool] = {}

    def channel_expects(event: dict) -> bool:
        text = event["text"]
        if text not in answered_in_channel:
            incoming, _ = classify(event, event_type="message", event_id="Ev", bot_user_id=BOT_USER_ID, bot_id=BOT_ID)
            answered_in_channel[text] = incoming is not None and should_answer(
                incoming, match(incoming.text, kb), mode=ChannelMode.ERRORS
            )
        return answered_in_channel[text]

    out = Plan()
    originals: list[Delivery] = []
    kinds, weights = zip(*MIX, strict=True)
    n = 0
    while len(originals) < events:
        kind = rng.choices(kinds, weights)[0]
        n += 1
        if kind == "dm":
            event = message_event(rng.choice(pastes), channel=f"D0LOAD{n:06d}", channel_type="im")
            key = (event["channel"], None)
            expected = True
        elif kind == "mention":
            if len(originals) + 2 > events:
                continue
            ts, channel = new_ts(), rng.choice(CHANNELS)
            text = f"<@{BOT_USER_ID}> any idea what this is?\n{rng.choice(pastes)}"
            key = (channel, ts)
            as_message = message_event(text, channel=channel, ts=ts)  # Slack sends both; one answer
            originals.append(Delivery(kind, key, as_json(event_callback(as_message))[0]))
            event = message_event(text, channel=channel, ts=ts, type="app_mention")
            expected = True
        else:
            text = rng.choice(pastes) if kind == "channel-error" else rng.choice(CHATTER)
            event = message_event(text, channel=rng.choice(CHANNELS))
            key = (event["channel"], event["ts"])
            expected = channel_expects(event)
        originals.append(Delivery(kind, key, as_json(event_callback(event))[0]))
        (out.expected if expected else out.silent).add(key)
        out.kinds[kind] = out.kinds.get(kind, 0) + 1
    # Slack resends a delivery it thinks failed, with the same body (event_id) and a retry number.
    jobs: list[list[Delivery]] = [[d] for d in originals]
    for i, original in enumerate(originals):
        if rng.random() < retries:
            for attempt in (1, 2) if rng.random() < 0.3 else (1,):
                later = min(len(jobs) - 1, i + rng.randint(1, 150))
                jobs[later].append(Delivery(original.kind, original.key, original.body, retry=attempt))
    out.deliveries = [d for group in jobs for d in group]
    return out


def _drain(stream, lines: list[str]) -> None:
    for line in stream:  # keeps the bot's stderr pipe from filling up
        lines.append(line)


def run(events: int, concurrency: int, retries: float, rate_limited: int, seed: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, SlackStub(token=TOKEN) as slack:
        kb_path = Path(tmp) / "kb.sqlite"
        _build_kb(kb_path)
        env = bot_env(slack.api_url, kb_path, Path(tmp) / "state.sqlite")
        work = plan(events, retries, seed, kb_path)  # with the same knowledge base as the bot
        port = _free_port()
        proc, _ready_s = _start(env, port)
        stderr: list[str] = []
        threading.Thread(target=_drain, args=(proc.stderr, stderr), daemon=True).start()
        try:
            url = f"http://127.0.0.1:{port}/slack/events"
            for i in range(10):  # warm-up, not counted
                body = as_json(event_callback(message_event(CHATTER[0], channel=f"D0WARM{i:04d}", channel_type="im")))
                post(url, body[0], signed_headers(SECRET, body[0], content_type=body[1]))
            slack.wait_for(lambda: len(slack.calls("chat.postMessage")) >= 10, timeout=10)
            slack.clear()
            if rate_limited:
                limited = Scripted(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
                slack.script("chat.postMessage", *[limited] * rate_limited)
            rss_start = _rss_kib(proc.pid)
            first_sent: dict[tuple[str, str | None], float] = {}
            acks: list[float] = []
            refused: list[str] = []
            lock = threading.Lock()

            def send(delivery: Delivery) -> None:
                headers = signed_headers(SECRET, delivery.body, content_type="application/json")
                if delivery.retry:
                    headers.update({"X-Slack-Retry-Num": str(delivery.retry), "X-Slack-Retry-Reason": "http_timeout"})
                with lock:
                    first_sent.setdefault(delivery.key, time.time())
                reply = post(url, delivery.body, headers)
                with lock:
                    acks.append(reply.seconds * 1000)
                    if reply.status != 200:
                        refused.append(f"HTTP {reply.status}")

            start = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(send, work.deliveries))
            sent_s = time.perf_counter() - start
            slack.wait_for(lambda: work.expected <= _answered(slack), timeout=60)
            wall = time.perf_counter() - start
            quiet = len(slack.calls("chat.postMessage"))
            while slack.wait_for(lambda seen=quiet: len(slack.calls("chat.postMessage")) > seen, timeout=2.0):
                quiet = len(slack.calls("chat.postMessage"))  # late duplicates would land here
            replies = slack.calls("chat.postMessage")
            rss_end, rss_peak = _rss_kib(proc.pid), _hwm_kib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(10)
    per_key: dict[tuple[str, str | None], list[float]] = {}
    for call in replies:
        per_key.setdefault((call.params["channel"], call.params.get("thread_ts")), []).append(call.at)
    latencies = [(min(times) - first_sent[k]) * 1000 for k, times in per_key.items() if k in work.expected]
    return {
        "events": events,
        "requests": len(work.deliveries),
        "slack_retries_sent": sum(1 for d in work.deliveries if d.retry),
        "mix": work.kinds,
        "concurrency": concurrency,
        "rate_limited_posts": rate_limited,
        "non_200_acks": len(refused),
        "expected_replies": len(work.expected),
        "replies": len(replies),
        "duplicates": sum(len(t) - 1 for t in per_key.values()),
        "lost": len(work.expected - per_key.keys()),
        "unexpected": len(per_key.keys() - work.expected),
        "ack_ms": _summary(acks),
        "event_to_reply_ms": _summary(latencies),
        "send_s": round(sent_s, 2),
        "all_answered_s": round(wall, 2),
        "events_per_s": round(len(work.deliveries) / sent_s, 1),
        "rss_mib": {
            "start": round(rss_start / 1024, 1),
            "end": round(rss_end / 1024, 1),
            "peak": round(rss_peak / 1024, 1),
        },
        "bot_error_lines": sum(" ERROR " in line for line in stderr),
        "bot_errors": [line.rstrip()[:300] for line in stderr if " ERROR " in line][:5],
        "lost_keys": sorted(str(k) for k in work.expected - per_key.keys())[:5],
    }


def _answered(slack: SlackStub) -> set[tuple[str, str | None]]:
    return {(c.params["channel"], c.params.get("thread_ts")) for c in slack.calls("chat.postMessage")}


def _hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "p50": round(statistics.median(values), 1),
        "p99": round(_percentile(values, 99), 1),
        "max": round(max(values), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="distinct Slack deliveries (default 2000)")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight (default 50)")
    parser.add_argument("--retries", type=float, default=0.1, help="share of deliveries Slack resends (default 0.1)")
    parser.add_argument("--rate-limited", type=int, default=0, help="first N replies get 429 Retry-After: 1")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    r = run(args.events, args.concurrency, args.retries, args.rate_limited, args.seed)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        mix = ", ".join(f"{v} {k}" for k, v in sorted(r["mix"].items()))
        ack, lat, rss = r["ack_ms"], r["event_to_reply_ms"], r["rss_mib"]
        print(
            f"{r['events']} events ({mix}) + {r['slack_retries_sent']} Slack retries = {r['requests']} requests, "
            f"{r['concurrency']} in flight; {r['non_200_acks']} not acked with 200\n"
            f"replies: {r['replies']} posted for {r['expected_replies']} expected; {r['duplicates']} duplicates, "
            f"{r['lost']} lost, {r['unexpected']} unexpected\n"
            f"ack latency: p50 {ack['p50']} ms, p99 {ack['p99']} ms, max {ack['max']} ms\n"
            f"event-to-reply latency: p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms\n"
            f"sent in {r['send_s']} s ({r['events_per_s']} requests/s), all answered after {r['all_answered_s']} s\n"
            f"bot resident memory: {rss['start']} MiB before, {rss['end']} MiB after, peak {rss['peak']} MiB; "
            f"{r['bot_error_lines']} ERROR lines in its log"
        )
        for line in r["bot_errors"]:
            print(f"  {line}")
    ok = r["duplicates"] == 0 and r["lost"] == 0 and r["unexpected"] == 0 and r["non_200_acks"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
