"""Every check, declared once: its name, argument, help, runner and the families it explains.

The CLI (`gemini-kb check`), `/gemini-check`, the help texts, the answer buttons and the renderers all
read `CHECKS`; a new check is one module with its runner plus one `CheckSpec` here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bot.checks.result import CheckResult
from kb.store import KnowledgeBase

Arg = Literal["key", "base_url", "model"]


@dataclass(frozen=True)
class CheckRun:
    """What a runner gets: the vetted inputs and, for checks that need a key, the shared client session."""

    key: str | None
    base_url: str
    model: str | None
    timeout: float
    deep: bool
    kb: KnowledgeBase | None
    allow_private: bool
    session: object | None = None  # bot.checks.key.KeySession for checks with needs_key


@dataclass(frozen=True)
class CheckSpec:
    """One check."""

    name: str  # the word on the command line and in /gemini-check
    title: str  # "API key"
    arg: Arg | None  # what the optional word after the name is
    arg_name: str  # KEY | URL | NAME, for usage lines
    arg_required: bool
    help: str  # one line, for /gemini-check help and the CLI
    run: Callable[[CheckRun], list[CheckResult]]
    needs_key: bool  # runs with the shared google-genai session (after the key check, when both run)
    calls: int  # network steps, each bounded by the timeout: the run's budget
    arg_help: str = ""  # what a missing required argument is, for the usage message
    families: frozenset[str] = frozenset()  # entry ids whose answer offers this check as a button
    statuses: frozenset[int] = frozenset()  # HTTP statuses whose entries offer it too
    prefixes: tuple[str, ...] = ()  # entry-id prefixes that offer it too
    default: bool = False  # part of a bare `/gemini-check`
    button: str = ""  # button label; "{model}" is filled from the paste
    needs_model_in_paste: bool = False  # the button only makes sense with a model named in the paste

    @property
    def usage(self) -> str:
        if self.arg is None:
            return self.name
        return f"{self.name} {self.arg_name}" if self.arg_required else f"{self.name} [{self.arg_name}]"


def _endpoint(run: CheckRun) -> list[CheckResult]:
    from bot.checks.endpoint import check_endpoint

    return check_endpoint(run.base_url, timeout=run.timeout, kb=run.kb, allow_private=run.allow_private)


def _key(run: CheckRun) -> list[CheckResult]:
    from bot.checks.key import check_key

    return [check_key(run.session, run.kb)]  # type: ignore[arg-type]


def _model(run: CheckRun) -> list[CheckResult]:
    from bot.checks.model import check_model

    if not (run.model or "").strip():
        return [CheckResult("model", False, None, "no model name given (e.g. gemini-2.5-flash)")]
    return check_model(run.model or "", run.session, run.kb, deep=run.deep)  # type: ignore[arg-type]


def _models(run: CheckRun) -> list[CheckResult]:
    from bot.checks.models import check_models

    return [check_models(run.session, run.kb)]  # type: ignore[arg-type]


CHECKS: dict[str, CheckSpec] = {
    spec.name: spec
    for spec in (
        CheckSpec(
            name="key",
            title="API key",
            arg="key",
            arg_name="KEY",
            arg_required=False,
            help="list models with the team key, or with KEY (used once, never stored, shown masked)",
            run=_key,
            needs_key=True,
            calls=2,
            families=frozenset(
                {"unauthenticated", "permission-denied", "service-disabled", "billing-required", "location-unsupported"}
            ),
            statuses=frozenset({401, 403}),
            prefixes=("api-key",),
            default=True,
            button="Run key check",
        ),
        CheckSpec(
            name="endpoint",
            title="Endpoint",
            arg="base_url",
            arg_name="URL",
            arg_required=False,
            help="DNS, TCP, TLS and HTTP to the API (or to URL), with timings and proxy",
            run=_endpoint,
            needs_key=False,
            calls=5,  # dns, tcp, tunnel, tls, http
            families=frozenset({"dns-or-connect-failure", "tls-or-proxy-error", "connection-reset", "client-timeout"}),
            default=True,
            button="Run endpoint check",
        ),
        CheckSpec(
            name="model",
            title="Model",
            arg="model",
            arg_name="NAME",
            arg_required=True,
            arg_help="one model name, e.g. gemini-2.5-flash",
            help="the model's methods and token limits; on 404 the closest names",
            run=_model,
            needs_key=True,
            calls=3,  # get, count_tokens, and the list for suggestions on a 404
            families=frozenset({"model-not-found", "model-retired", "method-not-supported"}),
            button="Check model {model}",
            needs_model_in_paste=True,
        ),
        CheckSpec(
            name="models",
            title="Models",
            arg=None,
            arg_name="",
            arg_required=False,
            help="the models the API serves against the knowledge base's lifecycle table (retired, missing, new)",
            run=_models,
            needs_key=True,
            calls=2,  # ListModels, maybe two pages
        ),
    )
}


def spec(name: str) -> CheckSpec | None:
    return CHECKS.get(name)


def default_kinds() -> tuple[str, ...]:
    return tuple(n for n, s in CHECKS.items() if s.default)


def related_check(entry_id: str, http_status: int | None, *, model: str | None) -> CheckSpec | None:
    """The check an answer about this family offers as a button, if any."""
    for s in CHECKS.values():
        if entry_id in s.families or http_status in s.statuses or entry_id.startswith(s.prefixes or ("\0",)):
            if s.needs_model_in_paste and not model:
                return None
            return s
    return None


def budget(kinds: list[str] | tuple[str, ...], timeout: float, grace: float = 1.0) -> float:
    """The longest a run of `kinds` may take: the key-sharing checks run one after another, the others beside."""
    shared = sum(CHECKS[k].calls for k in kinds if CHECKS[k].needs_key)
    alone = max((CHECKS[k].calls for k in kinds if not CHECKS[k].needs_key), default=0)
    return timeout * max(shared, alone) + grace


def help_lines(command: str) -> list[str]:
    """One usage line per check, for the help texts."""
    return [f"• `{command} {s.usage}` — {s.help}" for s in CHECKS.values()]
