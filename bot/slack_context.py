"""Text a Slack message points at, fetched for the answer service: the first message of the thread a mention
is in, and long pastes Slack keeps as a text snippet (a file share). Text only, bounded, from Slack only.
"""

from __future__ import annotations

import logging
import urllib.request
from http.client import HTTPException
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack_events import Incoming, Trigger, message_files

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 64 * 1024  # a paste, not a log dump: larger snippets are not read
FILE_TIMEOUT_S = 5.0
# Slack's filetype ids of text (what a pasted snippet gets) and the MIME types a text file is served as;
# both must say text before a file is read.
TEXT_FILETYPES = frozenset(
    {"text", "plain", "log", "json", "javascript", "python", "shell", "bash", "yaml", "xml", "java", "go", "csv"}
    | {"typescript", "markdown", "ruby", "kotlin", "swift", "c", "cpp", "csharp", "php", "rust", "sql", "diff"}
)
TEXT_MIMETYPES = frozenset({"application/json", "application/javascript", "application/xml", "application/x-yaml"})
SLACK_FILE_HOSTS = frozenset({"files.slack.com", "files.slack-gov.com"})
REPLIES_LIMIT = 1  # conversations.replies lists the thread's first message first: that is the one needed


def is_text_file(file: dict) -> bool:
    """A snippet or file that says, by both its Slack filetype and its MIME type, that it is text."""
    filetype = str(file.get("filetype") or "").lower()
    mimetype = str(file.get("mimetype") or "").lower().split(";")[0].strip()
    size = file.get("size")
    return (
        filetype in TEXT_FILETYPES
        and (mimetype.startswith("text/") or mimetype in TEXT_MIMETYPES)
        and isinstance(size, int)
        and 0 < size <= MAX_FILE_BYTES
        and not file.get("is_external")
    )


class SlackFetcher:
    """Reads what a message points at with the bot token; every failure leaves the paste as it was."""

    def __init__(self, *, token: str | None, api_url: str | None):
        self.token = token
        # Files are fetched with the bot token, so only from Slack's file hosts (or the Web API host that
        # SLACK_API_URL names: a proxy, or the stand-in in tests): a forged url_private must not get the token.
        self.hosts = set(SLACK_FILE_HOSTS)
        self.plain_hosts: set[str] = set()
        if api_url:
            parts = urlsplit(api_url)
            if parts.netloc:
                self.hosts.add(parts.netloc)
                if parts.scheme == "http":
                    self.plain_hosts.add(parts.netloc)

    def allowed_url(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.netloc not in self.hosts:
            return False
        return parts.scheme == "https" or (parts.scheme == "http" and parts.netloc in self.plain_hosts)

    def extra_text(self, client: WebClient, incoming: Incoming, *, bot_user_id: str | None, bot_id: str | None) -> str:
        """The thread's first message (for a mention inside someone's thread) and the text files. A shortcut
        names its message: that message alone is the paste."""
        parts = []
        if incoming.in_thread_of_other and incoming.trigger is Trigger.MENTION:
            parts.append(self.thread_parent(client, incoming, bot_user_id=bot_user_id, bot_id=bot_id))
        parts.extend(self.file_text(client, f) for f in incoming.files)
        return "\n\n".join(p for p in parts if p.strip())

    def thread_parent(
        self, client: WebClient, incoming: Incoming, *, bot_user_id: str | None, bot_id: str | None
    ) -> str:
        """The first message of the thread (its text and text files), unless the bot wrote it."""
        try:
            response = client.conversations_replies(
                channel=incoming.channel, ts=incoming.thread_ts, limit=REPLIES_LIMIT
            )
        except SlackApiError as exc:
            log.warning("conversations.replies in %s failed: %s", incoming.channel, exc.response.get("error"))
            return ""
        except (OSError, HTTPException) as exc:
            log.warning("conversations.replies in %s: %s", incoming.channel, type(exc).__name__)
            return ""
        parent = next((m for m in response.get("messages") or [] if m.get("ts") == incoming.thread_ts), None)
        if not isinstance(parent, dict):
            return ""
        ours = (bot_id and parent.get("bot_id") == bot_id) or (bot_user_id and parent.get("user") == bot_user_id)
        if ours:
            return ""  # the bot's own message: nothing of the user's to match
        texts = [str(parent.get("text") or "")]
        texts.extend(self.file_text(client, f) for f in message_files(parent))
        return "\n\n".join(t for t in texts if t.strip())

    def file_text(self, client: WebClient, file: dict) -> str:
        """A text snippet's content ('' for anything else, or when it cannot be read)."""
        if file.get("file_access") == "check_file_info" or not file.get("url_private") or not file.get("filetype"):
            try:  # the event carried a stub of the file: ask for the whole object
                file = client.files_info(file=str(file.get("id") or "")).get("file") or {}
            except SlackApiError as exc:
                log.warning("files.info failed: %s", exc.response.get("error"))
                return ""
            except (OSError, HTTPException) as exc:
                log.warning("files.info: %s", type(exc).__name__)
                return ""
        if not is_text_file(file):
            log.info("file %s not read: %s, %s", file.get("id"), file.get("filetype"), file.get("mimetype"))
            return ""
        url = str(file.get("url_private_download") or file.get("url_private") or "")
        if not self.allowed_url(url) or not self.token:
            log.warning("file %s not read: its URL is not on a Slack file host", file.get("id"))
            return ""
        return self._download(url, str(file.get("id")))

    def _download(self, url: str, file_id: str) -> str:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        opener = urllib.request.build_opener(_NoRedirect)  # a redirect must not carry the token elsewhere
        try:
            with opener.open(request, timeout=FILE_TIMEOUT_S) as response:
                data = response.read(MAX_FILE_BYTES + 1)
                ctype = response.headers.get("Content-Type", "")
        except (OSError, HTTPException, ValueError) as exc:
            log.warning("file %s: download failed (%s)", file_id, type(exc).__name__)
            return ""
        if len(data) > MAX_FILE_BYTES or b"\x00" in data or ctype.startswith("text/html"):
            log.warning("file %s: not a text snippet of at most %d bytes; not read", file_id, MAX_FILE_BYTES)
            return ""
        return data.decode("utf-8", "replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None
