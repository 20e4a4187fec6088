"""The Slack adapter: a bolt App whose listeners hand messages to the matcher and checks and
post what `bot.blocks` renders. Transport (Socket Mode, HTTP) is `bot.serve`'s business.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPException
from urllib.error import HTTPError, URLError

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest as RetryRequest
from slack_sdk.http_retry.response import HttpResponse as RetryResponse
from slack_sdk.http_retry.state import RetryState

from bot import blocks, slash
from bot.checker import Checker
from bot.durable import DRAIN_S, DurableWork, Posted, incoming_of
from bot.service import AnswerService, Context
from bot.slack_context import SlackFetcher
from bot.slack_curation import SlackCuration
from bot.slack_events import Incoming, Trigger, classify, from_shortcut
from bot.state import StateBase
from bot.state_contract import PendingJob
from kb.redact import redact
from kb.settings import BotSettings
from kb.store import KnowledgeBase

log = logging.getLogger(__name__)

LISTENER_THREADS = 16
DIAGNOSE_SHORTCUT = "diagnose_error"  # the message shortcut's callback_id (bot/manifest.yaml)
SLACK_TIMEOUT_S = 10


SLACK_RETRIES = 2  # retries after the first try of one Web API call
SLACK_RETRY_BUDGET_S = 15.0  # waiting between the tries of one call, in all
SLACK_RETRY_AFTER_MAX_S = 10.0  # a 429 asking for a longer wait gives up at once (a listener is not held)
LAST_SLACK_RETRY = 3  # Slack's Events API retries a delivery three times (about now, +1 min, +5 min)
# Calls that change nothing when repeated: any failure is retried. chat.postMessage and chat.postEphemeral
# carry no idempotency key, so a retry after Slack may have acted could post the answer twice.
IDEMPOTENT_METHODS = frozenset({"auth.test", "chat.update", "views.publish"})


class SlackRetryHandler(RetryHandler):
    """Retry a Web API call only when a retry cannot post twice, with a bounded count and total wait.

    Every method: 429 (rate limited; after Retry-After, capped), 503 (Service Unavailable) and a
    connection that was never made (refused, DNS, connect timeout: urllib raises URLError before
    anything is sent). Only `IDEMPOTENT_METHODS` also retry 500/502/504, a read timeout and a
    connection dropped after the request went out: Slack documents that after internal_error or
    fatal_error "some aspect of the operation" may have succeeded, and a timed-out request may have
    been posted. A reply is therefore posted at most once; such a failure is logged by the caller.
    """

    def __init__(self, max_retry_count: int = SLACK_RETRIES, *, budget_s: float = SLACK_RETRY_BUDGET_S):
        super().__init__(max_retry_count)
        self.budget_s = budget_s

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: RetryRequest,
        response: RetryResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method = request.url.split("?", 1)[0].rsplit("/", 1)[-1]
        backoff = min(4.0, 0.5 * 2**state.current_attempt) + random.uniform(0, 0.25)
        status = response.status_code if response is not None else None
        if status == 429:
            header = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
            try:
                after = float((header[0] if isinstance(header, list) else header) or 1)
            except ValueError:
                after = backoff
            if after > SLACK_RETRY_AFTER_MAX_S:
                log.warning("Slack %s: rate limited for %.0f s; not retrying", method, after)
                return False
            wait, why = after + random.uniform(0, 0.25), "rate limited"
        elif status == 503 or (status in (500, 502, 504) and method in IDEMPOTENT_METHODS):
            wait, why = backoff, f"HTTP {status}"
        elif status is not None or error is None:
            return False
        elif isinstance(error, URLError) and not isinstance(error, HTTPError):
            wait, why = backoff, f"no connection ({error.reason})"  # nothing reached Slack
        elif isinstance(error, OSError | HTTPException) and method in IDEMPOTENT_METHODS:
            wait, why = backoff, type(error).__name__  # a read timeout or a dropped connection
        else:
            return False
        values = state.custom_values if state.custom_values is not None else {}
        state.custom_values = values
        if values.get("waited", 0.0) + wait > self.budget_s:
            log.warning("Slack %s: %s; retry budget of %.0f s spent", method, why, self.budget_s)
            return False
        values["wait"] = wait
        log.warning("Slack %s: %s; retry %d in %.1f s", method, why, state.current_attempt + 1, wait)
        return True

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: RetryRequest,
        response: RetryResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        values = state.custom_values or {}
        wait = float(values.get("wait", 0.0))
        time.sleep(wait)
        values["waited"] = values.get("waited", 0.0) + wait
        state.next_attempt_requested = True
        state.increment_current_attempt()


def web_client(settings: BotSettings, *, api_url: str | None = None) -> WebClient:
    """A Web API client for the bot token; failures are retried where that cannot post twice (SlackRetryHandler)."""
    base = api_url or settings.api_url or WebClient.BASE_URL
    return WebClient(
        token=settings.bot_token,
        base_url=base if base.endswith("/") else base + "/",
        timeout=SLACK_TIMEOUT_S,
        retry_handlers=[SlackRetryHandler()],
    )


class _DropMessage(logging.Filter):
    def __init__(self, message: str):
        super().__init__()
        self.message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.message


def _ms(start: float) -> float:
    """Milliseconds since `start` (a perf_counter reading), for log lines."""
    return round((time.perf_counter() - start) * 1000, 1)


def _value(action: dict) -> dict:
    try:
        data = json.loads(action.get("value") or "{}")
    except (ValueError, RecursionError):  # a button value is ours, but a forged one may nest deeply
        return {}
    return data if isinstance(data, dict) else {}


class GeminiBot:
    """The bolt App plus what its listeners share: knowledge base, state, checker."""

    def __init__(
        self,
        *,
        kb: KnowledgeBase,
        state: StateBase,
        settings: BotSettings,
        client: WebClient | None = None,
        checker: Checker | None = None,
    ):
        self.kb, self.state, self.settings = kb, state, settings
        self.checker = checker or Checker(
            kb,
            timeout=settings.check_timeout,
            per_user_per_minute=settings.checks_per_minute,
            global_per_minute=settings.checks_global_per_minute,
            team_key=settings.team_key,
            base_url=settings.base_url,
            allow_private=settings.allow_private,
        )
        self.service = AnswerService(kb, state, self.checker, mode=settings.channel_mode)
        # App Home queue, ✅/👎 reactions, Add to KB, weekly digest
        self.curation = SlackCuration(self.service, settings, client=lambda: self.app.client, finished=self._finished)
        self.work = DurableWork(state)  # acknowledged messages are pending jobs until answered (bot.durable)
        self._bot_ids: tuple[str | None, str | None] | None = None  # (bot user id, bot id), for resumed jobs
        self._done = threading.Condition()
        self.events_done = 0  # listener runs finished (tests and benchmarks wait on it)
        self._listeners = ThreadPoolExecutor(LISTENER_THREADS, thread_name_prefix="listener")
        # bolt reads SLACK_BOT_TOKEN itself and then warns that our client (which carries that
        # same token and SLACK_API_URL) wins: true and expected, so keep the warning out of the log.
        bolt_log = logging.getLogger("slack_bolt.App")
        quiet = _DropMessage(warning_client_prioritized_and_token_skipped())
        bolt_log.addFilter(quiet)
        try:
            self.app = App(
                client=client or web_client(settings),
                signing_secret=settings.signing_secret,
                # Long-lived server: ack first, then work on the listener pool (Slack wants an ack in 3 s).
                process_before_response=False,
                listener_executor=self._listeners,
                name="gemini-kb",
            )
        finally:
            bolt_log.removeFilter(quiet)
        self.fetcher = SlackFetcher(token=settings.bot_token, api_url=self.app.client.base_url)
        self._register()
        self.curation.digest.start()
        self.work.start(self._resume)

    # -- wiring ---------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.middleware(self._admit)
        app.event("message")(self._on_message)
        app.event("app_mention")(self._on_mention)
        app.event("app_home_opened")(self._on_home)
        app.action(blocks.ACTION_FIXED)(self._on_feedback)
        app.action(blocks.ACTION_NOT_IT)(self._on_feedback)
        app.action(blocks.ACTION_RUN_CHECK)(self._on_run_check)
        app.action(blocks.ACTION_CANDIDATES)(self._on_candidates)
        app.action(blocks.ACTION_SHOW_ENTRY)(self._on_show_entry)
        app.action(blocks.ACTION_FEEDBACK)(self._on_feedback_buttons)
        app.action(blocks.ACTION_ESCALATE)(self._on_escalate)
        app.view(blocks.FEEDBACK_VIEW)(self._on_feedback_reason)
        app.shortcut(DIAGNOSE_SHORTCUT)(self._on_diagnose)
        slash.register(app, self.service)
        self.curation.register(app)
        app.error(self._on_error)

    def _on_error(self, error: Exception, body: dict) -> None:
        """What a listener or middleware raised: bolt has caught it (the process and the other events carry
        on); log it once, with the event and a redacted traceback (a paste may hold a key)."""
        body = body if isinstance(body, dict) else {}
        event = body.get("event") if isinstance(body.get("event"), dict) else {}
        kind = event.get("type") or body.get("type") or "request"
        trace, _ = redact("".join(traceback.format_exception(error)))
        log.error("handling %s %s failed: %s", kind, body.get("event_id") or "-", trace.rstrip())

    def wait_for_events(self, count: int, timeout: float) -> bool:
        """Block until `count` listener runs have finished (or `timeout` passes)."""
        with self._done:
            return self._done.wait_for(lambda: self.events_done >= count, timeout)

    def _finished(self) -> None:
        with self._done:
            self.events_done += 1
            self._done.notify_all()

    # -- messages -------------------------------------------------------------------------

    def _on_message(self, body, context, client) -> None:
        self._on_event("message", body, context, client)

    def _on_mention(self, body, context, client) -> None:
        self._on_event("app_mention", body, context, client)

    def _on_event(self, event_type: str, body: dict, context, client: WebClient) -> None:
        start = time.perf_counter()
        try:
            incoming, why = classify(
                body.get("event") or {},
                event_type=event_type,
                event_id=body.get("event_id"),
                bot_user_id=context.bot_user_id,
                bot_id=context.bot_id,
            )
            if incoming is None:
                log.debug(
                    "ignored %s event %s: %s",
                    event_type,
                    body.get("event_id"),
                    why,
                    extra={"event_id": body.get("event_id"), "ms": _ms(start)},
                )
                return
            job = context.get("job")
            if job is None:
                log.info(
                    "event %s already handled (a Slack retry, or the other event of a mention)",
                    incoming.event_id,
                    extra={"event_id": incoming.event_id, "ms": _ms(start)},
                )
                return
            self.work.run(job, lambda job: self._answer(incoming, client, start, context, job=job))
        finally:
            self._finished()

    # -- durable work (bot.durable): the three hooks ------------------------------------------

    def _admit(self, req: BoltRequest, body: dict, context, next) -> BoltResponse | None:
        """Before Slack gets its ack: a message worth considering becomes a pending job (bot.durable)."""
        event = body.get("event") if body.get("type") == "event_callback" else None
        if isinstance(event, dict) and event.get("type") in ("message", "app_mention"):
            if self._defer_retry(req):
                return BoltResponse(status=503, body="")
            self._bot_ids = (context.bot_user_id, context.bot_id)
            try:
                incoming, _ = classify(
                    event,
                    event_type=event["type"],
                    event_id=body.get("event_id"),
                    bot_user_id=context.bot_user_id,
                    bot_id=context.bot_id,
                )
            except Exception:  # a payload the listener cannot handle either: it fails there, logged once
                incoming = None
            if incoming is not None:
                # None: already claimed (a Slack retry, or the other event of a mention)
                context["job"] = self.work.admit(incoming)
        next()

    def _defer_retry(self, req: BoltRequest) -> bool:
        """A Slack retry while the shared store is unreachable: this replica cannot tell whether another one
        already answered it, so ask Slack to try again later (when the claims are back), except on its last try,
        which is answered from memory rather than lost."""
        retry = (req.headers.get("x-slack-retry-num") or [""])[0]
        state = self.service.state
        if not retry.isdigit() or not 0 < int(retry) < LAST_SLACK_RETRY:
            return False
        if state is None or not state.shared or state.persistent:
            return False
        log.warning("state store unreachable: Slack retry %s of an event deferred (503) so it is answered once", retry)
        return True

    def _resume(self, job: PendingJob) -> bool:
        """A job taken over from a process that died (or a retry): answered like a fresh event."""
        if self._bot_ids is None:
            auth = self.app.client.auth_test()
            self._bot_ids = (auth.get("user_id"), auth.get("bot_id"))
        ids = dict(zip(("bot_user_id", "bot_id"), self._bot_ids, strict=True))
        context = type("ResumeContext", (), ids)()
        return self._answer(incoming_of(job), self.app.client, time.perf_counter(), context, job=job)

    # -- answering --------------------------------------------------------------------------

    def _answer(
        self, incoming: Incoming, client: WebClient, start: float, context, respond=None, job: PendingJob | None = None
    ) -> bool:
        """Warn about secrets, answer, note the answer. With a durable `job` (events), the job is the claim, so
        the service does not claim again, and the result says whether the job is done (False: retry later)."""
        ctx = incoming.context()
        if job is not None:
            ctx = dataclasses.replace(ctx, deduplicated=True)

        def more() -> str:  # the thread's first message and text snippets; fetched once, after dedupe
            return self.fetcher.extra_text(client, incoming, bot_user_id=context.bot_user_id, bot_id=context.bot_id)

        answer = self.service.answer(incoming.text, ctx, more=more)
        done = True
        secrets = list(answer.result.secret_kinds) if answer.warn_secret and answer.result is not None else []
        if job is not None:  # a resumed job's text is redacted: the kinds were kept in the job
            secrets = list(answer.result.secret_kinds if answer.result else []) or job.secrets
            secrets = secrets if secrets and self.service.warning_once(ctx) else []
        if secrets:
            warned = incoming.author or incoming.user  # the one who posted the secret
            sent = self._post_ephemeral(client, incoming, blocks.secret_warning(secrets), user=warned)
            if sent is not True and job is not None:
                self.service.warning_failed(ctx)  # sent again when the job is retried
                done = False
        if incoming.trigger is Trigger.SHORTCUT and answer.action != "answer" and respond is not None:
            why = "I already answered this message in its thread." if answer.why == "already answered" else ""
            respond(response_type="ephemeral", replace_original=False, text=why or "Nothing to diagnose here.")
            return done
        if answer.action == "help":
            help_message = blocks.reply_message(self.service.run_command("help", None, ctx), self.kb)
            return self._reply(client, incoming, help_message, job)[1] and done
        if answer.action != "answer" or answer.result is None:
            log.info(
                "no answer to %s event %s: %s",
                incoming.trigger.value,
                incoming.event_id,
                answer.why,
                extra={"event_id": incoming.event_id, "ms": _ms(start)},
            )
            return done
        result, top = answer.result, answer.result.top
        message = blocks.answer_message(result, self.kb, escalate=bool(self.settings.oncall_group))
        if incoming.private:
            posted, finished, new = self._post_ephemeral(client, incoming, message), True, True
        else:
            posted, finished, new = self._reply(client, incoming, message, job)
        done = done and finished
        if posted is False and respond is not None:
            # Not a member of the channel (a shortcut works everywhere): answer the person privately instead.
            respond(response_type="ephemeral", replace_original=False, **message.kwargs())
        if isinstance(posted, str):  # a message in the thread: a ✅, 👎 or click on it is resolved through it
            self.service.curation.note_answer(
                answer.text or incoming.text,
                result,
                channel=incoming.channel,
                ts=posted,
                paste_ts=incoming.ts,
                thread_ts=incoming.reply_thread,
                poster=incoming.user,
            )
        if posted not in (False, None) and new:  # said only once Slack confirmed this post
            ms = _ms(start)
            log.info(
                "answered %s event %s: %s (%.2f, confident=%s) in %.0f ms",
                incoming.trigger.value,
                incoming.event_id,
                top.id if top else "-",
                top.score if top else 0.0,
                result.confident,
                ms,
                extra={"event_id": incoming.event_id, "ms": ms, "entry_id": top.id if top else None},
            )
        return done

    def _reply(
        self, client: WebClient, incoming: Incoming, message: blocks.SlackMessage, job: PendingJob | None
    ) -> tuple[str | bool | None, bool, bool]:
        """Post in the message's thread: (as `_post`, whether the job is done, whether this call posted it).
        With a job, at most once across attempts and processes (bot.durable: metadata, then a look-up)."""
        if job is None:
            return self._post(client, incoming, message), True, True
        posted, ts = self.work.post_once(
            client,
            job,
            channel=incoming.channel,
            thread_ts=incoming.reply_thread,
            unfurl_links=False,
            unfurl_media=False,
            **message.kwargs(),
        )
        if posted is Posted.RETRY:
            return None, False, False
        if posted is Posted.FAILED:
            return False, True, False
        return ts or True, True, posted is Posted.NEW

    def _post(self, client: WebClient, incoming: Incoming, message: blocks.SlackMessage) -> str | bool | None:
        """Post in the message's thread: the posted message's ts when posted (True if Slack gave none); False
        when Slack refused it; None when it may have been posted (never repeat)."""
        try:
            response = client.chat_postMessage(
                channel=incoming.channel,
                thread_ts=incoming.reply_thread,
                unfurl_links=False,
                unfurl_media=False,
                **message.kwargs(),
            )
            return response.get("ts") or True
        except SlackApiError as exc:  # after the retries SlackRetryHandler allows
            log.error(
                "chat.postMessage to %s failed (HTTP %s): %s; reply not posted",
                incoming.channel,
                exc.response.status_code,
                exc.response.get("error"),
            )
            return False
        except (OSError, HTTPException) as exc:  # no answer in time, or the connection dropped
            log.error(
                "chat.postMessage to %s: %s before Slack answered; not retried (Slack may have posted it)",
                incoming.channel,
                type(exc).__name__,
            )
            return None

    def _post_ephemeral(
        self, client: WebClient, incoming: Incoming, message: blocks.SlackMessage, *, user: str | None = None
    ) -> bool | None:
        """As `_post`: True when posted, False when refused, None when it may have been posted."""
        thread = incoming.reply_thread if incoming.trigger is Trigger.SHORTCUT else incoming.thread_ts
        try:
            client.chat_postEphemeral(
                channel=incoming.channel, user=user or incoming.user, thread_ts=thread, **message.kwargs()
            )
            return True
        except SlackApiError as exc:
            log.error("chat.postEphemeral to %s failed: %s", incoming.channel, exc.response.get("error"))
            return False
        except (OSError, HTTPException) as exc:
            log.error("chat.postEphemeral to %s: %s; not retried", incoming.channel, type(exc).__name__)
            return None

    # -- App Home -------------------------------------------------------------------------

    def _on_home(self, event, client) -> None:
        try:
            if event.get("tab", "home") != "home" or not event.get("user"):
                return
            self.curation.publish_home(event["user"], client)  # the queue too, for a maintainer
        finally:
            self._finished()

    # -- buttons --------------------------------------------------------------------------

    def _reply_to_click(self, body: dict, client: WebClient, respond, message: blocks.SlackMessage) -> None:
        """An ephemeral answer to whoever clicked, in the clicked message's thread."""
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        clicked = body.get("message") or {}
        if container.get("is_ephemeral") or not channel:
            respond(response_type="ephemeral", replace_original=False, **message.kwargs())
            return
        try:
            client.chat_postEphemeral(
                channel=channel,
                user=body["user"]["id"],
                thread_ts=clicked.get("thread_ts") or clicked.get("ts"),
                **message.kwargs(),
            )
        except SlackApiError as exc:
            log.error("chat.postEphemeral to %s failed: %s", channel, exc.response.get("error"))

    def _on_feedback(self, ack, body, action, client, respond) -> None:
        ack()
        try:
            verdict = blocks.VERDICTS[action["action_id"]]
            value = _value(action)
            user = body["user"]["id"]
            container = body.get("container") or {}
            channel = (body.get("channel") or {}).get("id") or container.get("channel_id") or ""
            clicked = body.get("message") or {}
            ts = clicked.get("ts") or container.get("message_ts") or ""
            entry_id = str(value.get("e") or "")
            self.service.record_feedback(
                user=user, channel=channel, message_ts=ts, entry_id=entry_id, verdict=verdict, confidence=value.get("c")
            )
            updated = blocks.feedback_acknowledged(
                clicked.get("blocks") or [], user=user, verdict=verdict, entry_id=entry_id
            )
            text = clicked.get("text") or "Gemini error answer"
            if container.get("is_ephemeral") or not (channel and ts):
                respond(replace_original=True, text=text, blocks=updated)
            else:
                try:
                    client.chat_update(channel=channel, ts=ts, text=text, blocks=updated)
                except SlackApiError as exc:
                    log.error("chat.update failed: %s", exc.response.get("error"))
            log.info("feedback %s on %s from an answer in %s", verdict, entry_id or "?", channel)
        finally:
            self._finished()

    def _on_run_check(self, ack, body, action, client, respond) -> None:
        ack()
        try:
            value = _value(action)
            user = body["user"]["id"]
            reply = self.service.run_check(
                str(value.get("k")), model=value.get("m"), user=user, ctx=Context("button", user=user)
            )
            if reply is not None:
                self._reply_to_click(body, client, respond, blocks.reply_message(reply, self.kb))
        finally:
            self._finished()

    def _on_candidates(self, ack, body, action, client, respond) -> None:
        ack()
        try:
            pairs = []
            for item in _value(action).get("o") or []:
                if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str):
                    pairs.append((item[0], float(item[1]) if isinstance(item[1], int | float) else 0.0))
            self._reply_to_click(body, client, respond, blocks.candidates_message(pairs, self.kb))
        finally:
            self._finished()

    def _on_show_entry(self, ack, body, action, client, respond) -> None:
        ack()
        try:
            entry = self.kb.entry(str(action.get("value") or ""))
            message = blocks.entry_message(entry) if entry else blocks.notice_message("That entry no longer exists.")
            self._reply_to_click(body, client, respond, message)
        finally:
            self._finished()

    # -- "Diagnose this error", 👍/👎 with reasons, escalation -----------------------------------------

    def _on_diagnose(self, ack, body, context, client, respond) -> None:
        """The message shortcut: answer that message as if it had been pasted to the bot (ack first: 3 s)."""
        ack()
        try:
            user = (body.get("user") or {}).get("id") or ""
            incoming, why = from_shortcut(body, private=bool(user) and self.service.answers_privately(user))
            if incoming is None:
                log.info("shortcut ignored: %s", why)
                return
            self._answer(incoming, client, time.perf_counter(), context, respond)
        finally:
            self._finished()

    @staticmethod
    def _clicked(body: dict) -> tuple[str, str, str | None]:
        """(channel, ts, thread ts) of the message a button is on."""
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id") or ""
        clicked = body.get("message") or {}
        ts = clicked.get("ts") or container.get("message_ts") or ""
        return channel, ts, clicked.get("thread_ts") or container.get("thread_ts")

    def _on_feedback_buttons(self, ack, body, action, client) -> None:
        """👍 records "helpful"; 👎 records "not it" (which queues the answer as a miss, like the legacy "Not it"
        button still on older answers) and opens the form asking why."""
        ack()
        try:
            value = _value(action)
            user = body["user"]["id"]
            channel, ts, _ = self._clicked(body)
            entry_id, up = str(value.get("e") or blocks.NO_ENTRY), value.get("v") == "up"
            verdict = "helpful" if up else "not_it"
            self.service.record_feedback(
                user=user, channel=channel, message_ts=ts, entry_id=entry_id, verdict=verdict, confidence=value.get("c")
            )
            if up or not body.get("trigger_id"):
                return
            metadata = json.dumps({"ch": channel, "ts": ts, "e": entry_id}, separators=(",", ":"))
            try:
                client.views_open(
                    trigger_id=body["trigger_id"],
                    view=blocks.feedback_view(self.kb, entry_id=entry_id, metadata=metadata),
                )
            except SlackApiError as exc:
                log.error("views.open failed: %s", exc.response.get("error"))
        finally:
            self._finished()

    def _on_feedback_reason(self, ack, body, view) -> None:
        """The 👎 form: stored (the note redacted) through the answer service, which adds it to the answer's miss."""
        values = (view.get("state") or {}).get("values") or {}

        def picked(block: str) -> str | None:
            field = (values.get(block) or {}).get(block) or {}
            option = field.get("selected_option") if isinstance(field, dict) else None
            return str(option.get("value")) if isinstance(option, dict) else None

        reason = picked("reason")
        if reason is None:
            ack(response_action="errors", errors={"reason": "Pick a reason."})
            self._finished()
            return
        ack()
        try:
            try:
                meta = json.loads(view.get("private_metadata") or "{}")
            except ValueError:
                meta = {}
            meta = meta if isinstance(meta, dict) else {}
            note = ((values.get("note") or {}).get("note") or {}).get("value")
            stored = self.service.record_feedback_reason(
                user=body["user"]["id"],
                channel=str(meta.get("ch") or ""),
                message_ts=str(meta.get("ts") or ""),
                entry_id=str(meta.get("e") or ""),
                reason=reason,
                actual_entry_id=picked("family"),
                note=note if isinstance(note, str) else None,
            )
            log.info("feedback reason %s on %s: %s", reason, meta.get("e"), "stored" if stored else "refused")
        finally:
            self._finished()

    def _on_escalate(self, ack, body, action, client, respond) -> None:
        """Mention the on-call group in the answer's thread, once per answer whoever and however often clicks."""
        ack()
        try:
            user = body["user"]["id"]
            channel, ts, thread = self._clicked(body)
            group = self.settings.oncall_group
            if not group or not (channel and ts):
                message = blocks.notice_message("No on-call group is set up (GEMINI_KB_ONCALL_GROUP).")
                self._reply_to_click(body, client, respond, message)
                return
            if not self.service.claim_escalation(channel, ts):
                self._reply_to_click(body, client, respond, blocks.notice_message("On-call was already asked."))
                return
            page = blocks.escalation_message(group, user, str(_value(action).get("e") or ""), self.kb)
            try:
                client.chat_postMessage(channel=channel, thread_ts=thread or ts, **page.kwargs())
            except SlackApiError as exc:
                log.error("escalation to %s failed: %s", channel, exc.response.get("error"))
        finally:
            self._finished()

    def close(self, *, drain_s: float = DRAIN_S) -> bool:
        """Stop taking work and give the jobs in flight up to `drain_s` to finish; the rest stay pending
        for the next process. True when everything finished."""
        self._listeners.shutdown(wait=False)
        drained = self.work.drain(drain_s)
        self._listeners.shutdown(wait=False, cancel_futures=True)
        self.curation.close()
        self.checker.close()
        return drained


def build_app(
    settings: BotSettings, kb: KnowledgeBase, state: StateBase, *, slack_api_url: str | None = None
) -> GeminiBot:
    """The bot for `settings`; `slack_api_url` overrides SLACK_API_URL (tests, proxies)."""
    return GeminiBot(kb=kb, state=state, settings=settings, client=web_client(settings, api_url=slack_api_url))
