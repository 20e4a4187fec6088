"""The key check: list models with google-genai; a failure is explained by the knowledge base.

The key lives only in the client object for the duration of the check: it is never logged,
stored or put in a result (results carry `mask(key)`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx2
from google import genai
from google.genai import errors, types

from bot.checks.explain import failed, ms_since
from bot.checks.result import CheckResult
from kb.redact import mask
from kb.store import KnowledgeBase

API_VERSION = "v1beta"  # google-genai 3.x defaults to v1, where several models and fields are missing
PAGE_SIZE = 1000
MAX_MESSAGE = 240  # of the API's message in the detail line; the whole error is kept in data["error"]
MISSING_KEY_TEXT = (
    "google-genai: Missing key inputs argument! To use the Google AI API, provide (`api_key`) arguments. "
    "No API key was provided: GEMINI_API_KEY and GOOGLE_API_KEY are unset"
)
# What google-genai lets through from its HTTP layer: transport errors are not APIError.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx2.HTTPError, OSError)


@dataclass
class KeySession:
    """A google-genai client bound to one key and base URL, kept alive for the checks that share it."""

    key: str
    base_url: str
    timeout: float
    client: genai.Client = field(init=False, repr=False)
    models: list[types.Model] | None = None  # filled by the key check

    def __post_init__(self) -> None:
        self.client = make_client(self.key, self.base_url, self.timeout)

    @property
    def masked(self) -> str:
        return mask(self.key)

    def close(self) -> None:
        self.client.close()


def make_client(key: str, base_url: str, timeout: float) -> genai.Client:
    """A Gemini API client pinned to v1beta, with a timeout in milliseconds and no retries."""
    options = types.HttpOptions(base_url=base_url, api_version=API_VERSION, timeout=int(timeout * 1000))
    return genai.Client(api_key=key, vertexai=False, http_options=options)


def sdk_failure(
    name: str, call: str, exc: BaseException, kb: KnowledgeBase | None, *, start: float, key: str
) -> CheckResult:
    """A failed result for an exception raised by a google-genai call, explained by the matcher."""
    latency = ms_since(start, time.perf_counter())
    if isinstance(exc, errors.APIError):
        reasons = _reasons(exc)
        message = " ".join(str(exc.message or "").split())
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        detail = f"{exc.code} {exc.status}: {message}".strip()
        if reasons:
            detail += f" (reason {', '.join(reasons)})"
        data: dict[str, object] = {"code": exc.code, "status": exc.status, "reasons": reasons}
        retry = _retry_delay(exc)
        if retry:
            data["retry_delay"] = retry
            detail += f"; retry after {retry}"
        text = f"google-genai {call} raised {type(exc).__name__}: {exc}"
    else:
        detail = f"{type(exc).__name__}: {exc or 'no message'} (no answer from the API)"
        data = {"exception": type(exc).__name__}
        text = f"google-genai {call} raised {type(exc).__name__}: {exc}"
    return failed(name, detail, text, kb, latency_ms=latency, secrets=(key,), data=data)


def check_key(session: KeySession, kb: KnowledgeBase | None) -> CheckResult:
    """List the models the key can see; valid when the API answers the list."""
    start = time.perf_counter()
    try:
        models = list(session.client.models.list(config={"page_size": PAGE_SIZE}))
    except (errors.APIError, *TRANSPORT_ERRORS) as exc:
        return sdk_failure("key", "client.models.list()", exc, kb, start=start, key=session.key)
    session.models = models
    generate = [m for m in models if "generateContent" in (m.supported_actions or [])]
    return CheckResult(
        "key",
        True,
        ms_since(start, time.perf_counter()),
        f"valid: {session.masked} sees {len(models)} models ({len(generate)} can generateContent)",
        data={"key": session.masked, "models": len(models), "generate_models": len(generate)},
    )


def missing_key(kb: KnowledgeBase | None) -> CheckResult:
    """The result when no key was given or configured."""
    return failed("key", "no API key: pass one, or set GEMINI_API_KEY (or GOOGLE_API_KEY)", MISSING_KEY_TEXT, kb)


def _details(exc: errors.APIError) -> list[dict]:
    body = exc.details if isinstance(exc.details, dict) else {}
    error = body.get("error", body)
    found = error.get("details") if isinstance(error, dict) else None
    return [d for d in found or [] if isinstance(d, dict)]


def _reasons(exc: errors.APIError) -> list[str]:
    return [str(d["reason"]) for d in _details(exc) if d.get("reason")]


def _retry_delay(exc: errors.APIError) -> str | None:
    for detail in _details(exc):
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo") and detail.get("retryDelay"):
            return str(detail["retryDelay"])
    return None
