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
# HTTP mode (`serve --http`): /healthz is 200 while the knowledge base is loaded, 503 when it is not. Socket
# Mode and the console listen on no port: the check then passes. Standard library only (no curl in slim).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import glob, os, urllib.request as u; \
cmds = [open(f, 'rb').read().decode(errors='replace').split('\\0') for f in glob.glob('/proc/[0-9]*/cmdline')]; \
a = next((c for c in cmds if '--http' in c), None); \
port = a[a.index('--port') + 1] if a and '--port' in a else os.environ.get('PORT') or '3000'; \
a and u.urlopen('http://127.0.0.1:' + port + '/healthz', timeout=4)"]
CMD ["gemini-kb", "serve"]
