"""What every state back end (SQLite, PostgreSQL) offers the answer service, beyond the records and claims.

Durable work: an event is written as pending before Slack gets its 200, marked posted (with the Slack `ts`)
as soon as a reply is posted, and finished afterwards. A replica that starts, or notices stale work, takes
pending jobs over atomically (one taker per job) and, when a job already has a `posted_ts`, does not post
again. Check budgets are one budget for the whole deployment, updated atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class PendingJob:
    """One piece of acknowledged work that must be finished even if this process dies."""

    key: str  # the dedupe key (event id or channel+ts); unique across the deployment
    kind: str  # "answer", "warn", "check", ... (what the answer service must do)
    channel: str
    thread_ts: str | None
    user: str | None
    text: str  # already redacted: a secret is never stored, only the fact that one was there
    secrets: list[str] = field(default_factory=list)  # kinds of secret found ("google-api-key", ...)
    payload: dict[str, object] = field(default_factory=dict)  # small extras the adapter needs to resume
    created_at: float = 0.0
    attempts: int = 0
    posted_ts: str | None = None  # set once a reply was posted: never post it again


class StateStore(Protocol):
    """The durable-work and budget part of the state interface (both back ends implement it)."""

    def enqueue(self, job: PendingJob) -> bool:
        """Claim `job.key` and store the job as pending, atomically; False when the key was already claimed."""

    def mark_posted(self, key: str, posted_ts: str) -> None:
        """Record that the reply for `key` was posted as message `posted_ts`."""

    def finish(self, key: str) -> None:
        """The job is done: nothing is left to resume."""

    def take_over(self, *, owner: str, older_than: float, limit: int = 100) -> list[PendingJob]:
        """Atomically take pending jobs whose lease is older than `older_than` seconds; each goes to one owner."""

    def pending_count(self) -> int:
        """How many jobs are pending (for health and drain)."""

    def renew(self, keys: list[str], *, at: float | None = None) -> None:
        """Extend the lease of jobs this process is working on, to now or to the later time `at`."""

    def release(self, keys: list[str]) -> None:
        """Give up the lease of unfinished jobs (shutdown), so that the next process takes them at once."""

    def take_check_budget(self, user: str, *, per_user: int, overall: int, window_s: float) -> tuple[bool, float]:
        """Spend one check from the user's and the deployment's budget; (allowed, seconds until allowed)."""
