"""Extract structured signals from a cleaned paste: status, reasons, classes, hosts, models.

Each extraction rule is named and declared in a table; every pattern is bounded
so hostile input cannot make it backtrack.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from kb.rules import Rule, rule

STATUS_CODES: dict[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
REASON_PHRASES: dict[str, int] = {
    "bad request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not found": 404,
    "payload too large": 413,
    "request entity too large": 413,
    "too many requests": 429,
    "client closed request": 499,
    "internal server error": 500,
    "bad gateway": 502,
    "service unavailable": 503,
    "gateway timeout": 504,
}

_STATUS_ALT = "|".join(sorted(STATUS_CODES, key=len, reverse=True))
_PHRASE_ALT = "|".join(p.replace(" ", r"\s") for p in REASON_PHRASES)


def _rule(name: str, pattern: str, flags: int = 0, hints: tuple[str, ...] = ()) -> Rule:
    return rule(name, pattern, flags=flags, hints=hints)


MODEL_HINTS = ("gemini", "gemma", "bison", "embedding", "imagen", "veo", "learnlm", "aqa")


HTTP_STATUS_RULES: tuple[Rule, ...] = (
    _rule("json_code", r"[\"']code[\"']\s{0,3}:\s{0,3}(\d{3})\b", hints=("code",)),
    _rule("http_line", r"\bHTTP/\d(?:\.\d)?\s{1,3}(\d{3})\b", hints=("http/",)),
    _rule("code_status", rf"\b([1-5]\d\d)\.?\s{{1,3}}(?:{_STATUS_ALT})\b"),
    _rule("code_phrase", rf"\b([1-5]\d\d)\s{{1,3}}(?:{_PHRASE_ALT})\b", re.IGNORECASE),
    _rule(
        "status_eq",
        r"\b(?:status(?:[ _]?code)?|http[ _]?status|code|error)\s{0,3}[=:]?\s{0,3}"
        r"(?:(?:of|is|was)\s{1,3})?\(?(\d{3})\b",
        re.IGNORECASE,
    ),
    _rule("bracket", r"\[(\d{3})\s[A-Za-z ]{2,40}\]", hints=("[",)),
    _rule("error_code", r"\b(?:Error|error code|status)\s(\d{3})\b", hints=("error", "status")),
    _rule("exception_code", r"\b[A-Z][A-Za-z]{2,60}:\s{1,3}(\d{3})\b"),
)
STATUS_NAME_RULE = _rule("status_name", rf"\b({_STATUS_ALT})\b")
GRPC_STATUS_RULE = _rule("grpc_status", rf"StatusCode\.({_STATUS_ALT})\b", hints=("statuscode.",))
REASON_RULES: tuple[Rule, ...] = (
    _rule("errorinfo_reason", r"[\"']?reason[\"']?\s{0,3}[:=]\s{0,3}[\"']?([A-Z][A-Z0-9_]{3,60})\b", hints=("reason",)),
)
FINISH_RULES: tuple[Rule, ...] = (
    _rule(
        "finish_reason",
        r"(?:finish_?reason|finishReason|block_?reason|blockReason)[\"']?\s{0,3}[:=]?\s{0,3}"
        r"[\"']?<?(?:(?:types\.)?(?:FinishReason|BlockedReason|BlockReason)\.)?([A-Z][A-Z_]{2,40})\b",
        re.IGNORECASE,
        hints=("finish", "block"),
    ),
)
EXCEPTION_RULE = _rule(
    "exception_class",
    r"\b([A-Z][A-Za-z0-9]{1,60}(?:Error|Exception|Exhausted|Unavailable|Timeout|Denied|Exceeded|"
    r"Failure|NotFound|Invalid|Cancelled|Refused|Reset|Unauthenticated|Argument))\b",
)
QUALIFIED_EXCEPTION_RULE = _rule(
    "qualified_exception",
    r"\b(?:[a-z_][a-z0-9_]{0,40}\.){1,6}([A-Z][A-Za-z0-9]{2,60})(?=:|\(|\s|$)",
)
QUOTA_RULES: tuple[Rule, ...] = (
    _rule("quota_id", r"[\"']?quota_?[iI]d[\"']?\s{0,3}[:=]\s{0,3}[\"']?([\w-]{3,120})", hints=("quota",)),
    _rule("quota_name", r"\b([A-Za-z]{2,60}Per(?:Minute|Day|Hour|Second)[A-Za-z-]{0,80})\b", hints=("per",)),
)
HOST_RULE = _rule(
    "host",
    r"\b((?:[a-z0-9-]{1,40}-)?(?:generativelanguage|aiplatform)\.googleapis\.com)\b",
    re.IGNORECASE,
    hints=("googleapis",),
)
MODEL_RULE = _rule(
    "model",
    r"(?<![\w-])((?:gemini|gemma|text-bison|chat-bison|text-embedding|embedding|imagen|veo|learnlm|aqa)"
    r"(?:-[a-z0-9.]{1,30}){0,8})(?![\w-])",
    re.IGNORECASE,
    hints=MODEL_HINTS,
)
API_VERSION_RULE = _rule(
    "api_version", r"(?:/|api[ _]version[\"']?\s{0,3}[:=]?\s{0,3}[\"']?)(v1(?:beta1?|alpha)?)\b", re.IGNORECASE, ("v1",)
)
# Evidence that a paste is about Gemini / Vertex AI at all (to abstain on the rest).
CONTEXT_RULE = _rule(
    "gemini_context",
    r"(gemini|generativelanguage|aiplatform\.googleapis|vertex\s?ai|vertexai|google[./]genai|google[./]generativeai|"
    r"google-genai|google-generativeai|@google/genai|@google/generative-ai|googlegenerativeai|generative-ai-go|"
    r"generate_?content|ai\.google\.dev|aistudio|ai studio|palm api|gemma|imagen|google import genai|genai\.Client|"
    r"GoogleGenAI|GenerativeModel|\bgenai\b|"
    # The shape of a Gemini response: its field names, and finish reasons no other vendor uses.
    r"\"?(?:finishReason|safetyRatings|promptFeedback|usageMetadata|candidatesTokenCount)\b|"
    r"(?:finish_?reason|block_?reason|stop reason)[\"'=:\s]{0,6}(?:\w{0,20}\.)?"
    r"(?:RECITATION|SAFETY|MALFORMED_FUNCTION_CALL|PROHIBITED_CONTENT|BLOCKLIST|SPII|IMAGE_SAFETY)\b|"
    r"\b(?:RECITATION|MALFORMED_FUNCTION_CALL|PROHIBITED_CONTENT|FINISH_REASON_\w{2,30})\b)",
    re.IGNORECASE,
)

# google.genai / Vertex FinishReason enum numbers, as printed by `Finish reason: 3.`
FINISH_REASON_NUMBERS: dict[str, str] = {
    "1": "STOP",
    "2": "MAX_TOKENS",
    "3": "SAFETY",
    "4": "RECITATION",
    "5": "OTHER",
    "6": "BLOCKLIST",
    "7": "PROHIBITED_CONTENT",
    "8": "SPII",
    "9": "MALFORMED_FUNCTION_CALL",
}
FINISH_NUMBER_RULE = _rule(
    "finish_reason_number", r"\bFinish reason:\s{0,3}(\d)\b", re.IGNORECASE, hints=("finish reason",)
)
ZERO_QUOTA_RULES: tuple[Rule, ...] = (
    _rule("limit_zero", r"\b(limit)\s{0,3}[:=]\s{0,3}0\b(?![.\d])", hints=("limit",)),
    _rule(
        "quota_value_zero",
        r"(quota_?[vV]alue|quota_limit_value)[\"']?\s{0,3}[:=]?\s{0,40}?(?:value:\s{0,3})?[\"']0[\"']",
        hints=("quota",),
    ),
)
# Another vendor or another Google service: a paste that names one and no Gemini is not ours.
FOREIGN_RULE = _rule(
    "foreign",
    r"\b(openai|anthropic|claude|bedrock|amazonaws|aws|azure|cohere|mistral|groq|perplexity|deepseek|ollama|"
    r"dashscope|qwen|moonshot|xai\.com|"
    r"(?:translate|maps|youtube|vision|speech|texttospeech|firestore|storage|bigquery|drive|sheets|gmail|"
    r"firebase|places|geocoding)\.googleapis\.com|"
    r"googleapis\.com/(?:drive|gmail|calendar|youtube|storage|bigquery|sheets|books|customsearch|oauth2/v\d/userinfo))\b",
    re.IGNORECASE,
    hints=(
        "openai",
        "anthropic",
        "claude",
        "bedrock",
        "amazonaws",
        "aws",
        "azure",
        "cohere",
        "mistral",
        "groq",
        "perplexity",
        "deepseek",
        "ollama",
        "dashscope",
        "qwen",
        "moonshot",
        "xai.com",
        "googleapis",
    ),
)
# Another Google API named as the service or host of the error (`"service": "language.googleapis.com"`):
# any googleapis.com host except those a Gemini or Vertex AI call goes through.
FOREIGN_GOOGLE_RULE = _rule(
    "foreign_google_service",
    r"(?<![\w.-])(?!(?:[\w-]{0,40}-)?(?:generativelanguage|aiplatform|oauth2|accounts|cloudcode-pa|daily-cloudcode-pa|"
    r"cloudaicompanion|type|serviceusage|cloudresourcemanager|iamcredentials|sts|www|content|firebasevertexai|"
    r"firebaseappcheck|firebaseml)\.googleapis\.com)([a-z][a-z0-9-]{1,40}\.googleapis\.com)\b",
    re.IGNORECASE,
    hints=("googleapis.com",),
)
# Hosts a paste names (URLs, `host='...'`): one that is not Google's and not local points at another service.
HOST_NAME_RULE = _rule(
    "host_name",
    r"(?:\b(?:https?|wss?)://|\bhost=[\"']?)([a-z0-9][a-z0-9.-]{1,100}\.[a-z]{2,12})\b",
    re.IGNORECASE,
    hints=("://", "host="),
)
OWN_HOST_RE = re.compile(
    r"(?:^|\.)(?:googleapis\.com|google\.com|google\.dev|ai\.dev|googleusercontent\.com|gstatic\.com|"
    r"withgoogle\.com|goo\.gl|localhost|local|internal\.invalid)$|^(?:\d{1,3}\.){3}\d{1,3}$",
    re.IGNORECASE,
)
# A Live API (BidiGenerateContent) WebSocket close: the code, and the reason text after it.
LIVE_CLOSE_RULES: tuple[Rule, ...] = (
    # websockets / SDK text: `received 1008 (policy violation) <reason>`, `code=1011, reason=...`
    _rule(
        "live_close_text",
        r"(?:received|sent|closed? with(?: code)?|close code|close frame|code[=:]|websocket error:?)\s{0,3}"
        r"(10(?:0[0-9]|1[0-5]))\b[ ,]{0,3}(?:\([a-z ]{2,40}\)|reason[=:]?)?\s{0,3}([^\n]{0,300})",
        re.IGNORECASE,
        hints=("100", "101"),
    ),
    # a close event as JSON: `"code":1011,"reason":"Deadline expired ..."`
    _rule(
        "live_close_json",
        r"\"code\"\s{0,3}:\s{0,3}(10(?:0[0-9]|1[0-5]))\s{0,3},\s{0,3}\"reason\"\s{0,3}:\s{0,3}\"([^\"\n]{0,300})",
        hints=('"reason"',),
    ),
    # google-genai's APIError for a Live close prints `{code} {status}. {message}` with no status:
    # `1008 None. <reason>`
    _rule(
        "live_close_apierror",
        r"(?<![\w.])(10(?:0[0-9]|1[0-5])) None\.\s{0,3}([^\n]{0,300})",
        hints=(" none.",),
    ),
    # in words: `disconnects with a 1011 error`
    _rule(
        "live_close_words",
        r"\b(?:a|the)\s(10(?:0[0-9]|1[0-5]))\s(?:error|close|code)\b()",
        re.IGNORECASE,
        hints=("100", "101"),
    ),
    # a relay's one-liner: `WebSocket closed during setup: 1007`
    _rule(
        "live_close_short",
        r"\b(?:(?:web)?socket|connection) closed\b[^\n]{0,40}?[:(]\s{0,3}(10(?:0[0-9]|1[0-5]))\b()",
        re.IGNORECASE,
        hints=("closed",),
    ),
)
# A question in words: a question mark or a question word opening a line, and no machine output.
QUESTION_RULE = _rule(
    "question",
    r"(\?\s{0,3}$|^\s{0,3}(?:why|how|what|is there|does|do|can|should|anyone|any idea|is it)\b)",
    re.IGNORECASE | re.MULTILINE,
)
MACHINE_RULE = _rule(
    "machine_output",
    r"(Traceback|^\s{0,12}at |[{\[]\s{0,3}\"|\b[A-Za-z]{2,40}(?:Error|Exception)\b|\b[A-Z]{3,}_[A-Z_]{2,}\b|"
    r"\b[45]\d\d\b|[\w.]{1,80}\.(?:py|js|ts|go|java):\d)",
    re.MULTILINE,
)

UNSUPPORTED_METHOD_RULE = _rule(
    "unsupported_method", r"\bnot supported for ([a-zA-Z]{4,40})\b", hints=("not supported for",)
)
# Model families that cannot generate text: naming one with generateContent is a method problem.
NON_GENERATIVE_MODEL_RULE = _rule(
    "non_generative_model",
    r"\b((?:gemini-|text-)?embedding[\w.-]{0,40}|imagen-[\w.-]{1,40}|veo-[\w.-]{1,40}|aqa)\b",
    hints=("embedding", "imagen", "veo", "aqa"),
)
GENERATE_METHODS = frozenset({"generatecontent", "streamgeneratecontent"})

SIGNAL_SCAN_CHARS = 200_000  # signals read the whole (already capped) text


@dataclass
class Signals:
    """What the paste says, in structured form."""

    http_status: int | None = None
    status: str | None = None
    reasons: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)
    quota_ids: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    api_version: str | None = None
    gemini_context: bool = False
    zero_quota: bool = False
    foreign: list[str] = field(default_factory=list)
    unsupported_method: str | None = None  # `not supported for X` with X a method the model lacks
    http_statuses: list[int] = field(default_factory=list)  # every HTTP code named (a wrapper's and the inner one)
    statuses: list[str] = field(default_factory=list)  # every status name given
    live_close: int | None = None  # the code of a Live API WebSocket close
    live_reason: str = ""  # the reason text of that close
    question: bool = False  # a question in words, without machine output
    other_hosts: list[str] = field(default_factory=list)  # hosts named that are neither Google's nor local

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _all(rule: Rule, text: str, lowered: str, *, limit: int = 20) -> list[str]:
    if not rule.applies(lowered):
        return []
    seen: dict[str, None] = {}
    for match in rule.pattern.finditer(text):
        seen.setdefault(match.group(1), None)
        if len(seen) >= limit:
            break
    return list(seen)


def _all_codes(text: str, lowered: str) -> list[int]:
    """Every HTTP code the status rules find, in order of first appearance."""
    seen: dict[int, None] = {}
    for r in HTTP_STATUS_RULES:
        if r.applies(lowered):
            for m in r.pattern.finditer(text):
                code = int(m.group(1))
                if 100 <= code <= 599:
                    seen.setdefault(code, None)
                if len(seen) >= 10:
                    return list(seen)
    return list(seen)


def _last(rules: tuple[Rule, ...], text: str, lowered: str) -> str | None:
    """The value of the match that occurs last in the text (the last line says most)."""
    best: tuple[int, str] | None = None
    for r in rules:
        if not r.applies(lowered):
            continue
        for match in r.pattern.finditer(text):
            if best is None or match.start() >= best[0]:
                best = (match.start(), match.group(1))
    return best[1] if best else None


def extract(text: str) -> Signals:
    """Read the signals out of cleaned, redacted text."""
    text = text[:SIGNAL_SCAN_CHARS]
    lowered = text.lower()
    signals = Signals()
    code = _last(HTTP_STATUS_RULES, text, lowered)
    if code and 100 <= int(code) <= 599:
        signals.http_status = int(code)
    statuses = _all(GRPC_STATUS_RULE, text, lowered) or _all(STATUS_NAME_RULE, text, lowered)
    if statuses:
        # Prefer a status that agrees with the HTTP code, else the last one named.
        agreeing = [s for s in statuses if STATUS_CODES.get(s) == signals.http_status]
        signals.status = agreeing[-1] if agreeing else statuses[-1]
    if signals.http_status is None and signals.status:
        signals.http_status = STATUS_CODES.get(signals.status)
    signals.reasons = _all(REASON_RULES[0], text, lowered)
    numbered = [FINISH_REASON_NUMBERS[n] for n in _all(FINISH_NUMBER_RULE, text, lowered) if n in FINISH_REASON_NUMBERS]
    signals.finish_reasons = list(dict.fromkeys([r.upper() for r in _all(FINISH_RULES[0], text, lowered)] + numbered))
    classes = _all(QUALIFIED_EXCEPTION_RULE, text, lowered) + _all(EXCEPTION_RULE, text, lowered)
    signals.exceptions = list(dict.fromkeys(classes))[:20]
    signals.quota_ids = list(dict.fromkeys(_all(QUOTA_RULES[0], text, lowered) + _all(QUOTA_RULES[1], text, lowered)))[
        :20
    ]
    signals.hosts = [h.lower() for h in _all(HOST_RULE, text, lowered)]
    signals.models = list(dict.fromkeys(m.lower().rstrip(".") for m in _all(MODEL_RULE, text, lowered)))
    version = _last((API_VERSION_RULE,), text, lowered)
    signals.api_version = version.lower() if version else None
    signals.gemini_context = bool(CONTEXT_RULE.pattern.search(text))
    signals.zero_quota = any(r.applies(lowered) and r.pattern.search(text) for r in ZERO_QUOTA_RULES)
    foreign = _all(FOREIGN_RULE, text, lowered, limit=5) + _all(FOREIGN_GOOGLE_RULE, text, lowered, limit=5)
    signals.foreign = list(dict.fromkeys(f.lower() for f in foreign))
    signals.statuses = statuses
    signals.http_statuses = _all_codes(text, lowered)
    if signals.http_status and signals.http_status not in signals.http_statuses:
        signals.http_statuses.append(signals.http_status)
    signals.other_hosts = [h for h in _all(HOST_NAME_RULE, text, lowered, limit=10) if not OWN_HOST_RE.search(h)][:5]
    for r in LIVE_CLOSE_RULES:
        live = r.pattern.search(text) if r.applies(lowered) else None
        if live:
            signals.live_close, signals.live_reason = int(live.group(1)), live.group(2).strip()
            break
    signals.question = (
        len(text) < 1_000 and bool(QUESTION_RULE.pattern.search(text)) and not MACHINE_RULE.pattern.search(text)
    )
    method = _last((UNSUPPORTED_METHOD_RULE,), text, lowered)
    if method and (
        method.lower() not in GENERATE_METHODS
        or (NON_GENERATIVE_MODEL_RULE.applies(lowered) and NON_GENERATIVE_MODEL_RULE.pattern.search(text))
    ):
        signals.unsupported_method = method
    return signals
