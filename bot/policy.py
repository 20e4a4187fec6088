"""When the bot speaks: which events to ignore, when a channel message deserves an answer,
exactly-once delivery across Slack retries, and the per-user rate limit on checks.

Slack-shaped dicts come in, plain decisions come out; nothing here posts anything.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from enum import StrEnum

from kb.matcher import MatchResult
from kb.settings import ChannelMode
from kb.signals import Signals


class Trigger(StrEnum):
    """How a message reached the bot."""

    CHANNEL = "channel"  # a message in a channel the bot is in
    MENTION = "mention"  # @gemini-kb in a channel
    DM = "dm"  # a direct message to the bot


# Message subtypes that are a person posting text; every other subtype (edits, deletes,
# joins, topic changes, bot messages...) is ignored.
ANSWERED_SUBTYPES = frozenset({"", "file_share", "thread_broadcast"})


@dataclass(frozen=True)
class Incoming:
    """A message worth considering, stripped of the Slack envelope."""

    trigger: Trigger
    text: str
    user: str
    channel: str
    ts: str
    thread_ts: str | None  # the thread the message is in, if any
    event_id: str | None

    @property
    def reply_thread(self) -> str | None:
        """Where the answer goes: channels and mentions answer in the thread, DMs inline unless threaded."""
        if self.trigger is Trigger.DM:
            return self.thread_ts
        return self.thread_ts or self.ts


def mention_pattern(bot_user_id: str | None) -> re.Pattern[str] | None:
    if not bot_user_id:
        return None
    return re.compile(rf"<@{re.escape(bot_user_id)}(?:\|[^>]{{0,80}})?>")


def classify(
    event: dict, *, event_type: str, event_id: str | None, bot_user_id: str | None, bot_id: str | None
) -> tuple[Incoming | None, str]:
    """The message to consider, or None and why it is ignored."""
    subtype = event.get("subtype") or ""
    if event.get("bot_id") or subtype == "bot_message" or event.get("bot_profile"):
        return None, "from a bot"
    user = event.get("user") or ""
    if not user:
        return None, "no user"
    if bot_user_id and user == bot_user_id:
        return None, "from this bot"
    if subtype not in ANSWERED_SUBTYPES:
        return None, f"subtype {subtype}"
    if event.get("hidden"):
        return None, "hidden"
    text = event.get("text") or ""
    channel, ts = event.get("channel") or "", event.get("ts") or ""
    if not channel or not ts:
        return None, "no channel or ts"
    mention = mention_pattern(bot_user_id)
    if event.get("channel_type") == "im" or channel.startswith("D"):
        trigger = Trigger.DM  # a DM is a DM, whichever event (message.im, app_mention) carried it
    elif event_type == "app_mention":
        trigger = Trigger.MENTION
    elif mention is not None and mention.search(text):
        # Slack also sends this message as app_mention: that path answers it.
        return None, "mentions the bot (answered as app_mention)"
    else:
        trigger = Trigger.CHANNEL
    if mention is not None:
        text = mention.sub(" ", text)
    thread_ts = event.get("thread_ts")
    return Incoming(trigger, text.strip(), user, channel, ts, thread_ts, event_id), ""


# Shapes of text that say "this is an error report", as opposed to talk about errors.
ERROR_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("traceback", re.compile(r"Traceback \(most recent call last\)|^[^\S\n]{1,40}at [\w$.<>]{1,200}\(", re.M)),
    ("json_error", re.compile(r"[\"']error[\"']\s{0,3}:\s{0,3}\{")),
    ("exception_line", re.compile(r"^\s{0,8}[\w.]{0,120}(?:Error|Exception)\b[^\n]{0,20}:", re.M)),
    (
        "error_word",
        re.compile(
            r"\b(?:errors?|exception|fail(?:s|ed|ing|ure)?|refused|denied|exceeded|exhausted|invalid|"
            r"timed? ?out|not found|unavailable|blocked|overloaded|rejected|unsupported|unknown name|"
            r"(?:is )?not (?:supported|valid|specified)|comes? back (?:empty|none|null))\b",
            re.I,
        ),
    ),
)


def error_shapes(text: str) -> list[str]:
    """Names of the error shapes found in `text`."""
    head = text[:20_000]
    return [name for name, pattern in ERROR_SHAPES if pattern.search(head)]


def looks_like_error(text: str, signals: Signals) -> bool:
    """An error report, or a question about one: an error shape, or something an API or SDK
    prints (an HTTP error status, a status name, an ErrorInfo reason, an exception class, a
    finish reason, a quota id). Talk that merely names an error ("TIL it's a 400") is neither."""
    if error_shapes(text):
        return True
    return bool(
        (signals.http_status and signals.http_status >= 400)
        or signals.status
        or signals.reasons
        or signals.exceptions
        or signals.finish_reasons
        or signals.quota_ids
    )


def should_answer(incoming: Incoming, result: MatchResult, *, mode: ChannelMode) -> bool:
    """Mentions and DMs always; channel messages according to `mode`."""
    if incoming.trigger is not Trigger.CHANNEL:
        return True
    if mode is ChannelMode.MENTIONS or not result.confident:
        return False
    return mode is ChannelMode.CONFIDENT or looks_like_error(incoming.text, result.signals)


def event_key(incoming: Incoming) -> str | None:
    """Slack retries an event with the same event_id."""
    return f"event:{incoming.event_id}" if incoming.event_id else None


def message_key(incoming: Incoming, purpose: str = "answer") -> str:
    """A mention arrives as two events (app_mention and message) about one (channel, ts)."""
    return f"{purpose}:{incoming.channel}:{incoming.ts}"


class RateLimiter:
    """At most `limit` uses per `per` seconds for each key (a sliding window).

    Keys are kept in the order of their last allowed use, so the ones idle for a whole window are at the
    front and are forgotten as soon as they are: memory stays bounded by the keys active in one window.
    """

    def __init__(self, limit: int, per: float = 60.0, *, clock=time.monotonic):
        self.limit, self.per, self._clock = limit, per, clock
        self._uses: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many keys are remembered."""
        return len(self._uses)

    def allow(self, key: str) -> tuple[bool, float]:
        """(allowed, seconds until the next use would be allowed)."""
        if self.limit <= 0:
            return True, 0.0
        now = self._clock()
        with self._lock:
            self._forget_idle(now)
            uses = self._uses.get(key)
            if uses is None:
                uses = self._uses[key] = deque()
            while uses and now - uses[0] >= self.per:
                uses.popleft()
            if len(uses) >= self.limit:
                return False, self.per - (now - uses[0])
            uses.append(now)
            self._uses.move_to_end(key)
            return True, 0.0

    def _forget_idle(self, now: float) -> None:
        while self._uses:
            uses = next(iter(self._uses.values()))
            if uses and now - uses[-1] < self.per:
                return
            self._uses.popitem(last=False)
