"""Log redaction covers every secret of the settings, found from Settings' own field types."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, get_args

import pytest
from pydantic import BaseModel, SecretStr

from bot.app.logs import RedactingFilter, secrets_of, setup_logging
from bot.settings import Settings

REDIS_PASSWORD = "pa%40ss-word-42"
"""A ``REDIS_URL`` password as written in the URL (``%40`` is ``@``)."""


@pytest.fixture(autouse=True)
def _keep_root_logger() -> Iterator[None]:
    """Put the root logger's handlers and level back after setup_logging replaced them."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _secret_fields(model: type[BaseModel]) -> list[str]:
    """The fields of ``model`` declared ``SecretStr`` (alone or in a union)."""
    return [
        name
        for name, field in model.model_fields.items()
        if field.annotation is SecretStr or SecretStr in get_args(field.annotation)
    ]


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside ``annotation`` (``list[CustomEndpoint]`` → CustomEndpoint)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _nested_models(arg)]


def settings_with_every_secret() -> tuple[Settings, dict[str, str]]:
    """Settings whose every ``SecretStr``, top-level or in a nested model, holds its own value.

    Built with ``model_construct`` (no validation), so that a future field's format
    rules cannot keep it out of the test. Returns the settings and path → value.
    """
    values: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for name in _secret_fields(Settings):
        secrets[name] = f"secret-of-{name}-0123456789"
        values[name] = SecretStr(secrets[name])
    for name, field in Settings.model_fields.items():
        for model in _nested_models(field.annotation):
            nested = {}
            for inner in _secret_fields(model):
                secrets[f"{name}[0].{inner}"] = f"secret-of-{name}-{inner}-0123456789"
                nested[inner] = SecretStr(secrets[f"{name}[0].{inner}"])
            if nested:
                values[name] = [model.model_construct(**nested)]
    values["redis_url"] = f"redis://bot:{REDIS_PASSWORD}@127.0.0.1:6379/0"
    return Settings.model_construct(**values), secrets


def test_every_secret_field_of_settings_is_redacted_from_logs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each SecretStr field of Settings (nested ones too) and the REDIS_URL password are
    replaced by *** in a logged message and traceback: a new secret field cannot slip by."""
    settings, secrets = settings_with_every_secret()
    # the walk over the field types found the secrets this bot is known to have
    assert {"telegram_bot_token", "webhook_secret", "openai_api_key", "zju_api_key",
            "ustb_easy_session", "ustb_cookie_vjuid_login", "custom_providers[0].api_key"
            } <= set(secrets)  # fmt: skip
    setup_logging(settings)
    leaked = [*secrets.values(), REDIS_PASSWORD, "pa@ss-word-42"]
    try:
        raise RuntimeError(" ".join(leaked))
    except RuntimeError:
        logging.getLogger("test").exception("values: %s", " | ".join(leaked))
    err = capsys.readouterr().err
    assert "values: ***" in err and "RuntimeError: ***" in err
    assert [value for value in leaked if value in err] == []


def test_empty_secrets_and_a_url_without_password_add_nothing() -> None:
    """secrets_of returns only the secrets that are set: no empty string, no URL part."""
    settings = Settings.model_construct(
        telegram_bot_token=SecretStr("123:token-value-abc"), redis_url="redis://127.0.0.1:6379/0"
    )
    assert secrets_of(settings) == ["123:token-value-abc"]


def test_setup_logging_uses_the_log_level(capsys: pytest.CaptureFixture[str]) -> None:
    """LOG_LEVEL sets the root level: below it nothing is written."""
    settings = Settings.model_construct(telegram_bot_token=SecretStr("1:x"), log_level="warning")
    setup_logging(settings)
    logging.getLogger("test").info("quiet")
    logging.getLogger("test").warning("loud")
    err = capsys.readouterr().err
    assert "loud" in err and "quiet" not in err


def test_a_percent_encoded_secret_is_redacted_too() -> None:
    """A secret as it shows in a URL path (``:`` as ``%3A``, ``/`` as ``%2F``) is replaced too."""
    redactor = RedactingFilter(["123456:AAA/bbb+ccc"])
    line = '"POST /123456%3AAAA%2Fbbb%2Bccc HTTP/1.1" 200'
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, line, (), None)
    assert redactor.filter(record)
    assert record.getMessage() == '"POST /*** HTTP/1.1" 200'
