"""What is not the article: page chrome, membership and newsletter blurbs, related links, book lists.

Three declared tables: HTML tags and class/id words dropped before text is extracted;
headings that open a stretch of boilerplate; short blocks that are boilerplate on their own.
"""

from __future__ import annotations

import re

# Page chrome that never holds the article's advice.
DROP_TAGS = frozenset(
    {"nav", "aside", "footer", "header", "form", "script", "style", "noscript", "iframe", "svg", "button", "template"}
)

_ATTR_WORDS = (
    "nav",
    "navbar",
    "menu",
    "breadcrumbs?",
    "sidebar",
    "side-bar",
    "footer",
    "cookies?",
    "consent",
    "banner",
    "newsletter",
    "subscribe",
    "subscription",
    "signup",
    "sign-up",
    "share",
    "sharing",
    "social",
    "related",
    "recommended",
    "author",
    "bio",
    "byline",
    "comments?",
    "respond",
    "promo",
    "advert",
    "ads?",
    "sponsor",
    "popup",
    "modal",
    "paywall",
    "membership",
    "member",
    "premium",
    "toc",
    "table-of-contents",
    "tags?",
    "widget",
)
# Matched against the class, id and role of a tag, as whole dash- or underscore-separated words.
BOILERPLATE_ATTR_RE = re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(_ATTR_WORDS) + r")(?![A-Za-z0-9])", re.I)

# Headings that open boilerplate: everything under them goes, up to the next heading of the article.
BOILERPLATE_HEADING_RE = re.compile(
    r"^\W*(?:related(?: \w+){0,3}(?: articles?| posts?| guides?| reading| links)?|recommended(?: \w+){0,3}|"
    r"more from\b.*|further reading|read next|you (?:may|might) also like.*|popular posts?|"
    r"(?:recommended )?books?\b.*|share(?: this)?(?: \w+)?|comments?|responses?(?: \(\d+\))?|leave a (?:reply|comment)|"
    r"about the author|written by\b.*|subscribe\b.*|newsletter|sign up\b.*|join\b.*|continue reading|"
    r"thank you for reading\b.*|thanks for reading\b.*|what you'?ll learn|support (?:us|this site)\b.*|"
    r"table of contents|contents|official checks and documentation|see all\b.*)\W*$",
    re.I,
)
# Headings that are a lone label of the page (a badge, a share bar): dropped without what follows them.
BOILERPLATE_LABEL_RE = re.compile(
    r"^\W*(?:premium article|terms|privacy|send feedback|skip to main content|sign in|"
    r"member-only story|members? only|editorial note|corrections?|tags|share|listen|follow|"
    r"updated \w+ \d{1,2},? ?\d{0,4}|\d+ min read|advertisement|sponsored|reply|"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\w* \d{1,2},? \d{4}|\d{4}-\d\d-\d\d)\W*$",
    re.I,
)

# Short blocks that are boilerplate wherever they appear.
BOILERPLATE_TEXT_RE = re.compile(
    r"(?:\bmembers?\b(?!\w)|\bmembership\b|\bsubscribe\b|\bnewsletter\b|\bsign up\b|^sign in\b|"
    r"\bsign in to (?:continue|read|comment|follow)\b|\bad-free\b|"
    r"\baffiliate links?\b|\bcookies?\b|\bclaps?\b|\bfollowers?\b|\b\d+ min(?:ute)?s? read\b|"
    r"^posted (?:on|in|by)\b|\bpremium article\b|"
    r"\bcontinue reading\b|thank you for reading|thanks for reading|\bview membership\b|\bcancel anytime\b|"
    r"\bsecure payment\b|\bshare (?:this|on)\b|\bcopyright\b|©|all rights reserved|\bpublished in\b|"
    r"\beditorial note\b|^corrections?:|\bleave a (?:reply|comment)\b|\bwritten by\b|\bsee all\b|"
    r"\brecommended from\b|\bmore from\b|\bopen in app\b|\blisten\b$|^share$|^follow$|^updated \w+ \d{4}$|"
    r"was this (?:page|article|post|answer) helpful|\blast (?:edited|updated|reviewed|modified)\b|\b\d+ watchers?\b|"
    r"^_?labels?:|^see also:|\bedit this page\b|^back to\b)",
    re.I,
)
BOILERPLATE_TEXT_MAX = 400  # longer blocks are content even when they mention members or cookies

# Headings that end a stretch of boilerplate in text without heading levels.
CONTENT_HEADING_RE = re.compile(r"^(?:[1-5]\d\d\b|faq\b|frequently asked|q ?& ?a\b|common (?:error )?messages)", re.I)


def is_boilerplate_heading(text: str) -> bool:
    """A heading that opens a stretch of boilerplate (related links, books, comments, sign-up)."""
    return BOILERPLATE_HEADING_RE.match(text.strip()) is not None


def is_boilerplate_label(text: str) -> bool:
    """A heading-like line that is a page label on its own ("Premium Article", "Share")."""
    return BOILERPLATE_LABEL_RE.match(text.strip()) is not None


def is_boilerplate_text(text: str) -> bool:
    """A short paragraph or list item that is a site's blurb, not advice."""
    text = text.strip()
    return len(text) <= BOILERPLATE_TEXT_MAX and BOILERPLATE_TEXT_RE.search(text) is not None


def ends_boilerplate(text: str) -> bool:
    """A heading that starts content again after boilerplate (text has no levels to tell by)."""
    return CONTENT_HEADING_RE.match(text.strip()) is not None and not is_boilerplate_heading(text)
