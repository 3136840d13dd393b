"""The entry point and settings: clear one-line configuration errors, secrets kept out of logs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bot.__main__ import COMMANDS, main
from bot.app.logs import RedactingFilter
from bot.settings import ConfigError, Settings, load_settings

pytestmark = pytest.mark.timeout(30)

_ENV_NAMES = (
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_BASE_URL",
    "OPENAI_BASE_URL",
    "OPENAI_MODELS",
    "REDIS_URL",
    "DEFAULT_MODEL",
    "CUSTOM_PROVIDERS",
    "HISTORY_MAX_TURNS",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """No variable of the developer's environment or .env leaks into these tests."""
    for name in _ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(str(tmp_path))


@pytest.fixture(autouse=True)
def keep_root_logger() -> Iterator[None]:
    """main() installs its log handler on stderr (captured here); take it out afterwards, so
    later tests do not write to a closed capture."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def runnable_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token and one OpenAI-compatible model, every URL on a closed loopback port."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("TELEGRAM_BASE_URL", "http://127.0.0.1:9/bot")  # never the internet
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_MODELS", "m1")


def test_missing_token_names_the_variable() -> None:
    """Without TELEGRAM_BOT_TOKEN the error says exactly that."""
    with pytest.raises(ConfigError, match=r"^TELEGRAM_BOT_TOKEN is not set$"):
        load_settings()


def test_invalid_value_names_variable_and_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    """An out-of-range number names its variable and the reason, never the token."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:secret-token-value")
    monkeypatch.setenv("HISTORY_MAX_TURNS", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith("HISTORY_MAX_TURNS is invalid:")
    assert "secret-token-value" not in str(caught.value)


def test_bad_custom_providers_json_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """CUSTOM_PROVIDERS that is not JSON is reported against that variable."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("CUSTOM_PROVIDERS", "[not json")
    with pytest.raises(ConfigError, match=r"^CUSTOM_PROVIDERS is invalid"):
        load_settings()


@pytest.mark.parametrize(
    ("url", "secret", "expected"),
    [
        ("http://bot.example.org/hook", "s3cret", r"^WEBHOOK_URL is invalid: must be an https://"),
        ("https://bot.example.org/hook", "", r"WEBHOOK_SECRET must be set with WEBHOOK_URL"),
        ("https://bot.example.org/hook", "has space", r"^WEBHOOK_SECRET is invalid: must be 1-256"),
    ],
)
def test_webhook_settings_are_checked(
    monkeypatch: pytest.MonkeyPatch, url: str, secret: str, expected: str
) -> None:
    """Webhook mode needs an HTTPS URL and a secret token of the Bot API's alphabet; the
    error never shows the secret."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("WEBHOOK_URL", url)
    monkeypatch.setenv("WEBHOOK_SECRET", secret)
    with pytest.raises(ConfigError, match=expected) as caught:
        load_settings()
    assert not secret or secret not in str(caught.value)
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org/hook")
    monkeypatch.setenv("WEBHOOK_SECRET", "a-Good_secret1")
    assert load_settings().webhook_secret.get_secret_value() == "a-Good_secret1"


def test_main_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """python -m bot without configuration prints one line on stderr and returns 2."""
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err == "configuration error: TELEGRAM_BOT_TOKEN is not set\n"


def test_main_rejects_default_model_that_is_not_enabled(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A DEFAULT_MODEL naming a model no platform serves is a configuration error at start-up."""
    runnable_env(monkeypatch)
    monkeypatch.setenv("DEFAULT_MODEL", "openai:nope")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "DEFAULT_MODEL" in err and len(err.strip().splitlines()) == 1


def test_webhook_url_runs_the_webhook_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """With WEBHOOK_URL set, ``python -m bot`` serves the webhook instead of polling."""
    import bot.app.webhook

    served: list[str] = []

    async def fake_serve(settings: Settings) -> None:
        served.append(settings.webhook_url)

    monkeypatch.setattr(bot.app.webhook, "serve_webhook", fake_serve)
    runnable_env(monkeypatch)
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org/hook")
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret")
    assert main([]) == 0
    assert served == ["https://bot.example.org/hook"]


def test_python_m_bot_has_no_traceback(tmp_path: object) -> None:
    """The real process with no configuration exits 2 with no traceback."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "bot"],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=20,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "TELEGRAM_BOT_TOKEN" in done.stderr


def test_redacting_filter_scrubs_messages_and_tracebacks() -> None:
    """Secrets in a record's message, arguments and traceback are replaced by ***."""
    token = "123456:AAAbbbCCCdddEEE"
    redactor = RedactingFilter([token, "short"])
    try:
        raise RuntimeError(f"POST https://api.telegram.org/bot{token}/getMe failed")
    except RuntimeError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "url %s", (token,), sys.exc_info()
        )
    assert redactor.filter(record)
    assert token not in record.getMessage() and "url ***" in record.getMessage()
    assert "bot***/getMe" in record.getMessage()


def test_env_example_lists_every_setting() -> None:
    """Every setting appears (set or commented) in .env.example, so operators can find it."""
    from pathlib import Path

    from bot.settings import Settings

    example = (Path(__file__).parents[2] / ".env.example").read_text(encoding="utf-8")
    missing = [name.upper() for name in Settings.model_fields if f"{name.upper()}=" not in example]
    assert missing == []


def test_console_script_points_at_main() -> None:
    """The installed `classbot` console script runs bot.__main__:main."""
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "classbot"]
    assert script.value == "bot.__main__:main"


def test_limit_settings_reach_the_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    """LIMIT_* variables become the send scheduler's limits (the group burst among them)."""
    from bot.app.wiring import limits_of

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:secret-token-value")
    monkeypatch.setenv("LIMIT_GROUP_BURST", "3")
    monkeypatch.setenv("LIMIT_PER_GROUP_PER_MINUTE", "15")
    limits = limits_of(load_settings())
    assert (limits.per_group_burst, limits.per_group_per_minute) == (3, 15)
    monkeypatch.delenv("LIMIT_GROUP_BURST")
    assert limits_of(load_settings()).per_group_burst == 10


@pytest.mark.parametrize("command", [None, "run", "check", "chat"])
def test_help_of_classbot_and_each_command(
    command: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`classbot [command] --help` exits 0 and shows that command's description under the
    name classbot; the top level lists every command."""
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"] if command else ["--help"])
    assert exited.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert out.startswith(f"usage: classbot {command or ''}".rstrip())
    if command is None:
        assert all(f"{name} {summary}" in out for name, (summary, _) in COMMANDS.items())
    else:
        assert " ".join(COMMANDS[command][1].split()) in out


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown command exits 2 with argparse's usage line naming the choices."""
    with pytest.raises(SystemExit) as exited:
        main(["serve"])
    assert exited.value.code == 2
    assert "invalid choice: 'serve'" in capsys.readouterr().err


def test_check_command_runs_the_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`classbot check` validates and probes: a refused loopback endpoint gives exit status 1."""
    runnable_env(monkeypatch)
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "configuration: OK (1 models enabled, default openai:m1)" in out
    assert "FAILED: the default model's platform 'openai' did not answer" in out


def test_the_entry_sets_ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() asks PTB for timedelta periods before anything else, and keeps an operator's value."""
    monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    assert main([]) == 2  # no token: stops at the settings, after the entry's set-up
    assert os.environ["PTB_TIMEDELTA"] == "true"
    monkeypatch.setenv("PTB_TIMEDELTA", "false")
    main([])
    assert os.environ["PTB_TIMEDELTA"] == "false"


def test_build_application_leaves_the_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the Application does not write PTB_TIMEDELTA (or anything) into os.environ."""
    from bot.app.wiring import build_application

    runnable_env(monkeypatch)
    settings = load_settings()
    monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    before = dict(os.environ)
    build_application(settings)
    assert dict(os.environ) == before
