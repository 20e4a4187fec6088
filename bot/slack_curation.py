"""The Slack side of curation (issue 17): who is a maintainer, the queue in the App Home, the ✅ / 👎 reactions
and the "Add to KB" button on answers, and the weekly digest thread.

A thin adapter over `bot.curation.Curation` (reached as `service.curation`): it translates Slack events and
clicks, checks that a maintainer made a maintainer's decision (every click is checked again, a forged payload
changes nothing), and renders with `bot.blocks_curation`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.client import HTTPException

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.blocks_curation import (
    ACTION_ADD_SIGNATURE,
    ACTION_APPROVE,
    ACTION_DISMISS,
    ACTION_LABEL,
    ACTION_REJECT,
    curation_blocks,
    digest_message,
)
from bot.curation import Outcome
from bot.service import AnswerService
from kb.settings import BotSettings

log = logging.getLogger(__name__)

GROUP_TTL_S = 60.0  # a user group's members are asked again after this
CHECK_REACTIONS = frozenset({"white_check_mark", "heavy_check_mark"})
DOWN_REACTIONS = frozenset({"-1", "thumbsdown"})


class Maintainers:
    """GEMINI_KB_MAINTAINERS: user ids, and user groups (S…) resolved with usergroups.users.list, cached briefly."""

    def __init__(self, ids: tuple[str, ...], *, ttl: float = GROUP_TTL_S, clock: Callable[[], float] = time.monotonic):
        self.users = frozenset(i for i in ids if not i.startswith("S"))
        self.groups = tuple(i for i in ids if i.startswith("S"))
        self._ttl, self._clock = ttl, clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def _members(self, group: str, client: WebClient) -> frozenset[str]:
        with self._lock:
            cached = self._cache.get(group)
            if cached and self._clock() - cached[0] < self._ttl:
                return cached[1]
        try:
            members = frozenset(client.usergroups_users_list(usergroup=group).get("users") or [])
        except (SlackApiError, OSError, HTTPException) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
            log.warning("usergroups.users.list %s failed: %s; its members are not maintainers for now", group, error)
            members = cached[1] if cached else frozenset()  # a stale answer beats locking every maintainer out
        with self._lock:
            self._cache[group] = (self._clock(), members)
        return members

    def __call__(self, user: str | None, client: WebClient) -> bool:
        if not user:
            return False
        return user in self.users or any(user in self._members(g, client) for g in self.groups)


def _value(action: dict) -> dict:
    raw = (action.get("selected_option") or {}).get("value") if action.get("type") == "static_select" else None
    if raw is not None:
        return {"e": raw}
    try:
        data = json.loads(action.get("value") or "{}")
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class SlackCuration:
    """Curation listeners of one bot, and its digest thread. `client` gives the bot's Web API client (for the
    digest, which no event carries); `finished` is called when a listener run ends (tests wait on it)."""

    def __init__(
        self,
        service: AnswerService,
        settings: BotSettings,
        *,
        client: Callable[[], WebClient],
        finished: Callable[[], None] = lambda: None,
    ):
        self.service, self.kb, self.curation = service, service.kb, service.curation
        self.client, self._finished = client, finished
        self.is_maintainer = Maintainers(settings.maintainers)
        self.digest = DigestScheduler(self, every=settings.digest_every)

    def register(self, app) -> None:
        app.event("reaction_added")(self.on_reaction)
        app.action(blocks.ACTION_ADD_TO_KB)(self.on_add_to_kb)
        app.action(ACTION_LABEL)(self.on_label)
        app.action(ACTION_DISMISS)(self.on_dismiss)
        app.action(ACTION_ADD_SIGNATURE)(self.on_add_signature)
        app.action(ACTION_APPROVE)(self.on_decide)
        app.action(ACTION_REJECT)(self.on_decide)

    # -- App Home --------------------------------------------------------------------------

    def home_blocks(self, user: str, client: WebClient, *, notice: str = "") -> list[dict] | None:
        """The queue for a maintainer (with the outcome of their last click); None for everyone else."""
        if self.curation.state is None or not self.is_maintainer(user, client):
            return None
        try:
            misses, proposals = self.curation.open_misses(), self.curation.proposals()
        except self.curation.state.errors as exc:
            log.warning("curation queue unreadable: %s", str(exc).splitlines()[0])
            return None
        return curation_blocks(misses, proposals, self.kb, notice=notice)

    def publish_home(self, user: str, client: WebClient, *, notice: str = "") -> None:
        queue = self.home_blocks(user, client, notice=notice)
        view = blocks.home_view(self.kb, self.service.summary(days=7), curation=queue)
        try:
            client.views_publish(user_id=user, view=view)
        except SlackApiError as exc:
            log.error("views.publish failed: %s", exc.response.get("error"))

    # -- maintainers' clicks (App Home) ----------------------------------------------------

    def _decision(self, ack, body, action, client, decide: Callable[[dict, str], Outcome]) -> None:
        ack()
        try:
            user = (body.get("user") or {}).get("id") or ""
            if not self.is_maintainer(user, client):
                log.warning("curation click %s from %s (not a maintainer): ignored", action.get("action_id"), user)
                return
            outcome = decide(_value(action) | _block_ids(action), user)
            log.info("curation %s by %s: %s", action.get("action_id"), user, outcome.text)
            self.publish_home(user, client, notice=outcome.text)
        finally:
            self._finished()

    def on_label(self, ack, body, action, client) -> None:
        def decide(v: dict, user: str) -> Outcome:
            miss = _int(v.get("m"))
            if miss is None or not isinstance(v.get("e"), str):
                return Outcome(False, "bad label click")
            return self.curation.label(miss, v["e"], by=user)

        self._decision(ack, body, action, client, decide)

    def on_dismiss(self, ack, body, action, client) -> None:
        def decide(v: dict, user: str) -> Outcome:
            miss = _int(v.get("m"))
            return self.curation.dismiss(miss, by=user) if miss is not None else Outcome(False, "bad click")

        self._decision(ack, body, action, client, decide)

    def on_add_signature(self, ack, body, action, client) -> None:
        def decide(v: dict, user: str) -> Outcome:
            miss = _int(v.get("m"))
            return self.curation.propose_from_miss(miss, by=user) if miss is not None else Outcome(False, "bad click")

        self._decision(ack, body, action, client, decide)

    def on_decide(self, ack, body, action, client) -> None:
        approve = action.get("action_id") == ACTION_APPROVE

        def decide(v: dict, user: str) -> Outcome:
            pid = _int(v.get("p"))
            return self.curation.decide(pid, approve=approve, by=user) if pid is not None else Outcome(False, "bad")

        self._decision(ack, body, action, client, decide)

    # -- reactions and "Add to KB" on answers ------------------------------------------------

    def _tell(self, client: WebClient, channel: str, user: str, thread_ts: str | None, text: str) -> None:
        try:
            message = blocks.notice_message(text)
            client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, **message.kwargs())
        except (SlackApiError, OSError, HTTPException) as exc:
            log.error("chat.postEphemeral to %s failed: %s", channel, type(exc).__name__)

    def _propose(self, client: WebClient, *, channel: str, answer_ts: str, user: str, origin: str) -> None:
        answer = self.curation.state.posted_answer(channel, answer_ts) if self.curation.state is not None else None
        if answer is None:
            return  # not one of the bot's answers (or too old): a ✅ on anything else is none of our business
        outcome = self.curation.propose_from_answer(
            channel=channel,
            answer_ts=answer_ts,
            user=user,
            maintainer=self.is_maintainer(user, client),
            origin=origin,
        )
        log.info("proposal by %s from %s in %s: %s", user, origin, channel, outcome.text)
        self._tell(client, channel, user, answer.get("thread_ts") or answer.get("paste_ts"), outcome.text)

    def on_reaction(self, body, event, client) -> None:
        try:
            item = event.get("item") or {}
            channel, ts, user = item.get("channel"), item.get("ts"), event.get("user")
            if item.get("type") != "message" or not (channel and ts and user):
                return
            if not self.curation.first_delivery(body.get("event_id")):
                return  # Slack retried the event: it was handled
            reaction = str(event.get("reaction") or "").split("::", 1)[0]  # skin tones: thumbsdown::skin-tone-2
            if reaction in CHECK_REACTIONS:
                self._propose(client, channel=channel, answer_ts=ts, user=user, origin="reaction")
            elif reaction in DOWN_REACTIONS:
                # Only on the bot's own answers (the curation service looks the answer up and ignores others).
                self.service.record_feedback(
                    user=user, channel=channel, message_ts=ts, entry_id="", verdict="thumbs_down", confidence=None
                )
        finally:
            self._finished()

    def on_add_to_kb(self, ack, body, action, client) -> None:
        ack()
        try:
            container = body.get("container") or {}
            channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
            ts = (body.get("message") or {}).get("ts") or container.get("message_ts")
            user = (body.get("user") or {}).get("id")
            if channel and ts and user:
                self._propose(client, channel=channel, answer_ts=ts, user=user, origin="button")
        finally:
            self._finished()

    def close(self) -> None:
        self.digest.stop()


def _block_ids(action: dict) -> dict:
    """A select carries the family; the miss it labels is named by its block (`miss:<id>`)."""
    kind, _, number = str(action.get("block_id") or "").partition(":")
    return {"m": int(number)} if kind == "miss" and number.isdigit() and action.get("type") == "static_select" else {}


class DigestScheduler:
    """The weekly digest, run by the bot itself: every `every` seconds a round claims and posts each channel's
    digest for the current ISO week (`Curation.due_digests`: one replica wins each claim). No cron needed."""

    def __init__(self, owner: SlackCuration, *, every: float, clock: Callable[[], float] = time.time):
        self.owner, self.every, self._clock = owner, every, clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0
        self._done = threading.Condition()

    def start(self) -> None:
        if self.every <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="digest", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.run_once()
            except Exception:  # one bad round must not end the thread (logged with its traceback)
                log.exception("digest round failed")

    def run_once(self, now: float | None = None) -> int:
        """One round: post the digests this replica claimed; how many were posted."""
        posted = 0
        for digest in self.owner.curation.due_digests(self._clock() if now is None else now):
            message = digest_message(digest, self.owner.kb)
            try:
                self.owner.client().chat_postMessage(channel=digest.channel, unfurl_links=False, **message.kwargs())
                posted += 1
            except (SlackApiError, OSError, HTTPException) as exc:
                log.error("digest for %s (%s) not posted: %s", digest.channel, digest.week, type(exc).__name__)
        with self._done:
            self.rounds += 1
            self._done.notify_all()
        return posted

    def wait_rounds(self, count: int, timeout: float) -> bool:
        with self._done:
            return self._done.wait_for(lambda: self.rounds >= count, timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
