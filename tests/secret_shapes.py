"""Test data: secret shapes as people paste them, with obviously fake values of the right shape.

Each `Shape` mints a fresh secret (so a find names the place it went in) and the text it travels in:
bare, in a header, an assignment, a URL, a JSON file, split across lines, %-, base64-, \\u- or entity-encoded,
with invisible characters inserted. `value` is what must never be found again, in clear or decoded.
`decoded_views` is how the scans look at a place: the text as it is and every decoded form of it.
"""

from __future__ import annotations

import base64
import html
import json
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "_-"
HEX = "0123456789abcdef"


@dataclass(frozen=True)
class Secret:
    shape: str
    cls: str
    value: str  # never to be found
    text: str  # how it is pasted
    one_word: bool  # can stand as one argument of /gemini-check

    @property
    def needles(self) -> set[str]:
        """The value and two distinctive 12-character slices of it (a partial leak is a leak)."""
        core = re.sub(r"-----[A-Z ]+-----|\\n|\s", "", self.value)
        mid = len(core) // 2
        return {core[mid - 6 : mid + 6], core[-16:-4], self.value}


Maker = Callable[[random.Random], tuple[str, str]]  # -> (value, text)


def _pick(rnd: random.Random, n: int, chars: str = ALNUM) -> str:
    return "".join(rnd.choice(chars) for _ in range(n))


def _fake(rnd: random.Random, n: int, chars: str = ALNUM) -> str:
    """`n` characters that start with FAKE (obviously not a real secret) and look random after it."""
    return "FAKE" + _pick(rnd, n - 4, chars)


def _aiza(rnd: random.Random) -> str:
    return "AIzaSy" + _fake(rnd, 33, URLSAFE)


def _pem(rnd: random.Random, kind: str = "PRIVATE KEY", lines: int = 8, end: bool = True, nl: str = "\n") -> str:
    body = nl.join("MIIE" + _fake(rnd, 60, ALNUM + "+/") for _ in range(lines))
    text = f"-----BEGIN {kind}-----{nl}{body}"
    return text + (f"{nl}-----END {kind}-----" if end else "")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _same(make: Callable[[random.Random], str]) -> Maker:
    def maker(rnd: random.Random) -> tuple[str, str]:
        value = make(rnd)
        return value, value

    return maker


def _in(make: Callable[[random.Random], str], template: str) -> Maker:
    def maker(rnd: random.Random) -> tuple[str, str]:
        value = make(rnd)
        return value, template.replace("{v}", value)

    return maker


def _split_lines(rnd: random.Random) -> tuple[str, str]:
    key = _aiza(rnd)
    return key, f"GEMINI_API_KEY value:\n{key[:20]}\n{key[20:]}"


def _split_backslash(rnd: random.Random) -> tuple[str, str]:
    key = _aiza(rnd)
    return key, f"export GOOGLE_KEY={key[:18]}\\\n    {key[18:]}"


def _split_python(rnd: random.Random) -> tuple[str, str]:
    key = _aiza(rnd)
    return key, f'client = genai.Client(\n    api_key=("{key[:19]}"\n             "{key[19:]}"))'


def _split_token(rnd: random.Random) -> tuple[str, str]:
    token = "ya29.a0" + _fake(rnd, 80, URLSAFE)
    return token, f"token was\n{token[:40]}\n{token[40:]}"


def _percent_all(rnd: random.Random) -> tuple[str, str]:
    key = _aiza(rnd)
    return key, "https://generativelanguage.googleapis.com/v1beta/models?k=" + "".join(f"%{ord(c):02X}" for c in key)


def _percent_param(rnd: random.Random) -> tuple[str, str]:
    key = _aiza(rnd)
    return key, "POST /v1beta/models/gemini-2.5-flash:generateContent%3Fkey%3D" + quote(key, safe="").replace(
        "a", "%61"
    )


def _percent_double(rnd: random.Random) -> tuple[str, str]:
    key = _aiza(rnd)
    return key, "redirect=" + "".join(f"%25{ord(c):02X}" for c in key)


def _base64_key(rnd: random.Random) -> tuple[str, str]:
    key = _aiza(rnd)
    return key, f"secret in the manifest: {_b64(key)}"


def _base64_env(rnd: random.Random) -> tuple[str, str]:
    key = _fake(rnd, 39, URLSAFE)
    return key, f"data:\n  env: {_b64('GEMINI_API_KEY=' + key)}"


def _base64url_token(rnd: random.Random) -> tuple[str, str]:
    token = "ghp_" + _fake(rnd, 36)
    return token, "cfg=" + base64.urlsafe_b64encode(f"token={token}".encode()).decode().rstrip("=")


def _basic_key(rnd: random.Random) -> tuple[str, str]:
    key = _aiza(rnd)
    return key, f"Authorization: Basic {_b64('apikey:' + key)}"


def _u_all(rnd: random.Random) -> tuple[str, str]:
    key = _aiza(rnd)
    return key, '{"key": "' + "".join(f"\\u{ord(c):04x}" for c in key) + '"}'


def _u_some(rnd: random.Random) -> tuple[str, str]:
    token = f"xoxb-{_pick(rnd, 12, string.digits)}-{_pick(rnd, 13, string.digits)}-{_fake(rnd, 24)}"
    return token, '{"token": "' + token.replace("-", "\\u002d") + '"}'


def _x_escape(rnd: random.Random) -> tuple[str, str]:
    key = _aiza(rnd)
    return key, "b'" + "".join(f"\\x{ord(c):02x}" for c in key) + "'"


def _zero_width(rnd: random.Random) -> tuple[str, str]:
    key = _aiza(rnd)
    return key, "my key " + "\u200b".join(key[i : i + 5] for i in range(0, len(key), 5)) + " fails"


def _soft_hyphen(rnd: random.Random) -> tuple[str, str]:
    token = "ghp_" + _fake(rnd, 36)
    return token, "\u00ad".join(token[i : i + 7] for i in range(0, len(token), 7)) + "\ufeff"


def _entities(rnd: random.Random) -> tuple[str, str]:
    key = _aiza(rnd)
    return key, "&lt;" + "".join(f"&#{ord(c)};" for c in key) + "&gt;"


def _slack_escaped(rnd: random.Random) -> tuple[str, str]:
    value = _fake(rnd, 40)
    return value, f"curl -H &quot;x-goog-api-key&#58; {value}&quot; https://generativelanguage.googleapis.com"


def _json_pem(rnd: random.Random) -> tuple[str, str]:
    pem = _pem(rnd, nl="\\n")
    return (
        pem,
        '{"type": "service_account", "private_key": "' + pem + '\\n", "client_email": "x@p.iam.gserviceaccount.com"}',
    )


def _pem_no_end(rnd: random.Random) -> tuple[str, str]:
    pem = _pem(rnd, end=False)
    return pem, f"key file starts with\n{pem}\n(the rest was cut)"


def _pem_long(rnd: random.Random) -> tuple[str, str]:
    pem = _pem(rnd, "RSA PRIVATE KEY", lines=150)  # about 10,000 characters
    return pem, pem


def _pem_encrypted(rnd: random.Random) -> tuple[str, str]:
    body = "\n".join("MIIE" + _fake(rnd, 60, ALNUM + "+/") for _ in range(6))
    head = (
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
        "DEK-Info: AES-128-CBC,0FAKE0123456789ABCDEF0123456789\n\n"
    )
    pem = head + body + "\n-----END RSA PRIVATE KEY-----"
    return pem, pem


def _pgp(rnd: random.Random) -> tuple[str, str]:
    body = "\n".join("lQOY" + _fake(rnd, 60, ALNUM + "+/") for _ in range(6))
    pem = (
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\nComment: fake test key\n\n"
        + body
        + "\n=FAKE\n-----END PGP PRIVATE KEY BLOCK-----"
    )
    return pem, pem


def _jwt(rnd: random.Random) -> str:
    head = base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"FAKE"}').decode().rstrip("=")
    claims = base64.urlsafe_b64encode(json.dumps({"sub": _fake(rnd, 20)}).encode()).decode().rstrip("=")
    return f"{head}.{claims}.{_fake(rnd, 86, URLSAFE)}"


# (class, shape name, maker, one word)
SHAPES: list[tuple[str, str, Maker, bool]] = [
    # Google keys and tokens
    ("google", "api key AIza", _same(_aiza), True),
    ("google", "auth key AQ.", _same(lambda r: "AQ.Ab8R" + _fake(r, 46, URLSAFE)), True),
    ("google", "OAuth access token ya29", _same(lambda r: "ya29.a0" + _fake(r, 80, URLSAFE)), True),
    ("google", "OAuth refresh token 1//0", _same(lambda r: "1//0g" + _fake(r, 98, URLSAFE)), True),
    ("google", "OAuth client secret GOCSPX", _same(lambda r: "GOCSPX-" + _fake(r, 28, URLSAFE)), True),
    (
        "google",
        "client secret in JSON",
        _in(lambda r: "GOCSPX-" + _fake(r, 28, URLSAFE), '{"client_secret": "{v}"}'),
        False,
    ),
    ("google", "service account private_key_id", _in(lambda r: _pick(r, 40, HEX), '"private_key_id": "{v}",'), False),
    ("google", "ID token (JWT)", _same(_jwt), True),
    (
        "google",
        "refresh token in JSON",
        _in(lambda r: "1//0g" + _fake(r, 98, URLSAFE), '{"refresh_token": "{v}"}'),
        False,
    ),
    # Slack
    (
        "slack",
        "bot token xoxb",
        _same(lambda r: f"xoxb-{_pick(r, 12, string.digits)}-{_pick(r, 13, string.digits)}-{_fake(r, 24)}"),
        True,
    ),
    (
        "slack",
        "user token xoxp",
        _same(lambda r: f"xoxp-{_pick(r, 12, string.digits)}-{_pick(r, 12, string.digits)}-{_fake(r, 32, HEX)}"),
        True,
    ),
    ("slack", "rotating token xoxe.xoxp", _same(lambda r: f"xoxe.xoxp-1-{_fake(r, 140)}"), True),
    ("slack", "refresh token xoxe", _same(lambda r: f"xoxe-1-{_fake(r, 140)}"), True),
    (
        "slack",
        "app token xapp",
        _same(lambda r: f"xapp-1-A{_pick(r, 10, string.ascii_uppercase)}-{_fake(r, 64, HEX)}"),
        True,
    ),
    (
        "slack",
        "incoming webhook URL",
        _in(
            lambda r: f"T{_pick(r, 8, string.ascii_uppercase)}/B{_pick(r, 8, string.ascii_uppercase)}/{_fake(r, 24)}",
            "https://hooks.slack.com/services/{v}",
        ),
        True,
    ),
    ("slack", "signing secret", _in(lambda r: _pick(r, 32, HEX), "SLACK_SIGNING_SECRET={v}"), False),
    # GitHub, OpenAI, Anthropic, AWS, others
    ("vendor", "GitHub classic ghp_", _same(lambda r: "ghp_" + _fake(r, 36)), True),
    ("vendor", "GitHub OAuth gho_", _same(lambda r: "gho_" + _fake(r, 36)), True),
    ("vendor", "GitHub fine-grained github_pat_", _same(lambda r: f"github_pat_{_fake(r, 22)}_{_pick(r, 59)}"), True),
    ("vendor", "OpenAI sk-proj-", _same(lambda r: "sk-proj-" + _fake(r, 120, URLSAFE)), True),
    ("vendor", "Anthropic sk-ant-api03-", _same(lambda r: "sk-ant-api03-" + _fake(r, 95, URLSAFE)), True),
    (
        "vendor",
        "AWS access key id",
        _same(lambda r: "AKIA" + "FAKE" + _pick(r, 12, string.ascii_uppercase + "234567")),
        True,
    ),
    (
        "vendor",
        "AWS secret access key",
        _in(lambda r: _fake(r, 40, ALNUM + "+/"), "aws_secret_access_key = {v}"),
        False,
    ),
    ("vendor", "Hugging Face hf_", _same(lambda r: "hf_" + _fake(r, 34)), True),
    ("vendor", "GitLab glpat-", _same(lambda r: "glpat-" + _fake(r, 20, URLSAFE)), True),
    ("vendor", "Stripe sk_live_", _same(lambda r: "sk_live_" + _fake(r, 24)), True),
    # Private keys
    ("private key", "PKCS#8 PEM", _same(lambda r: _pem(r)), False),
    ("private key", "RSA PEM", _same(lambda r: _pem(r, "RSA PRIVATE KEY")), False),
    ("private key", "EC PEM", _same(lambda r: _pem(r, "EC PRIVATE KEY", lines=3)), False),
    ("private key", "OpenSSH", _same(lambda r: _pem(r, "OPENSSH PRIVATE KEY", lines=6)), False),
    ("private key", "encrypted PEM with headers", _pem_encrypted, False),
    ("private key", "PGP private key block", _pgp, False),
    ("private key", "PEM without END line", _pem_no_end, False),
    ("private key", "PEM over 8,000 characters", _pem_long, False),
    ("private key", "PEM in service-account JSON", _json_pem, False),
    # Headers, parameters, URLs
    ("header", "Bearer opaque token", _in(lambda r: _fake(r, 48, URLSAFE), "Authorization: Bearer {v}"), False),
    ("header", "x-goog-api-key opaque", _in(lambda r: _fake(r, 39, URLSAFE), "x-goog-api-key: {v}"), False),
    (
        "header",
        "key= parameter",
        _in(lambda r: _fake(r, 36, URLSAFE), "https://generativelanguage.googleapis.com/v1beta/models?key={v}"),
        False,
    ),
    (
        "header",
        "access_token= parameter",
        _in(lambda r: _fake(r, 40, URLSAFE), "GET /v1/files?access_token={v}&alt=json"),
        False,
    ),
    ("header", "Basic auth", _in(lambda r: _b64("svc:" + _fake(r, 20)), "Authorization: Basic {v}"), False),
    (
        "header",
        "password in URL",
        _in(lambda r: _fake(r, 20), "HTTPS_PROXY=http://proxyuser:{v}@proxy.corp.example:3128"),
        False,
    ),
    # Assignments and code
    ("code", "GEMINI_API_KEY= opaque", _in(lambda r: _fake(r, 39, URLSAFE), "GEMINI_API_KEY={v}"), False),
    (
        "code",
        "os.environ assignment",
        _in(lambda r: _fake(r, 39, URLSAFE), 'os.environ["GEMINI_API_KEY"] = "{v}"'),
        False,
    ),
    (
        "code",
        "genai.Client(api_key=...)",
        _in(lambda r: _fake(r, 39, URLSAFE), 'client = genai.Client(api_key="{v}")'),
        False,
    ),
    ("code", "YAML GOOGLE_API_KEY", _in(lambda r: _fake(r, 39, URLSAFE), "env:\n  GOOGLE_API_KEY: {v}\n"), False),
    (
        "code",
        "JSON api_key",
        _in(lambda r: _fake(r, 39, URLSAFE), '{"api_key": "{v}", "model": "gemini-2.5-flash"}'),
        False,
    ),
    ("code", "export in shell", _in(lambda r: _fake(r, 39, URLSAFE), "export GEMINI_API_KEY='{v}'"), False),
    (
        "code",
        "JS apiKey",
        _in(lambda r: _fake(r, 39, URLSAFE), "const genAI = new GoogleGenAI({ apiKey: '{v}' });"),
        False,
    ),
    ("code", "password in config", _in(lambda r: _fake(r, 24), 'DB_PASSWORD="{v}"'), False),
    ("code", "token: in YAML", _in(lambda r: _fake(r, 40), "auth:\n  token: {v}\n"), False),
    ("code", "secret is ... in prose", _in(lambda r: _fake(r, 32), "our client secret is {v} if that matters"), False),
    # Encoded, split, disguised
    ("split", "key split across lines", _split_lines, False),
    ("split", "key with backslash continuation", _split_backslash, False),
    ("split", "key in Python string pieces", _split_python, False),
    ("split", "OAuth token split across lines", _split_token, False),
    ("encoded", "percent-encoded key", _percent_all, True),
    ("encoded", "percent-encoded key= parameter", _percent_param, True),
    ("encoded", "double percent-encoded key", _percent_double, True),
    ("encoded", "base64 of a key", _base64_key, False),
    ("encoded", "base64 of an env line", _base64_env, False),
    ("encoded", "base64url of a token line", _base64url_token, True),
    ("encoded", "Basic auth holding a key", _basic_key, False),
    ("encoded", "\\u-escaped key", _u_all, True),
    ("encoded", "\\u-escaped dashes in a token", _u_some, True),
    ("encoded", "\\x-escaped key", _x_escape, True),
    ("invisible", "zero-width spaces in a key", _zero_width, False),
    ("invisible", "soft hyphens in a token", _soft_hyphen, True),
    ("entities", "key as numeric entities", _entities, True),
    ("entities", "Slack-escaped header", _slack_escaped, False),
]


class Minter:
    """Fresh secrets, one per (shape, place), so a find names the place it went in."""

    def __init__(self, seed: int):
        self._rnd = random.Random(seed)
        self.minted: list[tuple[str, Secret]] = []

    def new(self, index: int, place: str) -> Secret:
        cls, name, maker, one_word = SHAPES[index]
        value, text = maker(self._rnd)
        secret = Secret(name, cls, value, text, one_word and not re.search(r"\s", text))
        self.minted.append((place, secret))
        return secret


def all_shapes(seed: int = 11) -> list[Secret]:
    minter = Minter(seed)
    return [minter.new(i, "unit") for i in range(len(SHAPES))]


_B64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{16,}={0,2}")
_U = re.compile(r"(?:\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2})+")
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")


def decoded_views(text: str) -> list[str]:
    """`text` and its decoded forms: invisible characters stripped, JSON/Python escapes, entities and
    %-escapes undone (twice), lines joined, and each base64 run decoded."""
    plain = _INVISIBLE.sub("", text)
    unescaped = _U.sub(lambda m: m.group().encode().decode("unicode_escape", errors="replace"), plain)
    unescaped = html.unescape(unquote(unquote(unescaped))).replace("\\/", "/")
    joined = re.sub(r"[\"']?\s*\\?\n\s*[\"']?", "", unescaped)
    views = [text, plain, unescaped, joined]
    for source in (unescaped, joined):
        for m in _B64_RUN.finditer(source):
            core = m.group().rstrip("=")
            try:
                raw = base64.b64decode(core.replace("-", "+").replace("_", "/") + "=" * (-len(core) % 4))
            except ValueError:
                continue
            views.append(raw.decode("latin-1"))
    return views


def leaked(secret: Secret, haystack: str) -> bool:
    """Whether any needle of `secret` is in `haystack` or in a decoded form of it."""
    return any(n in view for view in decoded_views(haystack) for n in secret.needles)
