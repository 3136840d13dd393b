# The bot: slim Python base, non-root user; long polling, or a webhook server on 8080
# when WEBHOOK_URL is set. uv.lock's versions go in a layer of their own, before the
# code, so a code change rebuilds only the last layers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# Long polling serves /healthz on this loopback port for the HEALTHCHECK below
# (METRICS_HOST stays 127.0.0.1: nothing outside the container sees it). Set
# METRICS_PORT=0 to serve nothing; webhook mode ignores it.
ENV METRICS_PORT=9090

# uv at the version scripts/common.sh pins; the bot's own user.
RUN pip install uv==0.13.9 && useradd --create-home --uid 10001 bot

WORKDIR /app
# The dependencies alone, exactly as uv.lock has them (hash-checked): this layer is
# rebuilt only when uv.lock or pyproject.toml change.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-install-project --no-editable

# The bot itself.
COPY README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY providers ./providers
RUN uv sync --locked --no-editable

USER bot
EXPOSE 8080
# Liveness: GET /healthz on the webhook server (WEBHOOK_URL set; WEBHOOK_PORT, 8080) or
# on long polling's METRICS_PORT; with METRICS_PORT=0 in long polling there is nothing
# to ask, and the check passes. The settings must come from the environment (compose
# env_file, docker run --env-file) for this to see them.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; e = os.environ.get; p = e('WEBHOOK_PORT', '8080') if e('WEBHOOK_URL') else e('METRICS_PORT', '0'); p == '0' or u.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=4)"]
# On SIGTERM the bot lets replies in flight finish for SHUTDOWN_GRACE_SECONDS (7) and
# exits about 3 s later: stop it with more than Docker's default 10 s (docker stop -t 15;
# compose.yaml sets stop_grace_period).
CMD ["python", "-m", "bot"]
