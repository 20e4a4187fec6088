"""When the bot speaks, whatever the platform: which messages deserve an answer, the keys that make
delivery exactly-once, and the rate limit on checks. Plain decisions; nothing here posts anything.
(Turning a Slack event into a message is `bot.slack_events`.)"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from kb.matcher import MatchResult
from kb.settings import ChannelMode
from kb.signals import Signals

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


def worth_answering(text: str, result: MatchResult, *, addressed: bool, mode: ChannelMode) -> bool:
    """Messages said to the bot always; messages overheard in a channel according to `mode`."""
    if addressed:
        return True
    if mode is ChannelMode.MENTIONS or not result.confident:
        return False
    return mode is ChannelMode.CONFIDENT or looks_like_error(text, result.signals)


def delivery_key(delivery_id: str) -> str:
    """A platform redelivers an event (Slack retries) with the same id: claimed once."""
    return f"event:{delivery_id}"


def message_key(channel: str | None, message_id: str, purpose: str = "answer") -> str:
    """One answer (or warning) per message, however many events carry it (a Slack mention arrives twice)."""
    return f"{purpose}:{channel}:{message_id}"


@dataclass(frozen=True)
class Budget:
    """A check-budget decision: `limited_by` is "user" or "overall" when refused."""

    allowed: bool
    wait_s: float = 0.0
    limited_by: str | None = None


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
