"""Durable work: an acknowledged Slack message is answered once, even when the process dies.

Slack never resends an event it got a 200 (or a Socket Mode ack) for, so the work must be on disk before
the ack. The answer flow calls this layer at three points:

- before the ack, `admit` claims the message and stores it as a pending job (redacted text, the kinds of
  secret it held) in the state store (`bot.state_contract`);
- when posting, `post_once` posts with the job key in the message metadata and records the Slack `ts`; a
  job that may already have been posted (a second attempt) first looks for that message in Slack's
  history, so a post that may have happened is never repeated blindly;
- at start-up and every `SWEEP_S`, the sweeper takes over jobs whose lease ran out (a process that died,
  or a post that failed and is worth retrying); at shutdown `drain` waits for the jobs in flight and
  releases the rest so the next process resumes them at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from http.client import HTTPException
from urllib.error import HTTPError, URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack_events import Incoming, Trigger
from bot.state_contract import PendingJob, StateStore
from kb.redact import redact

log = logging.getLogger(__name__)

LEASE_S = 10.0  # a job not renewed for this long belongs to a dead process (or waits for a retry)
SWEEP_S = 2.0  # how often leases are renewed and expired jobs taken over
DRAIN_S = 8.0  # SIGTERM: how long jobs in flight may finish (Docker's default grace is 10 s)
AMBIGUOUS_HOLD_S = 20.0  # after a timeout or 5xx, wait this much longer before looking: a post may be in transit
MAX_ATTEMPTS = 5  # then the job is given up, with an error in the log
METADATA_TYPE = "gemini_kb_answer"  # message metadata event_type carrying the job key
HISTORY_LIMIT = 200
# chat.postMessage errors that no retry can fix
PERMANENT_ERRORS = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "msg_too_long", "no_text", "invalid_blocks",
     "invalid_auth", "account_inactive", "token_revoked", "missing_scope", "restricted_action", "thread_not_found"}
)  # fmt: skip


def job_key(channel: str, ts: str) -> str:
    """One job per Slack message: a retry and the second event of a mention (app_mention + message) share it."""
    return f"job:{channel}:{ts}"


def job_for(incoming: Incoming) -> PendingJob:
    """The pending job for a message; the stored text is redacted (only the kinds of secret are kept)."""
    text, kinds = redact(incoming.text)
    return PendingJob(
        key=job_key(incoming.channel, incoming.ts),
        kind="message",
        channel=incoming.channel,
        thread_ts=incoming.thread_ts,
        user=incoming.user,
        text=text,
        secrets=kinds,
        payload={
            "trigger": incoming.trigger.value,
            "ts": incoming.ts,
            "event_id": incoming.event_id,
            "files": [dict(f) for f in incoming.files],  # a long paste shared as a snippet is fetched on resume
        },
        created_at=time.time(),
    )


def incoming_of(job: PendingJob) -> Incoming:
    """The message a job was made from (its text redacted)."""
    p = job.payload
    files = p.get("files")
    return Incoming(
        Trigger(str(p["trigger"])),
        job.text,
        job.user or "",
        job.channel,
        str(p["ts"]),
        job.thread_ts,
        p.get("event_id"),  # type: ignore[arg-type]
        files=tuple(f for f in files if isinstance(f, dict)) if isinstance(files, list) else (),
    )


class Posted(Enum):
    """What `post_once` achieved."""

    NEW = "new"  # posted now
    FOUND = "found"  # an earlier attempt had posted it
    RETRY = "retry"  # not posted (or unknown): try again later
    FAILED = "failed"  # Slack refused for good


@dataclass
class _Flight:
    job: PendingJob
    ambiguous: bool = False  # a post of this job may have reached Slack


class DurableWork:
    """Pending jobs of one process: admit, run, post once, sweep, drain."""

    def __init__(self, state: StateStore, *, owner: str | None = None, lease_s: float | None = None):
        self.state = state
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_s = LEASE_S if lease_s is None else lease_s
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._resume: Callable[[PendingJob], bool] | None = None
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="resume")

    # -- before the ack ---------------------------------------------------------------------

    def admit(self, incoming: Incoming) -> PendingJob | None:
        """Store the message as a pending job; None when it was already claimed (a retry or a twin event)."""
        job = job_for(incoming)
        if not self.state.enqueue(job):
            return None
        with self._lock:
            self._flights[job.key] = _Flight(job)
        return job

    # -- running ------------------------------------------------------------------------------

    def run(self, job: PendingJob, work: Callable[[PendingJob], bool]) -> None:
        """Run `work` (True: done; False: leave pending, the sweeper retries it once its lease runs out)."""
        with self._lock:
            self._flights.setdefault(job.key, _Flight(job))
        done = True
        try:
            done = work(job)
        finally:  # a bug in `work` will not fix itself on a retry: the job ends (the error is logged by bolt)
            with self._lock:
                flight = self._flights.pop(job.key, None)
                self._lock.notify_all()
            if done:
                self.state.finish(job.key)
            elif flight is not None and flight.ambiguous:
                self.state.renew([job.key], at=time.time() + AMBIGUOUS_HOLD_S)

    def post_once(self, client: WebClient, job: PendingJob, **kwargs: object) -> tuple[Posted, str | None]:
        """chat.postMessage for `job`, at most once: (what happened, the message ts)."""
        with self._lock:
            flight = self._flights.get(job.key)
            ambiguous = flight.ambiguous if flight else False
        if job.posted_ts:
            return Posted.FOUND, job.posted_ts
        channel = str(kwargs.get("channel") or job.channel)
        if job.attempts > 0 or ambiguous:  # a crash, a timeout or a 5xx may have let an earlier post through
            try:
                ts = self.find_posted(client, job, thread_ts=kwargs.get("thread_ts"))  # type: ignore[arg-type]
            except SlackApiError as exc:
                if exc.response.get("error") == "thread_not_found":  # gone: whether it holds a reply is unknowable
                    log.error("job %s: the thread is gone; not posting again (the reply may be there)", job.key)
                    return Posted.FAILED, None
                log.warning("job %s: could not look for an earlier reply (%s); trying again later", job.key, exc)
                return Posted.RETRY, None
            except (OSError, HTTPException) as exc:
                log.warning("job %s: could not look for an earlier reply (%s); trying again later", job.key, exc)
                return Posted.RETRY, None
            if ts:
                self.state.mark_posted(job.key, ts)
                log.info("job %s: the reply was already posted (%s); not posting again", job.key, ts)
                return Posted.FOUND, ts
        metadata = {"event_type": METADATA_TYPE, "event_payload": {"job": job.key}}
        try:
            response = client.chat_postMessage(metadata=metadata, **kwargs)  # type: ignore[arg-type]
        except SlackApiError as exc:  # after the retries SlackRetryHandler allows
            status, error = exc.response.status_code, exc.response.get("error")
            if error in PERMANENT_ERRORS:
                log.error("chat.postMessage to %s failed: %s; reply not posted", channel, error)
                return Posted.FAILED, None
            self._ambiguous(job, status >= 500 and status != 503)
            log.error(
                "chat.postMessage to %s failed (HTTP %s): %s; reply not posted (job %s is retried later)",
                channel,
                status,
                error,
                job.key,
            )
            return Posted.RETRY, None
        except (OSError, HTTPException) as exc:
            refused = isinstance(exc, URLError) and not isinstance(exc, HTTPError)  # nothing reached Slack
            self._ambiguous(job, not refused)
            log.error(
                "chat.postMessage to %s: %s before Slack answered; not retried until Slack's history shows "
                "it missing (job %s)",
                channel,
                type(exc).__name__,
                job.key,
            )
            return Posted.RETRY, None
        ts = str(response.get("ts") or "")
        self.state.mark_posted(job.key, ts)
        return Posted.NEW, ts

    def _ambiguous(self, job: PendingJob, value: bool) -> None:
        with self._lock:
            flight = self._flights.get(job.key)
            if flight is not None and value:
                flight.ambiguous = True

    def find_posted(self, client: WebClient, job: PendingJob, *, thread_ts: str | None) -> str | None:
        """The ts of a bot message carrying this job's key in its metadata, or None (Slack's history says)."""
        ts = str(job.payload.get("ts") or "")
        if thread_ts:
            response = client.conversations_replies(
                channel=job.channel, ts=thread_ts, oldest=ts, include_all_metadata=True, limit=HISTORY_LIMIT
            )
        else:
            response = client.conversations_history(
                channel=job.channel, oldest=ts, include_all_metadata=True, limit=HISTORY_LIMIT
            )
        for message in response.get("messages") or []:
            meta = message.get("metadata") or {}
            if meta.get("event_type") == METADATA_TYPE and (meta.get("event_payload") or {}).get("job") == job.key:
                return str(message.get("ts"))
        return None

    # -- sweeping, start-up and shutdown --------------------------------------------------------

    def start(self, resume: Callable[[PendingJob], bool]) -> DurableWork:
        """Take over expired jobs now and every `SWEEP_S`; `resume` answers one taken-over job."""
        self._resume = resume
        self._sweeper = threading.Thread(target=self._sweep_forever, name="durable-sweeper", daemon=True)
        self._sweeper.start()
        return self

    def _sweep_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.sweep()
            except Exception:  # the sweeper must outlive a bad row or a broken database
                log.exception("durable work: sweep failed")
            self._stop.wait(SWEEP_S)

    def sweep(self) -> int:
        """Renew the leases of jobs in flight, take over expired ones; how many were taken."""
        with self._lock:
            mine = list(self._flights)
        if mine:
            self.state.renew(mine)
        taken = self.state.take_over(owner=self.owner, older_than=self.lease_s, limit=50)
        for job in taken:
            if job.attempts > MAX_ATTEMPTS:
                log.error("job %s: given up after %d attempts; the message stays unanswered", job.key, job.attempts)
                self.state.finish(job.key)
                continue
            with self._lock:
                if job.key in self._flights:  # still running here (a lease that lapsed under load)
                    continue
                self._flights[job.key] = _Flight(job)
            log.info("job %s: taken over (attempt %d)", job.key, job.attempts)
            self._pool.submit(self._run_taken, job)
        return len(taken)

    def _run_taken(self, job: PendingJob) -> None:
        assert self._resume is not None
        try:
            self.run(job, self._resume)
        except Exception:
            log.exception("job %s: resuming failed", job.key)

    def in_flight(self) -> int:
        with self._lock:
            return len(self._flights)

    def drain(self, timeout: float = DRAIN_S) -> bool:
        """Stop sweeping, wait up to `timeout` for jobs in flight; release the rest. True when all finished."""
        self._stop.set()
        with self._lock:
            drained = self._lock.wait_for(lambda: not self._flights, timeout)
            left = list(self._flights)
        if left:
            self.state.release(left)
            log.warning("shutdown: %d jobs still running; released for the next process", len(left))
        self._pool.shutdown(wait=False, cancel_futures=True)
        return drained
