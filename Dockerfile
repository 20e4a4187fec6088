# gemini-kb: the Slack bot. Build: docker build -t gemini-kb .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GEMINI_KB_DB=/app/data/kb.sqlite \
    GEMINI_KB_STATE_DB=/var/lib/gemini-kb/state.sqlite

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY kb ./kb
COPY ingest ./ingest

RUN pip install . \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin gemini \
    && mkdir -p /app/data /var/lib/gemini-kb \
    && gemini-kb ingest \
    && chown -R gemini /var/lib/gemini-kb

USER 10001
EXPOSE 3000
CMD ["gemini-kb", "serve"]
