"""Fixtures for the kit's own test suite (run: python -m pytest).

gevent must patch the standard library before anything imports ssl, socket or
threading through requests, redis or datadog: that is why this comes first.
"""

from gevent import monkey

monkey.patch_all()

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# Variables the kit reads: cleared so a developer's shell or .env never changes a test.
KIT_VARIABLES = [
    "TARGET_HOST",
    "LOAD_USERS",
    "LOAD_SPAWN_RATE",
    "LOAD_DURATION",
    "LOGIN_USERNAME",
    "LOGIN_PASSWORD",
    "REDIS_URL",
    "DD_AGENT_HOST",
    "DD_DOGSTATSD_PORT",
    "DD_DOGSTATSD_URL",
    "DD_API_KEY",
    "DD_SITE",
    "DD_API_URL",
    "DD_ENV",
    "DD_SERVICE",
    "DD_VERSION",
    "SLACK_WEBHOOK_URL",
    "GRAPHQL_PATH",
    "GRAPHQL_SCHEMA",
    "GRAPHQL_PARTIAL_DATA",
    "GITHUB_STEP_SUMMARY",
]


@pytest.fixture(scope="session", autouse=True)
def clean_environment(tmp_path_factory):
    """An empty ENV_FILE and none of the kit's variables: every test starts from the defaults."""
    empty = tmp_path_factory.mktemp("env") / "empty.env"
    empty.write_text("")
    saved = {k: os.environ.get(k) for k in [*KIT_VARIABLES, "ENV_FILE", "THRESHOLDS_FILE"]}
    for key in KIT_VARIABLES:
        os.environ.pop(key, None)
    os.environ["ENV_FILE"] = str(empty)
    # Short runs on a shared machine: the default rules, with one request as enough data.
    os.environ["THRESHOLDS_FILE"] = str(REPO_ROOT / "selftests" / "thresholds-test.toml")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_json(method: str, url: str, payload=None, timeout: float = 5.0):
    """(status, parsed JSON body) of one request with the standard library."""
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body)
        except ValueError:
            return error.code, body.decode(errors="replace")


@dataclass
class DemoTarget:
    url: str
    process: subprocess.Popen

    def set_faults(self, **knobs) -> None:
        status, body = http_json("POST", f"{self.url}/__faults", knobs)
        assert status == 200, body

    def reset(self) -> None:
        self.set_faults(latency_ms=0, error_ratio=0, error_status=500, fail_endpoint="", error_body="json")
        http_json("POST", f"{self.url}/__stats/reset", {})

    def stats(self) -> dict:
        return http_json("GET", f"{self.url}/__stats")[1]


def start_demo(*extra: str) -> DemoTarget:
    process = subprocess.Popen(
        [PYTHON, "-m", "demo", "--port", "0", *extra],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    if not line.startswith("DEMO_READY "):
        process.kill()
        raise RuntimeError(f"demo target did not start: {line!r}")
    return DemoTarget(url=line.split()[1], process=process)


@pytest.fixture(scope="session")
def demo_session():
    target = start_demo()
    yield target
    target.process.terminate()
    target.process.wait(timeout=10)


@pytest.fixture
def demo(demo_session) -> DemoTarget:
    """The shared demo target, with its fault knobs and counters reset."""
    demo_session.reset()
    yield demo_session
    demo_session.reset()


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run(command: list[str], timeout: float = 120, env: dict | None = None, cwd: Path = REPO_ROOT) -> Completed:
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    return Completed(result.returncode, result.stdout, result.stderr, time.monotonic() - started)


def helper(*args: str, timeout: float = 120, env: dict | None = None, cwd: Path = REPO_ROOT) -> Completed:
    """Run locust_helper.py with ARGS."""
    return run([PYTHON, str(REPO_ROOT / "locust_helper.py"), *args], timeout=timeout, env=env, cwd=cwd)


def run_folder(output: str) -> Path:
    """The run folder a helper run printed (from its 'HTML report:' line)."""
    for line in output.splitlines():
        if line.startswith("HTML report: "):
            return (REPO_ROOT / line.split(": ", 1)[1].strip()).parent
    raise AssertionError(f"no 'HTML report:' line in the output:\n{output}")


def assert_no_traceback(completed: Completed) -> None:
    assert "Traceback (most recent call last)" not in completed.output, completed.output


def start_swarm(base: str, users: int, host: str, wait_seconds: float = 20.0) -> None:
    """Wait until Locust's web UI at BASE answers, then start USERS users through its form (POST /swarm)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            urllib.request.urlopen(base + "/", timeout=1).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    form = urllib.parse.urlencode({"user_count": users, "spawn_rate": users, "host": host}).encode()
    urllib.request.urlopen(urllib.request.Request(base + "/swarm", data=form), timeout=5).read()


# ---------------------------------------------------------------------------
# The suite's one long run (20 users x 60 s, for the VU-hours figure) starts as soon as
# the tests are collected and runs while the others do; its test only reads the result.
# ---------------------------------------------------------------------------

LONG_RUN_TEST = "test_vu_hours_of_a_20_user_60_second_run"


@dataclass
class BackgroundRun:
    process: subprocess.Popen
    demo: DemoTarget
    reports: Path
    output: Path

    def wait(self, timeout: float = 150) -> Completed:
        started = time.monotonic()
        self.process.wait(timeout=timeout)
        text = self.output.read_text()
        return Completed(self.process.returncode, text, "", time.monotonic() - started)

    def stop(self) -> None:
        for process in (self.process, self.demo.process):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()


def pytest_collection_finish(session):
    if not any(LONG_RUN_TEST in item.nodeid for item in session.items):
        return
    folder = Path(tempfile.mkdtemp(prefix="kit-long-run-"))
    (folder / "empty.env").write_text("")
    env = {k: v for k, v in os.environ.items() if k not in KIT_VARIABLES}
    env.update(ENV_FILE=str(folder / "empty.env"), THRESHOLDS_FILE=str(REPO_ROOT / "selftests/thresholds-test.toml"))
    demo = start_demo()
    output = folder / "output.txt"
    command = [PYTHON, str(REPO_ROOT / "locust_helper.py"), "run", "basic", "-H", demo.url, "-u", "20", "-r", "20",
               "-t", "60s", "--reports-dir", str(folder / "reports"), "--", "--only-summary"]  # fmt: skip
    with output.open("w") as handle:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    session.config.kit_long_run = BackgroundRun(process, demo, folder / "reports", output)


def pytest_sessionfinish(session):
    long_run = getattr(session.config, "kit_long_run", None)
    if long_run is not None:
        long_run.stop()


@pytest.fixture
def long_run(request) -> BackgroundRun:
    run = getattr(request.config, "kit_long_run", None)
    assert run is not None, f"the long run starts only when {LONG_RUN_TEST} is collected"
    return run
