"""Find and redact secrets (API keys, OAuth tokens, Slack tokens, private keys...) in text.

The one place that decides what a secret is. `RULES` is a declared table of named rules (one type,
`SecretRule`); `redact` returns the clean text and the kinds found, so the caller can tell the poster
to rotate what leaked. Shapes alone cannot keep up with every way a key gets pasted, so there are two
further lines of defence:

- the rules also run on a *decoded view* of the text: invisible characters removed, Slack/HTML
  entities, `\\uXXXX`/`\\xXX`/`%XX` escapes decoded, and a key broken across lines (or across Python
  string pieces) joined again. A find there redacts the matching stretch of the original text;
- runs that look like base64 are decoded and searched too (a secret found inside redacts the run);
- named rules treat a long, random-looking token next to a key-like name (`token:`, `secret=`,
  `api_key="`...) as a secret, whatever its shape.

`redact(text, strict=True)` adds the rules for places that only need the meaning of a text, never its
opaque tokens (the state database, log lines, check targets): any long random-looking token goes.

Every pattern is linear: bounded or possessive quantifiers over classes that do not overlap what follows.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import html
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SecretRule:
    """A named secret shape.

    The secret is the pattern's group `s` (or `t`) when it has one, else the whole match; what precedes it
    in the match (a header or parameter name) is kept. `lower` rules are written in lower case and run on
    the lower-cased text (case-insensitive, at the speed of a literal search). `before`, when set, must
    match the text just before the secret (a key-like name); `accept`, when set, must hold for the secret
    (it looks random). A rule runs only on text holding one of its `hints` (lower case), so most rules cost
    one substring test per text. `strict` rules apply only to `redact(..., strict=True)`.
    """

    name: str
    pattern: re.Pattern[str]
    hints: tuple[str, ...] = ()
    lower: bool = False
    accept: Callable[[str], bool] | None = None
    before: re.Pattern[str] | None = None
    strict: bool = False
    decoded: bool = True  # also run on the decoded view (a joined line could make any two words one token)


# -- what a random token looks like --------------------------------------------------------


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


_HEX = re.compile(r"[0-9a-f]+|[0-9A-F]+")
_SEPARATORS = re.compile(r"[\-._~/+]")


def looks_random(token: str) -> bool:
    """A token that reads like a generated key, not a word, a name, a number or a placeholder:
    16+ characters mixing letters and digits (or 32+ hex digits) with high entropy."""
    core = token.strip("=")
    if len(core) < 16:
        return False
    if _HEX.fullmatch(core):
        return len(core) >= 32 and entropy(core) >= 3.0
    classes = sum((any(c.isupper() for c in core), any(c.islower() for c in core), any(c.isdigit() for c in core)))
    digits = sum(c.isdigit() for c in core)
    if classes < 2 or (digits == 0 and classes < 3):
        return False
    if core.isupper() and "_" in core:  # YOUR_API_KEY_HERE, AN_ENV_VAR_NAME
        return False
    segments = _SEPARATORS.split(core)
    if len(segments) >= 3 and max(map(len, segments)) <= 12:  # gemini-2.5-flash-001, a.host.name, a/path
        return False
    return entropy(core) >= (3.0 if classes == 3 else 3.3)


def looks_random_strict(token: str) -> bool:
    """For the context-free rule: upper, lower and digits (or 32+ hex digits), and 24+ characters."""
    core = token.strip("=")
    if _HEX.fullmatch(core):
        return len(core) >= 32 and entropy(core) >= 3.0
    if not (any(c.isupper() for c in core) and any(c.islower() for c in core) and any(c.isdigit() for c in core)):
        return False
    return len(core) >= 24 and entropy(core) >= 3.5


def _basic_credentials(token: str) -> bool:
    """`Basic X`: X decodes to `user:password`."""
    decoded = _b64_text(token)
    return decoded is not None and ":" in decoded


def _rule(
    name: str,
    pattern: str,
    hints: tuple[str, ...] = (),
    *,
    lower: bool = False,
    accept: Callable[[str], bool] | None = None,
    before: str | None = None,
    strict: bool = False,
) -> SecretRule:
    compiled_before = re.compile(before) if before else None
    return SecretRule(name, re.compile(pattern), hints, lower, accept, compiled_before, strict, decoded=not strict)


# Key-like names whose value is a secret when it looks random: checked (lower case) just before a candidate.
_NAMED = (
    r"(?<![a-z0-9])(?:api[_-]?key|apikey|access[_-]?key(?:[_-]?id)?|secret(?:[_-]?access)?[_-]?key"
    r"|private[_-]?key[_-]?id|client[_-]?secret|signing[_-]?secret|secret|refresh[_-]?token|access[_-]?token"
    r"|id[_-]?token|auth[_-]?token|token|passw(?:or)?d|passwd|pwd|credentials?|auth|session[_-]?key|key)"
    r"[\w.\-]{0,30}[\"'\])]{0,3}\s{0,3}(?:[:=]{1,2}>?|\sis|\swas)?\s{0,3}[\"'(]?\Z"
)
_NAME_HINTS = ("key", "secret", "token", "pass", "pwd", "credential", "auth")
# A candidate token: a maximal run of key characters (the rules that use it add context or randomness).
_CANDIDATE = r"[A-Za-z0-9+/_\-.~]{16,}+={0,2}"
_STRICT_CANDIDATE = r"[A-Za-z0-9_\-]{24,}+"  # no `/` or `.`: a path or a host name is not a token

# Every pattern starts with a literal (a boundary, when needed, is a look-behind after it): the regex engine
# then jumps from one occurrence of the literal to the next instead of trying every position.
RULES: tuple[SecretRule, ...] = (
    # PEM, OpenSSH and PGP private keys: the header and every base64 or armour line after it, with or without
    # the END line (a key cut short, or longer than any fixed bound, is still a key). Lines may be broken by
    # newlines or by JSON's `\n`.
    _rule(
        "private-key",
        r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[ \t]{0,8}(?:\r?\n|\\r\\n|\\n)[ \t]{0,8}(?:[A-Z][A-Za-z\-]{1,30}: [^\n\\]{0,200}|[A-Za-z0-9+/=]++)?)*+"
        r"(?:[ \t]{0,8}(?:\r?\n|\\r\\n|\\n)?[ \t]{0,8}-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)?",
        ("-----begin",),
    ),
    # Standard keys (`AIza` + 35) and the auth keys AI Studio issues since 2026 (`AQ.` + about 50).
    _rule(
        "google-api-key",
        r"AIza[0-9A-Za-z_\-]{30,40}|AQ\.(?<![A-Za-z0-9_]AQ\.)[0-9A-Za-z_\-]{40,80}",
        ("aiza", "aq."),
    ),
    _rule("google-oauth-token", r"ya29\.[0-9A-Za-z_\-.~+/]{10,2000}", ("ya29.",)),
    _rule("google-refresh-token", r"1//0(?<![A-Za-z0-9]1//0)[0-9A-Za-z_\-]{30,500}", ("1//0",)),
    _rule("google-oauth-client-secret", r"GOCSPX-[0-9A-Za-z_\-]{20,40}", ("gocspx-",)),
    _rule("slack-token", r"xox[abposre](?:\.xox[abpr])?-[0-9A-Za-z\-]{10,300}", ("xox",)),
    _rule("slack-app-token", r"xapp-[0-9]-[0-9A-Za-z\-]{10,300}", ("xapp-",)),
    _rule(
        "slack-webhook",
        r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<s>[A-Za-z0-9_/\-]{20,200})",
        ("hooks.slack.com",),
    ),
    _rule(
        "aws-access-key-id",
        r"(?:AKIA|ASIA|ABIA|ACCA)(?<![A-Za-z0-9]....)[0-9A-Z]{16}(?![A-Za-z0-9])",
        ("akia", "asia", "abia", "acca"),
    ),
    _rule(
        "openai-key",
        r"sk-(?<![A-Za-z0-9_]sk-)(?:proj-|ant-(?:api\d\d-)?|svcacct-|admin-)?[0-9A-Za-z_\-]{20,300}",
        ("sk-",),
    ),
    _rule(
        "github-token",
        r"gh[pousr]_(?<![A-Za-z0-9]gh[pousr]_)[0-9A-Za-z]{30,255}|github_pat_[0-9A-Za-z_]{40,255}",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    _rule("gitlab-token", r"glpat-[0-9A-Za-z_\-]{20,60}", ("glpat-",)),
    _rule("huggingface-token", r"hf_(?<![A-Za-z0-9]hf_)[0-9A-Za-z]{30,60}", ("hf_",)),
    _rule("stripe-key", r"[rs]k_(?:live|test)_[0-9A-Za-z]{20,200}", ("k_live_", "k_test_")),
    _rule("jwt", r"eyJ[0-9A-Za-z_\-]{8,2000}\.eyJ[0-9A-Za-z_\-]{8,8000}\.[0-9A-Za-z_\-]{0,2000}", ("eyj",)),
    _rule(
        "bearer-token", r"bearer(?<![a-z0-9]bearer)\s{1,5}(?P<s>[0-9a-z\-._~+/]{12,4000}=*)", ("bearer",), lower=True
    ),
    _rule(
        "basic-auth",
        r"basic(?<![a-z0-9]basic)\s{1,5}(?P<s>[a-z0-9+/]{8,2000}={0,2})",
        ("basic",),
        lower=True,
        accept=_basic_credentials,
    ),
    _rule("url-credentials", r"://[^\s/:@<>\"']{1,100}:(?P<s>[^\s/@<>\"']{3,200})@", ("://",)),
    _rule(
        "api-key-header",
        r"api-key[\"']?\s{0,5}[:=]\s{0,5}[\"']?(?P<s>[^\s\"',;]{8,300})",  # x-goog-api-key, x-api-key, api-key
        ("api-key",),
        lower=True,
    ),
    _rule(
        "api-key-param",
        r"[?&](?:key|api_key|apikey|access_token|refresh_token|client_secret|token|sig|signature)="
        r"(?P<s>[^&\s\"'#<>]{8,300})",
        ("key=", "token=", "secret=", "sig=", "signature="),
        lower=True,
    ),
    # `GEMINI_API_KEY=...`, `os.environ["GEMINI_API_KEY"] = "..."`, `genai.Client(api_key="...")`, `apiKey: ...`:
    # the value is a key whatever it looks like (but not a variable it is read from).
    _rule(
        "api-key-assignment",
        r"api_?key[\"'\]]{0,3}\s{0,5}(?:[:=]|=>)\s{0,5}(?!os\.|\$|process\.|getenv|none\b)"
        r"(?:[\"'](?P<s>[^\"'\s]{8,300})|(?P<t>[^\s\"',;()\[\]{}]{8,300}))",
        ("apikey", "api_key"),
        lower=True,
    ),
    # Anything random-looking next to a key-like name: `token: ...`, `"client_secret": "..."`, `secret is ...`.
    _rule("named-secret", _CANDIDATE, _NAME_HINTS, accept=lambda t: looks_random(t), before=_NAMED),
    # Strict: any long random-looking token (state rows, log lines, check targets keep no opaque tokens).
    _rule("random-token", _STRICT_CANDIDATE, accept=lambda t: looks_random_strict(t), strict=True),
)
BEFORE_CHARS = 64  # how far before a candidate its name may start

# -- the decoded view: escapes and invisible characters undone, broken keys joined --------------

_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u206a-\u206f\ufeff"
)
# Invisible characters are dropped from the text itself (nothing a reader could see is lost).
_DROP_INVISIBLE = {
    code: None
    for first, last in re.findall(r"(.)(?:-(.))?", _INVISIBLE)
    for code in range(ord(first), ord(last or first) + 1)
}
_UNITS = re.compile(
    r"(?P<u>(?:\\u[0-9a-fA-F]{4})++)|(?P<x>(?:\\x[0-9a-fA-F]{2})++)|(?P<slash>\\/)"
    r"|(?P<pct>(?:%(?:25){0,3}[0-9a-fA-F]{2})++)"
    r"|(?P<ent>(?:&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|amp|lt|gt|quot|apos|sol|colon|equals);)++)"
    # A key broken over lines (with or without a trailing backslash), or split into "quoted" "pieces": joined
    # when 8 key characters stand on each side (`_joinable`), so ordinary prose keeps its line breaks.
    r"|(?P<join>(?:\\\r?\n|\r?\n)[ \t]{0,8}|[\"'][ \t]{0,8}\+?[ \t]{0,8}\\?\r?\n?[ \t]{0,8}\+?[ \t]{0,8}[\"'])"
    r"(?=[A-Za-z0-9_\-+/=]{8})(?=[a-z_\-+/=]{0,7}[A-Z0-9])"
)
_PCT_25 = re.compile(r"%(?:25){0,3}")
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=.")
_UNIT_MARKS = ("\\", "%", "&", "\n")


def _joinable(text: str, start: int) -> bool:
    """8 key characters, one an upper-case letter or a digit, before the break (the regex checks after it)."""
    before = text[start - 8 : start]
    return start >= 8 and all(c in _KEY_CHARS for c in before) and any(c.isupper() or c.isdigit() for c in before)


def _unit_text(kind: str | None, found: str) -> str:
    """What one run of escapes stands for."""
    if kind in ("u", "x"):
        return found.encode("ascii").decode("unicode_escape", errors="replace")
    if kind == "pct":
        return bytes.fromhex(_PCT_25.sub("", found)).decode("latin-1")
    if kind == "ent":
        return html.unescape(found)
    return "/"  # `\/`


class _View:
    """Text with some stretches replaced, and the way back from its offsets to the original's."""

    def __init__(self, text: str):
        parts: list[str] = []
        vstarts: list[int] = []  # per replaced stretch: where it starts in the view...
        vends: list[int] = []  # ... and ends,
        ostarts: list[int] = []  # and where it came from in the original
        oends: list[int] = []
        last = vpos = 0
        for m in _UNITS.finditer(text) if any(mark in text for mark in _UNIT_MARKS) else ():
            start, end = m.span()
            kind = m.lastgroup
            if kind == "join":
                if not _joinable(text, start):
                    continue
                new = ""
            else:
                new = _unit_text(kind, m.group())
            parts.append(text[last:start])
            parts.append(new)
            vpos += start - last
            vstarts.append(vpos)
            vpos += len(new)
            vends.append(vpos)
            ostarts.append(start)
            oends.append(end)
            last = end
        parts.append(text[last:])
        self.vstarts, self.vends, self.ostarts, self.oends = vstarts, vends, ostarts, oends
        self.text = "".join(parts) if self.vstarts else text

    @property
    def changed(self) -> bool:
        return bool(self.vstarts)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original stretch that the view's [start, end) came from."""
        return self._map(start, inside_start=True), self._map(end - 1, inside_start=False)

    def _map(self, pos: int, *, inside_start: bool) -> int:
        i = bisect.bisect_right(self.vstarts, pos) - 1
        # A stretch that became "" (a join) has vstart == vend: pos is after it, never inside it.
        if i >= 0 and pos < self.vends[i]:
            return self.ostarts[i] if inside_start else self.oends[i]
        delta = (self.oends[i] - self.vends[i]) if i >= 0 else 0
        return pos + delta + (0 if inside_start else 1)


# Base64 runs worth decoding (a secret of 12+ characters encodes to 16+).
_B64_RUN = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{16,100000}={0,2}(?![A-Za-z0-9+/_\-=])")
MAX_DEPTH = 2  # base64 inside base64 inside the text, no deeper
_BATCH_SEPARATOR = "\n\x00\n"  # between decoded runs: no rule reads across it


@functools.lru_cache(maxsize=8192)
def _b64_text(run: str) -> str | None:
    """`run` decoded as base64 (standard or URL-safe, padding optional) when that gives printable text."""
    core = run.rstrip("=")
    if len(core) % 4 == 1:
        return None
    padded = core + "=" * (-len(core) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    printable = sum(c.isprintable() or c in "\n\r\t" for c in text)
    return text if text and printable >= 0.95 * len(text) else None


# -- redaction ----------------------------------------------------------------------------------


def _rules(strict: bool) -> tuple[tuple[int, SecretRule], ...]:
    return tuple((i, r) for i, r in enumerate(RULES) if strict or not r.strict)


def _lower(text: str) -> str:
    """`text` in lower case, offset for offset (a character whose lower case is longer is kept as it is)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(low := c.lower()) != 1 else low for c in text)


@functools.lru_cache(maxsize=4096)
def _accepted(index: int, token: str) -> bool:
    accept = RULES[index].accept
    return accept is None or accept(token)


def _finds(text: str, rules: tuple[tuple[int, SecretRule], ...]) -> list[tuple[int, int, int]]:
    """(start, end, rule index) of every secret the rules find in `text`."""
    found = []
    lowered = _lower(text)
    for index, rule in rules:
        if rule.hints and not any(hint in lowered for hint in rule.hints):
            continue
        groups = [g for g in ("s", "t") if g in rule.pattern.groupindex]
        for m in rule.pattern.finditer(lowered if rule.lower else text):
            group = next((g for g in groups if m.group(g) is not None), None)
            start, end = m.span(group) if group else m.span()
            if end <= start:
                continue
            if rule.accept is not None and not _accepted(index, text[start:end]):
                continue
            if rule.before is not None and not rule.before.search(lowered, max(0, start - BEFORE_CHARS), start):
                continue
            found.append((start, end, index))
    return found


def _secrets(text: str, rules: tuple[tuple[int, SecretRule], ...], depth: int) -> list[tuple[int, int, int]]:
    """Every secret in `text`, in its clear, decoded and base64 forms, as stretches of `text`."""
    found = _finds(text, rules)
    view = _View(text)
    if view.changed:
        found += [(*view.span(s, e), i) for s, e, i in _finds(view.text, tuple(r for r in rules if r[1].decoded))]
    if depth >= MAX_DEPTH:
        return found
    # Every base64 run that decodes to text, searched in one batch (one pass, however many runs).
    runs: list[tuple[int, int]] = []
    pieces: list[str] = []
    offsets: list[int] = []
    size = 0
    for m in _B64_RUN.finditer(view.text):
        decoded = _b64_text(m.group())
        if decoded is not None:
            runs.append(m.span())
            offsets.append(size)
            pieces.append(decoded)
            size += len(decoded) + len(_BATCH_SEPARATOR)
    if pieces:
        hits: dict[int, int] = {}
        for start, _end, index in _secrets(_BATCH_SEPARATOR.join(pieces), rules, depth + 1):
            run = bisect.bisect_right(offsets, start) - 1
            hits[run] = min(index, hits.get(run, index))
        for run, index in hits.items():
            start, end = view.span(*runs[run]) if view.changed else runs[run]
            found.append((start, end, index))
    return found


def find(rule: SecretRule, text: str) -> list[str]:
    """What `rule` alone finds in `text`, in its clear, decoded and base64 forms (for testing one rule)."""
    text = text.translate(_DROP_INVISIBLE)
    return [text[s:e] for s, e, _i in sorted(_secrets(text, ((RULES.index(rule), rule),), 0))]


def redact(text: str, *, strict: bool = False) -> tuple[str, list[str]]:
    """Return `text` with secrets replaced and the sorted kinds of secret found. With `strict`, any long
    random-looking token is replaced too (for what is stored or logged)."""
    if not text:
        return text, []
    text = text.translate(_DROP_INVISIBLE)
    spans = sorted(_secrets(text, _rules(strict), 0))
    merged: list[list[int]] = []
    for start, end, index in spans:
        if merged and start < merged[-1][1]:
            last = merged[-1]
            last[1], last[2] = max(last[1], end), min(last[2], index)
        else:
            merged.append([start, end, index])
    out, last = [], 0
    kinds: set[str] = set()
    for start, end, index in merged:
        name = RULES[index].name
        kinds.add(name)
        out += [text[last:start], f"[REDACTED {name}]"]
        last = end
    out.append(text[last:])
    return "".join(out), sorted(kinds)


def mask(secret: str) -> str:
    """Show a secret as its first four and last three characters (`AIza…k3Q`, `AQ.A…Q2x`)."""
    secret = secret.strip()
    if len(secret) <= 10:
        return "…" * bool(secret)
    return f"{secret[:4]}…{secret[-3:]}"


def scrub(
    text: str,
    secrets: tuple[str | None, ...] | list[str | None] = (),
    *,
    redact_rest: bool = True,
    strict: bool = False,
) -> str:
    """`text` with each given secret (a key typed into a command) replaced by its mask and, unless
    `redact_rest` is False, any other secret-shaped string redacted. The one key scrubber: check results,
    reports, Slack messages and console output all go through it."""
    for secret in secrets:
        if secret and text:
            text = text.replace(secret, mask(secret))
    return redact(text, strict=strict)[0] if redact_rest and text else text
