"""The model check: get one model's metadata; on 404 suggest the closest names the key can see."""

from __future__ import annotations

import re
import time

from google.genai import errors, types
from rapidfuzz import fuzz, process, utils

from bot.checks.explain import ms_since
from bot.checks.key import PAGE_SIZE, TRANSPORT_ERRORS, KeySession, sdk_failure
from bot.checks.result import CheckResult
from kb.redact import redact
from kb.store import KnowledgeBase

SUGGESTIONS = 3
SUGGESTION_CUTOFF = 60.0
PROBE_TEXT = "ping"


# What a model name is: lower-case words of letters and digits joined by `-` or `.` (gemini-2.5-flash,
# text-embedding-004), optionally `tunedModels/ID`. Anything else (`:generateContent#`, `?`, `/`, a key)
# never reaches the API: a `#` or `:` would change which method the SDK calls (generateContent spends quota).
_MODEL_NAME = re.compile(r"[a-z][a-z0-9]{0,19}(?:[.\-][a-z0-9]{1,20}){0,12}")
MAX_MODEL_NAME = 80
NOT_A_MODEL = "not a model name: give one such as gemini-2.5-flash (lower-case letters, digits, '-' and '.')"


def model_name(name: str | None) -> str | None:
    """`name` as the API knows it (`Models/Gemini-2.5-Flash` -> `gemini-2.5-flash`), or None when it is not a
    model name (it is then never sent, shown or stored)."""
    raw = (name or "").strip()
    prefix = ""
    if raw.lower().startswith("tunedmodels/"):
        prefix, raw = "tunedModels/", raw[len("tunedModels/") :]
    elif raw.lower().startswith("models/"):
        raw = raw[len("models/") :]
    raw = raw.lower()
    if len(raw) > MAX_MODEL_NAME or not _MODEL_NAME.fullmatch(raw) or redact(raw, strict=True)[1]:
        return None
    return prefix + raw


def short_name(name: str) -> str:
    """`models/gemini-2.5-flash` -> `gemini-2.5-flash`."""
    return name.strip().removeprefix("models/")


def closest_models(name: str, available: list[str], *, limit: int = SUGGESTIONS) -> list[str]:
    """The model names closest to `name` (lower-cased, `models/` dropped), best first."""
    choices = list(dict.fromkeys(short_name(n) for n in available))
    found = process.extract(
        short_name(name),
        choices,
        scorer=fuzz.WRatio,
        processor=utils.default_process,
        limit=limit,
        score_cutoff=SUGGESTION_CUTOFF,
    )
    return [choice for choice, _score, _index in found]


def check_model(name: str, session: KeySession, kb: KnowledgeBase | None, *, deep: bool) -> list[CheckResult]:
    """Get `name`; with `deep`, also count tokens on it (free) to prove the key may call it."""
    valid = model_name(name)
    if valid is None:
        return [CheckResult("model", False, 0.0, NOT_A_MODEL)]
    name = valid
    start = time.perf_counter()
    try:
        model = session.client.models.get(model=name)
    except (errors.APIError, *TRANSPORT_ERRORS) as exc:
        result = sdk_failure("model", f"client.models.get(model={name!r})", exc, kb, start=start, key=session.key)
        if isinstance(exc, errors.APIError) and exc.code == 404:
            _suggest(result, name, session)
        return [result]
    results = [_described(model, name, ms_since(start, time.perf_counter()))]
    if deep:
        results.append(_count_tokens(name, session, kb))
    return results


def _described(model: types.Model, name: str, latency: float) -> CheckResult:
    actions = list(model.supported_actions or [])
    limits = f"input {model.input_token_limit or '?'} / output {model.output_token_limit or '?'} tokens"
    detail = f"{model.display_name or name}: {', '.join(actions) or 'no methods listed'}; {limits}"
    data = {
        "model": short_name(model.name or name),
        "display_name": model.display_name,
        "supported_actions": actions,
        "input_token_limit": model.input_token_limit,
        "output_token_limit": model.output_token_limit,
    }
    return CheckResult("model", True, latency, detail, data=data)


def _suggest(result: CheckResult, name: str, session: KeySession) -> None:
    """Add the closest model names the key can see to a 404 result."""
    if session.models is None:
        try:
            session.models = list(session.client.models.list(config={"page_size": PAGE_SIZE}))
        except (errors.APIError, *TRANSPORT_ERRORS):
            result.detail += "; the model list is not available either"
            return
    names = [m.name for m in session.models if m.name]
    closest = closest_models(name, names)
    result.data["closest"] = closest
    if closest:
        result.detail += f"; did you mean {', '.join(closest)}?"
    else:
        result.detail += f"; none of the {len(names)} models the key sees has a similar name"


def _count_tokens(name: str, session: KeySession, kb: KnowledgeBase | None) -> CheckResult:
    start = time.perf_counter()
    try:
        counted = session.client.models.count_tokens(model=name, contents=PROBE_TEXT)
    except (errors.APIError, *TRANSPORT_ERRORS) as exc:
        return sdk_failure(
            "model.count_tokens", f"client.models.count_tokens(model={name!r})", exc, kb, start=start, key=session.key
        )
    return CheckResult(
        "model.count_tokens",
        True,
        ms_since(start, time.perf_counter()),
        f"the key can call {name}: count_tokens({PROBE_TEXT!r}) = {counted.total_tokens}",
        data={"total_tokens": counted.total_tokens},
    )
