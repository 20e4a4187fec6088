# gemini-kb: the Slack bot. Build: docker build -t gemini-kb .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GEMINI_KB_DB=/app/data/kb.sqlite \
    GEMINI_KB_STATE_DB=/var/lib/gemini-kb/state.sqlite \
    GEMINI_KB_HOST=0.0.0.0 \
    GEMINI_KB_HEALTH_FILE=/tmp/gemini-kb-health.json

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
# The running bot rewrites $GEMINI_KB_HEALTH_FILE every 5 s (bot/health_file.py): in HTTP mode with its own
# /healthz URL, whatever --port or $PORT it was given (the check then asks /healthz: 200 while the knowledge
# base is loaded); in Socket Mode with whether the WebSocket to Slack is open. A missing, stale (30 s) or
# unhealthy file fails the check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-m", "bot.health_file"]
# Exec form: the bot is PID 1 and gets SIGTERM itself; it installs a handler (PID 1 ignores signals that have
# none), stops taking events, finishes the work in flight for up to 8 s and leaves the rest in the state
# volume for the next start. Without Slack tokens it exits 2 saying what to set (no console in a container).
STOPSIGNAL SIGTERM
CMD ["gemini-kb", "serve", "--no-console"]
