"""utils/config.py: parsing, validation messages, .env precedence, secrets."""

import subprocess
import sys

import pytest

from selftests.conftest import REPO_ROOT
from utils import config
from utils.config import ConfigError, load_settings, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("2h", 7200), ("1h30m", 5400), ("1h2m3s", 3723), ("90", 90), (" 10S ", 10)],
)
def test_durations_that_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "", "0", "0s", "1.5m", "m", "-5s", "5x", "30s5m"])
def test_durations_that_do_not_parse(text):
    with pytest.raises(ConfigError) as error:
        parse_duration(text)
    message = str(error.value)
    assert message.startswith(f"LOAD_DURATION={text!r} is not valid")
    assert "for example LOAD_DURATION=5m" in message
    assert "\n" not in message


def test_format_duration_round_trips():
    for seconds in (1, 59, 60, 61, 3600, 5400, 3723):
        assert parse_duration(config.format_duration(seconds)) == seconds


def test_defaults_point_at_localhost():
    settings = load_settings({})
    assert settings.target_host == "http://127.0.0.1:8080"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert (settings.users, settings.spawn_rate, settings.duration_seconds) == (10, 2.0, 60)
    assert settings.dd_api_key == "" and settings.slack_webhook_url == ""


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TARGET_HOST", "localhost:8080", "TARGET_HOST='localhost:8080' is not valid: a URL starting with http://"),
        ("TARGET_HOST", "ftp://x", "TARGET_HOST='ftp://x' is not valid"),
        ("TARGET_HOST", "http://x:99999", "TARGET_HOST='http://x:99999' is not valid: the port must be"),
        ("LOAD_USERS", "0", "LOAD_USERS='0' is not valid: a whole number of at least 1"),
        ("LOAD_USERS", "-4", "LOAD_USERS='-4' is not valid"),
        ("LOAD_USERS", "ten", "LOAD_USERS='ten' is not valid"),
        ("LOAD_SPAWN_RATE", "0", "LOAD_SPAWN_RATE='0' is not valid: a number greater than 0"),
        ("LOAD_SPAWN_RATE", "nan", "LOAD_SPAWN_RATE='nan' is not valid"),
        ("LOAD_DURATION", "5 minutes", "LOAD_DURATION='5 minutes' is not valid"),
        ("REDIS_URL", "http://127.0.0.1:6379", "REDIS_URL='http://127.0.0.1:6379' is not valid: a URL starting with"),
        ("REDIS_URL", "redis://127.0.0.1:abc", "REDIS_URL='redis://127.0.0.1:abc' is not valid: a port"),
        ("REDIS_URL", "redis://127.0.0.1:6379/x", "the database after the last / must be a number"),
        ("DD_DOGSTATSD_PORT", "70000", "DD_DOGSTATSD_PORT='70000' is not valid: a port number from 1 to 65535"),
        ("DD_SITE", "not a site", "DD_SITE='not a site' is not valid"),
        ("SLACK_WEBHOOK_URL", "hooks.slack.com/x", "SLACK_WEBHOOK_URL=<hidden, 17 characters> is not valid"),
    ],
)
def test_bad_values_give_one_line_naming_variable_value_and_example(variable, value, expected):
    with pytest.raises(ConfigError) as error:
        load_settings({variable: value})
    message = str(error.value)
    assert message.startswith(f"{variable}="), message
    assert expected in message
    assert f"for example {variable}=" in message
    assert "\n" not in message


def test_overrides_win_and_are_named_as_flags():
    settings = load_settings({"LOAD_USERS": "5"}, users="7")
    assert settings.users == 7
    with pytest.raises(ConfigError, match=r"^--users='x' is not valid"):
        load_settings({"LOAD_USERS": "5"}, users="x")


def test_environment_wins_over_env_file(tmp_path):
    env_file = tmp_path / "kit.env"
    env_file.write_text("LOAD_USERS=3\nTARGET_HOST=http://10.0.0.1:9000\n")
    settings = load_settings({"ENV_FILE": str(env_file), "LOAD_USERS": "8"})
    assert settings.users == 8  # the real environment
    assert settings.target_host == "http://10.0.0.1:9000"  # the file
    assert settings.env_file == str(env_file)


def test_missing_env_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^ENV_FILE='.*nope.env' is not valid: no such file"):
        load_settings({"ENV_FILE": str(tmp_path / "nope.env")})


def test_secrets_never_show_in_repr():
    settings = load_settings(
        {
            "DD_API_KEY": "dd-secret-key-123",
            "SLACK_WEBHOOK_URL": "https://webhook.invalid/hook/slack-secret",
            "LOGIN_PASSWORD": "pw-secret",
            "REDIS_URL": "redis://:redis-secret@127.0.0.1:6379/0",
        }
    )
    shown = repr(settings) + str(settings)
    for secret in ("dd-secret-key-123", "slack-secret", "pw-secret", "redis-secret"):
        assert secret not in shown
    assert "redis://:***@127.0.0.1:6379/0" in shown


def test_bad_url_message_hides_the_password():
    with pytest.raises(ConfigError) as error:
        load_settings({"REDIS_URL": "redis://:hunter2@127.0.0.1:99999"})
    assert "hunter2" not in str(error.value)


def test_env_file_is_found_from_any_current_directory(tmp_path):
    """The default .env is the repository's, wherever the process starts (workers too)."""
    code = "from utils import config; print(config.DEFAULT_ENV_FILE)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == str(REPO_ROOT / ".env")


def test_get_settings_exits_2_with_one_line(tmp_path):
    """What a locustfile sees at import: exit code 2, one line, no traceback."""
    result = subprocess.run(
        [sys.executable, "-c", "from utils import config; config.get_settings()"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "LOAD_USERS": "many", "ENV_FILE": "/dev/null"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: LOAD_USERS='many' is not valid: a whole number of at least 1 is needed, for example LOAD_USERS=10"
    ]
