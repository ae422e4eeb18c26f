"""tests/complete_example.py for real: every user class against the demo target and a real Redis,
with a short load shape, on one process and on a master with two workers (Datadog counted once)."""

import json
from collections import Counter

import pytest

from selftests.conftest import PYTHON, assert_no_traceback, helper, run, run_folder, start_demo
from selftests.datadog_fixtures import DogStatsdSink
from utils import datadog_reporter as dd

REDIS_URL = "redis://127.0.0.1:6379/0"
ROWS = [
    ("GET", "/api/products"),
    ("GET", "/api/products/[id]"),
    ("GraphQL", "query GetProducts"),
    ("GraphQL", "query GetProduct"),
    ("GraphQL", "mutation Login"),
    ("GraphQL", "mutation PostMessage"),
    ("SUBSCRIBE", "chat:live"),
    ("RECEIVE", "chat:live"),
]


@pytest.fixture(scope="module")
def chat_demo():
    """The demo target with its chat on (publishing to the shared Redis)."""
    target = start_demo("--redis-url", REDIS_URL)
    yield target
    target.process.terminate()
    target.process.wait(timeout=10)


def run_complete(chat_demo, tmp_path, *extra, stages="3s:12,5s:12", env=None):
    return helper(
        "run", "complete", "-H", chat_demo.url, "--stages", stages, "--reports-dir", str(tmp_path), *extra,
        "--", "--only-summary", env=env, timeout=180,
    )  # fmt: skip


def rows_of(folder) -> dict:
    data = json.loads((folder / "final_stats.json").read_text())
    return {(r["type"], r["name"]): r for r in data["rows"]}


def test_locustfile_loads_with_its_three_user_classes():
    result = run([PYTHON, "-m", "locust", "-f", "tests/complete_example.py", "--list"], timeout=60)
    assert result.returncode == 0, result.output
    for user in ("Browser", "AppShopper", "LiveSubscriber"):
        assert user in result.stdout


def test_every_user_class_produces_rows_with_no_failure(chat_demo, tmp_path):
    result = run_complete(chat_demo, tmp_path)
    assert result.returncode == 0, result.output
    assert_no_traceback(result)
    folder = run_folder(result.stdout)
    rows = rows_of(folder)
    for key in ROWS:
        assert key in rows and rows[key]["count"] > 0, (key, sorted(rows))
    assert all(row["failures"] == 0 for row in rows.values()), rows
    # app -> Redis -> subscribers: every posted message reached both subscribers, none lost.
    assert rows[("RECEIVE", "chat:live")]["count"] == 2 * rows[("GraphQL", "mutation PostMessage")]["count"]
    assert not any(kind == "LOST" for kind, _ in rows)
    # The shape ended the run at its planned time (8 s), within 2 s.
    summary = json.loads((folder / "summary.json").read_text())
    assert abs(summary["duration_seconds"] - 8) <= 2, summary["duration_seconds"]
    assert summary["peak_users"] == 12 and summary["verdict"]["passed"]


def test_two_workers_add_up_and_datadog_counts_each_request_once(chat_demo, tmp_path):
    sink = DogStatsdSink()
    env = {"DD_DOGSTATSD_URL": f"udp://127.0.0.1:{sink.port}"}
    result = run_complete(chat_demo, tmp_path, "--workers", "2", env=env)
    received = sink.stop()
    assert result.returncode == 0, result.output
    folder = run_folder(result.stdout)
    summary = json.loads((folder / "summary.json").read_text())
    workers = summary["workers"]
    assert workers["count"] == 2 and workers["lost"] == []
    assert sum(workers["requests"].values()) == summary["total"]["count"]
    rows = rows_of(folder)
    for key in ROWS:
        assert key in rows and rows[key]["count"] > 0, key
    # Datadog: the requests counted by the agent equal Locust's final figures, row by row.
    expected = Counter()
    for (kind, name), row in rows.items():
        expected[(kind, dd.tag("request_name", name).split(":", 1)[1])] += row["count"]
    sent = Counter()
    for (kind, name, _status), value in received.counts_by(
        dd.REQUESTS, "request_type", "request_name", "status"
    ).items():
        sent[(kind, name)] += value
    assert +sent == +expected
    phases = Counter(event.tag("phase") for event in received.events)
    assert phases == Counter({"start": 1, "stop": 1})


def test_the_helpers_ui_serves_complete_example(chat_demo):
    result = helper("ui", "complete", "-H", chat_demo.url, "--dry-run")
    assert result.returncode == 0
    assert "-f tests/complete_example.py" in result.stdout
