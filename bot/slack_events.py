"""Slack's event envelope, translated: which events to ignore, and the message (`Incoming`) to hand to the
answer service. Slack-shaped dicts come in; nothing here decides whether to answer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.policy import worth_answering
from bot.service import Context
from kb.matcher import MatchResult
from kb.settings import ChannelMode


class Trigger(StrEnum):
    """How a message reached the bot."""

    CHANNEL = "channel"  # a message in a channel the bot is in
    MENTION = "mention"  # @gemini-kb in a channel
    DM = "dm"  # a direct message to the bot
    SHORTCUT = "shortcut"  # "Diagnose this error" on a message


# Message subtypes that are a person posting text; every other subtype (edits, deletes,
# joins, topic changes, bot messages...) is ignored.
ANSWERED_SUBTYPES = frozenset({"", "file_share", "thread_broadcast"})
MAX_FILES = 3  # files of one message looked at


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
    files: tuple[dict, ...] = ()  # files shared with the message (a long paste becomes a text snippet)
    author: str | None = None  # who wrote the message, when not `user` (a shortcut on someone else's message)
    private: bool = False  # answer `user` alone (ephemeral), not the thread

    def context(self) -> Context:
        """The message as the answer service sees it. A private answer is not the message's one answer."""
        message_id = None if self.private else self.ts
        return Context(
            self.trigger.value, user=self.user, channel=self.channel, message_id=message_id, delivery_id=self.event_id
        )

    @property
    def in_thread_of_other(self) -> bool:
        """A reply inside a thread (its first message is what the reply is about)."""
        return bool(self.thread_ts) and self.thread_ts != self.ts

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
    return Incoming(trigger, text.strip(), user, channel, ts, thread_ts, event_id, message_files(event)), ""


def message_files(message: dict) -> tuple[dict, ...]:
    files = message.get("files")
    return tuple(f for f in files if isinstance(f, dict))[:MAX_FILES] if isinstance(files, list) else ()


def from_shortcut(body: dict, *, private: bool) -> tuple[Incoming | None, str]:
    """A message shortcut (`type: message_action`) as the message to diagnose, for the person who used it."""
    message = body.get("message") if isinstance(body.get("message"), dict) else {}
    user = (body.get("user") or {}).get("id") or ""
    channel = (body.get("channel") or {}).get("id") or ""
    ts = message.get("ts") or body.get("message_ts") or ""
    if not (user and channel and ts):
        return None, "no user, channel or message"
    delivery = body.get("trigger_id") or body.get("action_ts")
    return (
        Incoming(
            Trigger.SHORTCUT,
            str(message.get("text") or "").strip(),
            user,
            channel,
            ts,
            message.get("thread_ts"),
            f"shortcut:{delivery}" if delivery else None,
            message_files(message),
            author=message.get("user"),
            private=private,
        ),
        "",
    )


def should_answer(incoming: Incoming, result: MatchResult, *, mode: ChannelMode) -> bool:
    """Mentions and DMs always; channel messages according to `mode` (`bot.policy.worth_answering`)."""
    return worth_answering(incoming.text, result, addressed=incoming.trigger is not Trigger.CHANNEL, mode=mode)
