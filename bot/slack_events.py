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

    def context(self) -> Context:
        """The message as the answer service sees it."""
        return Context(
            self.trigger.value, user=self.user, channel=self.channel, message_id=self.ts, delivery_id=self.event_id
        )

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


def should_answer(incoming: Incoming, result: MatchResult, *, mode: ChannelMode) -> bool:
    """Mentions and DMs always; channel messages according to `mode` (`bot.policy.worth_answering`)."""
    return worth_answering(incoming.text, result, addressed=incoming.trigger is not Trigger.CHANNEL, mode=mode)
