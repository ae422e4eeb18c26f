"""All of the kit's settings, in one place.

Where a setting comes from, strongest first:

1. the real environment (``export LOAD_USERS=20``, or a GitHub Actions secret);
2. the ``.env`` file at the repository root (copy ``.env.example`` to ``.env``);
   set ``ENV_FILE`` to read another file instead, for example ``.env.staging``;
3. the safe default written below (everything points at 127.0.0.1).

The ``.env`` file is found from this file's location, not from the current
directory, so every process (the helper, Locust, each Locust worker) reads the
same file wherever it was started.

Every value is checked once. A bad value raises ``ConfigError`` whose message is
one line naming the variable, the bad value and an example of a good one, e.g.::

    LOAD_USERS='ten' is not valid: a whole number of at least 1 is needed, for example LOAD_USERS=10

Secrets (API keys, webhook URLs, passwords) are never shown: ``repr(settings)``
and ``redact_url()`` hide them.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

log = logging.getLogger(__name__)

# The repository root: this file lives in <root>/utils/config.py.
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENV_FILE = REPO_ROOT / ".env"


class ConfigError(ValueError):
    """A setting has a value the kit cannot use. str(error) is one line."""


# ---------------------------------------------------------------------------
# Parsers: each takes the variable's name and its text, returns a typed value
# or raises ConfigError with a one-line message.
# ---------------------------------------------------------------------------


def _bad(name: str, value: str, need: str, example: str, secret: bool = False) -> ConfigError:
    shown = f"<hidden, {len(str(value))} characters>" if secret else repr(value)
    return ConfigError(f"{name}={shown} is not valid: {need}, for example {name}={example}")


MAX_DURATION_SECONDS = 7 * 24 * 3600  # a week: longer is a typo, not a load test


_DURATION_RE = re.compile(r"^(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$")


def parse_duration(text: str, name: str = "LOAD_DURATION") -> int:
    """'30s', '5m', '2h', '1h30m' or plain seconds ('90') -> whole seconds (> 0)."""
    value = str(text).strip().lower()
    seconds = None
    if value.isascii() and value.isdigit():
        seconds = int(value)
    else:
        match = _DURATION_RE.match(value)
        if match and any(match.groups()):
            hours, minutes, secs = (int(g or 0) for g in match.groups())
            seconds = hours * 3600 + minutes * 60 + secs
    if not seconds:
        raise _bad(name, text, "a duration such as 30s, 5m, 2h or 1h30m is needed", "5m")
    if seconds > MAX_DURATION_SECONDS:
        raise _bad(name, text, "a duration of at most 7 days (168h) is needed", "2h")
    return seconds


def format_duration(seconds: float) -> str:
    """90 -> '1m30s': the form Locust's --run-time understands."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


def parse_int(text: str, name: str, minimum: int = 1, example: str = "10") -> int:
    try:
        number = int(str(text).strip())
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise _bad(name, text, f"a whole number of at least {minimum} is needed", example)
    return number


def parse_float(text: str, name: str, minimum_exclusive: float = 0.0, example: str = "2") -> float:
    try:
        number = float(str(text).strip())
    except ValueError:
        number = None
    if number is None or math.isnan(number) or number <= minimum_exclusive or number == float("inf"):
        raise _bad(name, text, f"a number greater than {minimum_exclusive:g} is needed", example)
    return number


def parse_bool(text: str, name: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise _bad(name, text, "true or false is needed", "true")


def parse_port(text: str, name: str, example: str = "8125") -> int:
    try:
        port = int(str(text).strip())
    except ValueError:
        port = None
    if port is None or not 1 <= port <= 65535:
        raise _bad(name, text, "a port number from 1 to 65535 is needed", example)
    return port


def parse_http_url(
    text: str, name: str, example: str = "http://127.0.0.1:8080", secret: bool = False, credentials: bool = True
) -> str:
    """A URL with an http:// or https:// scheme and a host; a trailing / is dropped.

    secret: the whole URL is a secret (a webhook): never shown in a message.
    credentials=False: a user:password@ part is refused (it would end up in reports).
    """
    value = str(text).strip()
    shown = value if secret else redact_url(value)
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    try:
        port = parts.port if parts else None  # raises ValueError on a port that is not from 0 to 65535
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise _bad(name, shown, "the port must be a number from 1 to 65535", example, secret)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", value):
        raise _bad(name, shown, "a URL starting with http:// or https:// (no spaces) is needed", example, secret)
    if not credentials and "@" in parts.netloc:
        raise _bad(
            name, shown, "a URL without user:password@ is needed (Locust writes the host into its reports;"
            " the kit's users log in with LOGIN_USERNAME and LOGIN_PASSWORD)", example, secret,
        )  # fmt: skip
    return value.rstrip("/")


def parse_redis_url(text: str, name: str = "REDIS_URL") -> str:
    """redis://[:password@]host[:port][/db], rediss:// (TLS) or unix:///path/to/socket."""
    value = str(text).strip()
    example = "redis://127.0.0.1:6379/0"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise _bad(name, redact_url(value), "a port from 1 to 65535 is needed", example) from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise _bad(name, redact_url(value), "a URL starting with redis://, rediss:// or unix:// is needed", example)
    if parts.scheme != "unix":
        if not parts.hostname:
            raise _bad(name, redact_url(value), "a host name is needed", example)
        if port is not None and not 1 <= port <= 65535:
            raise _bad(name, redact_url(value), "a port from 1 to 65535 is needed", example)
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise _bad(name, redact_url(value), "the database after the last / must be a number", example)
    elif not parts.path:
        raise _bad(name, value, "a socket path is needed", "unix:///var/run/redis.sock")
    return value


def redact_url(url: str) -> str:
    """Hide the password of a URL: redis://:secret@host -> redis://:***@host (also in a malformed URL)."""
    url = re.sub(r"(?i)(password=)[^&#\s]*", r"\1***", str(url))
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or "@" not in parts.netloc:
        if "@" in url:  # not a URL we can take apart: hide everything up to the last @
            scheme, sep, _rest = url.rpartition("://")
            return f"{scheme}{sep}***@{url.rpartition('@')[2]}" if sep else f"***@{url.rpartition('@')[2]}"
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, has_password, _ = userinfo.partition(":")
    hidden = f"{user}:***" if has_password else "***"
    return urlunsplit(parts._replace(netloc=f"{hidden}@{hostport}"))


def secret_hint(value: str) -> str:
    """Say that a secret is set without showing it: 'set (40 characters)'."""
    return f"set ({len(value)} characters)" if value else "not set"


# ---------------------------------------------------------------------------
# The settings object
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Typed, validated settings. Fields marked secret never appear in repr()."""

    # Load test
    target_host: str = "http://127.0.0.1:8080"
    users: int = 10
    spawn_rate: float = 2.0
    duration: str = "1m"
    duration_seconds: int = 60
    login_username: str = "demo"
    login_password: str = field(default="demo-password", metadata={"secret": True})
    # Redis Pub/Sub
    redis_url: str = field(default="redis://127.0.0.1:6379/0", metadata={"url_secret": True})
    # Datadog (either an agent, or the HTTP API with an API key)
    dd_agent_host: str = ""
    dd_dogstatsd_port: int = 8125
    dd_dogstatsd_url: str = ""
    dd_api_key: str = field(default="", metadata={"secret": True})
    dd_site: str = "datadoghq.com"
    dd_api_url: str = ""
    dd_env: str = "loadtest"
    dd_service: str = "loadtest-kit"
    dd_version: str = ""
    # Slack
    slack_webhook_url: str = field(default="", metadata={"secret": True})
    # Thresholds (utils/thresholds.py): a file, extra rules, abort on breach
    thresholds_file: str = ""
    thresholds: str = ""
    thresholds_abort: bool = False
    # Virtual-user hours
    vu_hours_budget: float = 200.0
    # Load shape (utils/shapes.py): a preset name or explicit stages; empty = constant load
    load_preset: str = ""
    load_stages: str = ""
    stages: tuple = ()
    # GraphQL (utils/graphql_client.py)
    graphql_path: str = "/graphql"
    graphql_schema: str = ""
    graphql_partial_data: str = "fail"
    # Where the settings came from (for messages)
    env_file: str = ""

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret"):
                value = secret_hint(value)
            elif f.metadata.get("url_secret"):
                value = redact_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    __str__ = __repr__

    @property
    def datadog_api_url(self) -> str:
        """Base URL of Datadog's HTTP API: DD_API_URL, else https://api.<DD_SITE>."""
        return self.dd_api_url or f"https://api.{self.dd_site}"


def read_environment(environ: dict | None = None) -> dict[str, str]:
    """The real environment layered over the .env file (the environment wins)."""
    environ = dict(os.environ if environ is None else environ)
    env_file = Path(environ.get("ENV_FILE") or DEFAULT_ENV_FILE)
    if not env_file.is_absolute():
        env_file = (Path.cwd() / env_file) if env_file.exists() else (REPO_ROOT / env_file)
    readable = env_file.exists() and not env_file.is_dir()  # a file (or /dev/null)
    if environ.get("ENV_FILE") and not readable:
        need = "a file is needed, not a folder" if env_file.is_dir() else "no such file"
        raise ConfigError(f"ENV_FILE={environ['ENV_FILE']!r} is not valid: {need}, for example ENV_FILE=.env")
    merged: dict[str, str] = {}
    if readable:
        try:
            merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"{env_file}: cannot be read as a settings file (UTF-8 text): {error}") from None
    merged.update(environ)
    merged["_ENV_FILE"] = str(env_file) if readable else ""
    return merged


def load_settings(environ: dict | None = None, **overrides) -> Settings:
    """Read, check and return every setting. Raises ConfigError on the first bad one.

    ``overrides`` (for example ``users="20"`` from a command-line flag) win over
    the environment; ``None`` overrides are ignored. Their messages still name the
    environment variable, with the flag in brackets where one was used.
    """
    env = read_environment(environ)

    def get(name: str, default: str, override_key: str | None = None) -> tuple[str, str]:
        if override_key and overrides.get(override_key) is not None:
            return str(overrides[override_key]), f"--{override_key.replace('_', '-')}"
        value = env.get(name, "")
        return (value if value.strip() else default), name

    host, host_name = get("TARGET_HOST", Settings.target_host, "host")
    users, users_name = get("LOAD_USERS", str(Settings.users), "users")
    rate, rate_name = get("LOAD_SPAWN_RATE", "2", "spawn_rate")
    duration, duration_name = get("LOAD_DURATION", Settings.duration, "duration")
    redis_url, _ = get("REDIS_URL", Settings.redis_url)
    dd_port, _ = get("DD_DOGSTATSD_PORT", "8125")
    dd_url, _ = get("DD_DOGSTATSD_URL", "")
    dd_api_url, _ = get("DD_API_URL", "")
    slack, _ = get("SLACK_WEBHOOK_URL", "")
    dd_site, _ = get("DD_SITE", Settings.dd_site)
    if not re.fullmatch(r"[a-z0-9.-]+\.[a-z]{2,}", dd_site.strip()):
        raise _bad("DD_SITE", dd_site, "a Datadog site name is needed", "datadoghq.eu")
    if dd_url.strip() and not re.match(r"^(udp|unix)://.+", dd_url.strip()):
        raise _bad("DD_DOGSTATSD_URL", dd_url, "udp://host:port or unix:///path is needed", "udp://127.0.0.1:8125")
    if dd_url.strip().startswith("udp://"):
        try:
            udp = urlsplit(dd_url.strip())
            udp_ok = bool(udp.hostname) and (udp.port is None or 1 <= udp.port <= 65535)
        except ValueError:
            udp_ok = False
        if not udp_ok:
            raise _bad(
                "DD_DOGSTATSD_URL", dd_url, "a host and a port from 1 to 65535 are needed", "udp://127.0.0.1:8125"
            )
    dd_host = env.get("DD_AGENT_HOST", "").strip()
    host_with_port = re.fullmatch(r"[A-Za-z0-9._-]+:[0-9]+", dd_host)  # (an IPv6 address has several colons)
    if dd_host and (host_with_port or not re.fullmatch(r"[A-Za-z0-9.:_-]+", dd_host)):
        raise _bad("DD_AGENT_HOST", dd_host, "a host name or IP address (no http://, no port) is needed", "127.0.0.1")

    users_value = parse_int(users, users_name, 1, "10")
    duration_value = parse_duration(duration, duration_name)
    preset, preset_name = get("LOAD_PRESET", "", "preset")
    stages_text, stages_name = get("LOAD_STAGES", "", "stages")
    preset, stages_text = preset.strip().lower(), stages_text.strip()
    from utils import shapes  # here, not at the top: shapes imports this module

    if preset and stages_text and preset_name.startswith("--") != stages_name.startswith("--"):
        # One came from a flag, the other from the environment: the flag wins.
        if preset_name.startswith("--"):
            stages_text, stages_name = "", "LOAD_STAGES"
        else:
            preset, preset_name = "", "LOAD_PRESET"
    if preset and stages_text:
        raise ConfigError(
            f"{preset_name}={preset!r} and {stages_name}={stages_text!r} contradict each other: "
            "choose a preset or your own stages, not both"
        )
    if stages_text:
        stages = shapes.parse_stages(stages_text, stages_name)
    elif preset:
        if preset not in shapes.PRESETS:
            raise _bad(preset_name, preset, f"one of {', '.join(shapes.PRESETS)} is needed", "load")
        stages = shapes.preset_stages(preset, users_value, duration_value)
    else:
        stages = []

    return Settings(
        target_host=parse_http_url(host, host_name, credentials=False),
        users=users_value,
        spawn_rate=parse_float(rate, rate_name, 0, "2"),
        duration=duration.strip(),
        duration_seconds=duration_value,
        login_username=get("LOGIN_USERNAME", Settings.login_username)[0].strip(),
        login_password=get("LOGIN_PASSWORD", Settings.login_password)[0],
        redis_url=parse_redis_url(redis_url),
        dd_agent_host=env.get("DD_AGENT_HOST", "").strip(),
        dd_dogstatsd_port=parse_port(dd_port, "DD_DOGSTATSD_PORT"),
        dd_dogstatsd_url=dd_url.strip(),
        dd_api_key=env.get("DD_API_KEY", "").strip(),
        dd_site=dd_site.strip(),
        dd_api_url=parse_http_url(dd_api_url, "DD_API_URL", "https://api.datadoghq.eu") if dd_api_url.strip() else "",
        dd_env=get("DD_ENV", Settings.dd_env)[0].strip(),
        dd_service=get("DD_SERVICE", Settings.dd_service)[0].strip(),
        dd_version=env.get("DD_VERSION", "").strip(),
        slack_webhook_url=parse_http_url(
            slack, "SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/...", secret=True
        )
        if slack.strip()
        else "",
        thresholds_file=get("THRESHOLDS_FILE", "", "thresholds_file")[0].strip(),
        thresholds=get("THRESHOLDS", "", "thresholds")[0].strip(),
        thresholds_abort=parse_bool(*get("THRESHOLDS_ABORT", "false", "thresholds_abort")),
        vu_hours_budget=parse_float(*get("VU_HOURS_BUDGET", "200", "vu_hours_budget"), 0, "200"),
        load_preset=preset,
        load_stages=stages_text,
        stages=tuple(stages),
        graphql_path=parse_graphql_path(get("GRAPHQL_PATH", Settings.graphql_path)[0]),
        graphql_schema=parse_graphql_schema(env.get("GRAPHQL_SCHEMA", "")),
        graphql_partial_data=parse_choice(
            get("GRAPHQL_PARTIAL_DATA", Settings.graphql_partial_data)[0], "GRAPHQL_PARTIAL_DATA", ("fail", "accept")
        ),
        env_file=env.get("_ENV_FILE", ""),
    )


def parse_choice(text: str, name: str, choices: tuple[str, ...]) -> str:
    value = str(text).strip().lower()
    if value not in choices:
        raise _bad(name, text, f"one of {', '.join(choices)} is needed", choices[0])
    return value


def parse_graphql_path(text: str, name: str = "GRAPHQL_PATH") -> str:
    """The GraphQL endpoint: a path on TARGET_HOST (/graphql) or a full http(s):// URL."""
    value = str(text).strip()
    if "://" in value:
        return parse_http_url(value, name, "/graphql")
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise _bad(name, text, "a path starting with / (or a full http:// URL) is needed", "/graphql")
    return value


def parse_graphql_schema(text: str, name: str = "GRAPHQL_SCHEMA") -> str:
    """'' (no check), 'introspect' (ask the target once per run) or a schema file (SDL)."""
    value = str(text).strip()
    if value in ("", "introspect"):
        return value
    path = Path(value)
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / value
    if not path.is_file():
        raise _bad(name, text, "'introspect' or the path of a schema file (SDL) is needed", "schema.graphql")
    return str(path)


_cached: Settings | None = None


def get_settings() -> Settings:
    """The settings of this process, read once. For locustfiles and listeners.

    A bad setting stops the process with the one-line message and exit code 2
    (no traceback): this is what a locustfile wants at import time.
    """
    global _cached
    if _cached is None:
        try:
            _cached = load_settings()
        except ConfigError as error:
            sys.stderr.write(f"error: {error}\n")
            raise SystemExit(2) from None
    return _cached
