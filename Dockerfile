# The bot: slim Python base, non-root user; long polling, or a webhook server on 8080
# when WEBHOOK_URL is set.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY providers ./providers
RUN pip install . && useradd --create-home --uid 10001 bot

USER bot
EXPOSE 8080
CMD ["python", "-m", "bot"]
