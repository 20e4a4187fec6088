"""What a piece of an article is about, in the knowledge base's own words.

Guides are written for pastes; articles describe families in prose ("Safety issues", "Blocked or
non-working API keys") and in tables of bare codes. This module gives the attacher three things:

- `expand`: a text with the codes and foreign words it contains spelt out in the KB's vocabulary
  (gRPC numbers and numeric finish reasons as names, a declared glossary for Japanese and Chinese);
- `Topics`: a per-family vocabulary built from the curated entries themselves (id, title, status,
  reasons and finish reasons weigh most; summary and causes a little), scored with IDF so words that
  name one family count more than words every family shares;
- `out_of_scope`: declared rules for what is not a Gemini API problem (another vendor's row, the
  application's own endpoints, local tooling), each with the reason the dry run shows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kb.signals import FINISH_REASON_NUMBERS

if TYPE_CHECKING:
    from kb.store import KnowledgeBase


# Words that say nothing about which family: page furniture and troubleshooting verbs.
GENERIC_WORDS = frozenset(
    """a an and are as at be by can check common did do does error errors fail failed failing fails fix fixes
    for from gemini get got google guide has have how i if in is issue issues it its my not of on or our
    problem problems request requests see than that the this to troubleshooting use using was what when
    backend bug known feedback which why with you your api apis call calls code codes status http message
    messages help solution solutions step steps way works working understand understanding
    handling handle note notes ai studio service services non review verify inspect
    configuration settings correct finish reason final thought thoughts conclusion summary overview
    introduction takeaways need needs needed cloud new order generate generates generated generating
    generation""".split()
)

# Glossary: words of guides written in Japanese or Chinese, as the English words the KB uses.
GLOSSARY: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), english)
    for pattern, english in (
        (r"レート制限|速率限制|频率限制|限流|リクエスト数の上限", "rate limit exceeded"),
        (r"クォータ|割り当て|配额|额度|配額", "quota"),
        (r"API\s?キー|API\s?密钥|API\s?密鑰|密钥|キー", "api key"),
        (r"無効|无效|無效", "invalid not valid"),
        (r"漏洩|流出|泄露|泄漏|外泄", "leaked"),
        (r"停用|ブロック|拦截|屏蔽|封禁|阻止", "blocked"),
        (r"安全フィルター|安全性|セーフティ|安全过滤|安全", "safety"),
        (r"所在地|地域|地区|国家|区域|国/地域", "location region"),
        (r"サポートされていません|サポート外|不支持|不受支持", "not supported unsupported"),
        (r"モデル|模型", "model"),
        (r"見つからない|見つかりません|存在しない|不存在|找不到|未找到", "not found"),
        (r"タイムアウト|超时|超時|期限超過", "timeout deadline"),
        (r"過負荷|过载|混雑|負荷が高い|容量不足", "overloaded"),
        (r"期限切れ|过期|失効", "expired"),
        (r"権限|权限|許可がない", "permission"),
        (r"課金|请求付款|结算|计费|账单|支払い", "billing"),
        (r"朗読|复述|背诵|引用ブロック", "recitation"),
        (
            r"コンテキスト長|上下文长度|トークン数の上限|令牌上限|词元上限|詞元上限|入力トークン",
            "token limit context window",
        ),
        (r"ネットワーク|网络|網路|網絡|连线|連線|连接|接続", "network connect"),
        # Korean
        (r"할당량|쿼터", "quota"),
        (r"초과", "exceeded"),
        (r"일당|일일|하루|매일", "per day daily"),
        (r"분당", "per minute"),
        (r"요청 ?(?:수 ?)?제한|속도 ?제한|레이트 ?리밋", "rate limit"),
        (r"키", "key"),
        (r"만료", "expired"),
        (r"유출|노출", "leaked"),
        (r"유효하지 않|잘못된|무효", "invalid not valid"),
        (r"활성화되지 않|비활성화|사용 설정되지 않", "disabled"),
        (r"권한", "permission"),
        (r"모델", "model"),
        (r"찾을 수 없|존재하지 않", "not found"),
        (r"지역|국가", "location region"),
        (r"결제|청구", "billing"),
        (r"차단", "blocked"),
        (r"안전", "safety"),
        (r"시간 ?초과|타임아웃", "timeout deadline"),
        (r"과부하", "overloaded"),
        (r"네트워크|연결", "network connect"),
        (r"接続リセット|连接重置|连接被重置", "connection reset"),
        (r"超限|超出|超过|超過|上限に達", "exceeded"),
        (r"每分钟|每分鐘|毎分|1\s?分あたり", "per minute"),
        (r"每天|每日|1\s?日あたり|日次", "per day daily"),
        (r"証明書|证书", "certificate"),
        (r"プロキシ|代理", "proxy"),
        (r"出力トークン|输出令牌|输出 token", "max tokens output"),
    )
)

# Words of guides written in Spanish, Portuguese, French, German, Indonesian and Vietnamese, as the English
# words the KB uses (whole words only; read in every text, since these scripts look like English).
LATIN_GLOSSARY: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(r"(?<!\w)(?:" + "|".join(words) + r")(?!\w)", re.I), english)
    for words, english in (
        (("exced(?:id[oa]s?|e|eu|ida)", "superad[oa]", "dépassée?", "überschritten", "melebihi", "vượt"), "exceeded"),
        (("cota", "cuota", "kuota", "kontingent"), "quota"),
        (("por d[ií]a", "(?<=/)d[ií]a", "di[aá]ri[oa]s?", "per hari", "mỗi ngày", "par jour"), "per day daily"),
        (("por minuto", "(?<=/)minuto", "per menit", "mỗi phút", "pro minute", "par minute"), "per minute"),
        (("chave", "clave", "kunci", "khóa", "schlüssel", "clé"), "key"),
        (("inv[aá]lid[oa]s?", "tidak valid", "không hợp lệ", "ungültig", "invalide"), "invalid"),
        (("expirad[oa]", "caducad[oa]", "kedaluwarsa", "hết hạn", "abgelaufen", "expirée?"), "expired"),
        (("bloquead[oa]s?", "diblokir", "bị chặn", "blockiert", "bloquée?"), "blocked"),
        (("seguridad", "segurança", "keamanan", "an toàn", "sicherheit", "sécurité"), "safety"),
        (("facturaci[oó]n", "faturamento", "cobran[cç]a", "penagihan", "thanh toán", "facturation"), "billing"),
        (("no encontrad[oa]", "não encontrad[oa]", "tidak ditemukan", "không tìm thấy", "nicht gefunden"), "not found"),
        (("permiss(?:ão|ões)", "permisos?", "quyền", "berechtigung(?:en)?"), "permission"),
        (("sobrecargad[oa]", "kelebihan beban", "quá tải", "überlastet", "surchargée?"), "overloaded"),
        (("regi[aã]o", "regi[oó]n", "pa[ií]s", "wilayah", "negara", "khu vực"), "location region"),
    )
)

# English words guides use for what the KB's ids and titles call otherwise.
SYNONYMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.I), word)
    for pattern, word in (
        (
            r"\b(?:wrong|incorrect|bad|non-working|not working|rejected)\s+(?:api\s+)?keys?\b|"
            r"\bkeys?\s+(?:is\s+|are\s+)?(?:wrong|incorrect|bad|rejected)\b|\b(?:missing or|or) wrong\b",
            "invalid",
        ),
        (r"\b(?:exposed|compromised|published|public repo)", "leaked"),
        (r"\bregional\b|\bgeo[- ]?(?:blocked|restricted|restrictions?)\b", "region location"),
        (r"\bthrottl\w*|\brate[- ]limited\b", "rate limit"),
        (r"\bnot enabled\b|\bturned off\b", "disabled"),
        (r"\btimed out\b|\btime-?outs?\b", "timeout"),
        (r"\bnetwork\w*|\bconnectivity\b|\bfirewall", "connect"),
        (
            r"\bnot (?:currently |yet )?(?:available|offered|supported) (?:in|for) your (?:location|country|region)",
            "unsupported",
        ),
    )
)

# Numbers that stand for names in the API's enums, read only where the text says which enum it is
# (finish reasons: the matcher's own table).
GRPC_CODES = {
    "1": "CANCELLED",
    "2": "UNKNOWN",
    "3": "INVALID_ARGUMENT",
    "4": "DEADLINE_EXCEEDED",
    "5": "NOT_FOUND",
    "7": "PERMISSION_DENIED",
    "8": "RESOURCE_EXHAUSTED",
    "9": "FAILED_PRECONDITION",
    "13": "INTERNAL",
    "14": "UNAVAILABLE",
    "16": "UNAUTHENTICATED",
}
FINISH_NUMBER_RE = re.compile(r"\bfinish_?reason\s*(?:[=:]|is|of)?\s*`?(\d)\b", re.I)
GRPC_NUMBER_RE = re.compile(r"\b(?:code\s*[=:]\s*|grpc (?:status |code )?|StatusCode\s*)(\d{1,2})\b", re.I)
STATUS_NAME_RE = re.compile(r"\b(?:" + "|".join(GRPC_CODES.values()) + r"|FAILED_PRECONDITION|OUT_OF_RANGE)\b")


# Status names spelt as words ("Error: `Invalid argument`"): the status they name.
STATUS_WORDS_RE = re.compile(
    r"\b(invalid argument|permission denied|resource exhausted|deadline exceeded|failed precondition)\b", re.I
)


def expand(text: str, *, number_kind: str | None = None) -> str:
    """`text` with enum numbers named and glossary words translated, appended so nothing is lost.

    `number_kind` ("finish_reason" or "grpc") says how to read a bare number that is a whole cell.
    """
    extra: list[str] = []
    extra += [f"finish_reason {FINISH_REASON_NUMBERS[n]}" for n in FINISH_NUMBER_RE.findall(text)]
    extra += [GRPC_CODES[n] for n in GRPC_NUMBER_RE.findall(text) if n in GRPC_CODES]
    bare = text.strip().split(None, 1)[0] if text.strip() else ""
    if number_kind == "finish_reason" and bare in FINISH_REASON_NUMBERS:
        extra.append(f"finish_reason {FINISH_REASON_NUMBERS[bare]}")
    elif number_kind == "grpc" and bare in GRPC_CODES and not STATUS_NAME_RE.search(text):
        extra.append(GRPC_CODES[bare])
    if re.search(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7a3]", text):
        extra += [english for pattern, english in GLOSSARY if pattern.search(text)]
    spelt = [m.upper().replace(" ", "_") for m in STATUS_WORDS_RE.findall(text)]
    extra += [status for status in spelt if status not in text]
    extra += [english for pattern, english in LATIN_GLOSSARY if pattern.search(text)]
    extra += [word for pattern, word in SYNONYMS if pattern.search(text)]
    return f"{text} ({'; '.join(dict.fromkeys(extra))})" if extra else text


def stem(word: str) -> str:
    """A crude stem: plural and -ion/-ing/-ed endings off, so headings and titles meet."""
    word = word.lower()
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        word = word[:-1]
    for suffix in ("ions", "ion", "ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


# Words that are not about the error: file names and URLs ("gemini-client.ts" is not about clients), and
# "support" as in "contact support" (only "not supported" names a family).
NOT_TOPIC_RE = re.compile(
    r"https?://\S+|\b[\w.-]+\.(?:tsx?|jsx?|py|java|kt|go|rb|php|cs|md|json|ya?ml|sh|ps1|toml|ini|cfg|html?)(?![A-Za-z0-9])|"
    r"(?<!not )(?<!n't )(?<!un)\bsupport\b",
    re.I,
)
CAMEL_RE = re.compile(r"(?<=[a-z])(?=[A-Z])")  # maxOutputTokens, finishReason: identifiers say their words


def terms(text: str) -> list[str]:
    """Content words of `text`, stemmed, without the generic ones; UPPER_CASE codes and camelCase split into words."""
    text = CAMEL_RE.sub(" ", NOT_TOPIC_RE.sub(" ", text))
    words = re.findall(r"[A-Za-z][A-Za-z]+", text.replace("_", " "))
    return [stem(w) for w in words if w.lower() not in GENERIC_WORDS and len(w) > 1]


SHARED_BY = 3  # a word in this many families' vocabularies does not name one on its own
MASS_CAP = 8.0  # about three distinctive words: more words in a heading do not dilute it further


@dataclass(frozen=True)
class TopicScore:
    entry_id: str
    score: float
    words: tuple[str, ...]


def _shared_statuses(kb: KnowledgeBase) -> dict[str, set[str]]:
    """Statuses that several unrelated families answer with (FAILED_PRECONDITION), each with those families."""
    by_status: dict[str, set[str]] = {}
    for entry_id, entry in kb.entries.items():
        if entry.status and entry.reviewed:
            by_status.setdefault(entry.status, set()).add(entry_id)
    return {
        status: family
        for status, family in by_status.items()
        if len({e for e in family if kb.entries[e].specialises not in family}) > 1
    }


class Topics:
    """Each family's vocabulary, read from the curated entries, and a scorer over it."""

    STRONG = 1.0
    WEAK = 0.35

    def __init__(self, kb: KnowledgeBase):
        strong: dict[str, set[str]] = {}
        weak: dict[str, set[str]] = {}
        tokens: dict[str, list[str]] = {}
        for sig in kb.signatures:
            if sig.kind in ("reasons", "finish_reasons"):
                tokens.setdefault(sig.entry_id, []).append(sig.text)
        for entry_id, entry in kb.entries.items():
            if not entry.reviewed:
                continue
            strong[entry_id] = set(
                terms(" ".join([entry_id.replace("-", " "), entry.title, *tokens.get(entry_id, [])]))
            )
            weak[entry_id] = set(terms(" ".join([entry.summary, *entry.causes]))) - strong[entry_id]
        n = len(strong) or 1
        df: dict[str, int] = {}
        for words in strong.values():
            for w in words:
                df[w] = df.get(w, 0) + 1
        self.idf = {w: math.log(1 + n / c) for w, c in df.items()}
        self.df = df
        self.unknown_idf = math.log(1 + n)
        self.strong, self.weak = strong, weak
        self.names = {entry_id: set(terms(entry_id.replace("-", " "))) for entry_id in strong}
        self.parents = {entry_id: kb.entries[entry_id].specialises for entry_id in strong}
        self.shared_statuses = _shared_statuses(kb)

    def distinctive(self, child: str, parent: str) -> set[str]:
        """Words of `child`'s id that its parent and its siblings do not use ("vertex" in vertex-quota-exhausted)."""
        siblings = {e for e, p in self.parents.items() if p == parent and e != child}
        taken = self.strong.get(parent, set()).union(*(self.names[e] for e in siblings))
        return self.names.get(child, set()) - taken

    def tell_apart(self, candidates: list[str], text: str, *, strict: bool = False) -> str | None:
        """Which of `candidates` `text` is about, by the words each has and the others lack; None if unclear.

        `strict`: the text must say so with two such words, or with one word no other family uses.
        """
        words = set(terms(text))
        own: dict[str, set[str]] = {}
        for c in candidates:
            others = set().union(*(self.strong.get(o, set()) for o in candidates if o != c))
            own[c] = words & (self.strong.get(c, set()) - others)
        mass = {c: sum(self.idf[w] for w in found) for c, found in own.items()}
        ranked = sorted(mass.items(), key=lambda kv: -kv[1])
        if not ranked or ranked[0][1] <= 0 or (len(ranked) > 1 and ranked[0][1] <= 2 * ranked[1][1]):
            return None
        best = ranked[0][0]
        if strict and len(own[best]) < 2 and not any(self.df[w] == 1 for w in own[best]):
            return None
        return best

    def score(self, text: str, *, capped: bool = True) -> list[TopicScore]:
        """Families ranked by the share of `text`'s distinctive words their vocabulary has.

        `capped` (for headings and error lines): two or more of a family's words name it even among
        many incidental ones. Sentences are scored uncapped: every word they say counts.
        """
        words = list(dict.fromkeys(terms(text)))
        if not words:
            return []
        # Words no family uses count a quarter: a heading's odd word should not hide what it names.
        mass = sum(self.idf.get(w, self.unknown_idf * 0.25) for w in words)
        ranked = []
        for entry_id, vocab in self.strong.items():
            hit = [w for w in words if w in vocab]
            got = sum(self.idf[w] for w in hit) * self.STRONG
            if len(hit) == 1 and (hit[0] not in self.names[entry_id] or self.df[hit[0]] >= SHARED_BY):
                got *= 0.5  # one title word many families share ("file", "model", "key") is a hint, not a subject
            got += sum(self.idf.get(w, 0.0) for w in words if w in self.weak[entry_id] and w not in hit) * self.WEAK
            if hit:
                share = got / (min(mass, MASS_CAP) if capped and len(hit) > 1 else mass)
                ranked.append(TopicScore(entry_id, share, tuple(hit)))
        return sorted(ranked, key=lambda t: (-t.score, t.entry_id))


# What is not a Gemini API problem, with the reason shown in the dry run. Checked against what a unit
# is about (its heading, the identifying cells of a row, the error line and cause of a bullet group).
OTHER_VENDOR_RE = re.compile(
    r"\b(?:openai|chatgpt|gpt-[345]\w*|deepseek|anthropic|claude|mistral|cohere|groq|bedrock|ollama|"
    r"azure openai|perplexity|xai|grok)\b",
    re.I,
)
SCOPE_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "own-endpoint",
        re.compile(
            r"\bour (?:own )?(?:gateway|proxy|portal|endpoint|service|backend|api|server)\b|"
            r"(?<![\w.])/(?:api|internal|v\d)/[\w/-]+|\bin our (?:gateway|proxy)\b",
            re.I,
        ),
        "the application's own endpoint or status, not the Gemini API's",
    ),
    (
        "local-tooling",
        re.compile(
            r"\b(?:EADDRINUSE|MODULE_NOT_FOUND|command not found|sandbox\w*|exit codes?|npm (?:install|run|WARN)|"
            r"node_modules|settings\.json|Docker|Podman|Seatbelt|(?-i:PATH)\b|interactive mode|preflight)",
            re.I,
        ),
        "a local tool or install problem, outside the knowledge base",
    ),
)


# Words in a family's id that name a platform: the family fits only an article that names it too.
PLATFORM_WORDS: dict[str, re.Pattern[str]] = {"vertex": re.compile(r"\bvertex\b|aiplatform", re.I)}


def platform_missing(entry_id: str, text: str) -> str | None:
    """The platform `entry_id` is specific to when `text` never names it, else None."""
    for word in entry_id.split("-"):
        pattern = PLATFORM_WORDS.get(word)
        if pattern and not pattern.search(text):
            return word
    return None


def out_of_scope(subject: str) -> str | None:
    """Why `subject` is outside the knowledge base, or None when it may be a Gemini API problem."""
    vendor = OTHER_VENDOR_RE.search(subject)
    if vendor and not re.search(r"\bgemini\b|\bvertex\b|\bgoogle\b", subject, re.I):
        return f"another vendor's error ({vendor.group(0)})"
    for _name, pattern, reason in SCOPE_RULES:
        if pattern.search(subject):
            return reason
    return None
