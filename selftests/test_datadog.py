"""The Datadog reporter (utils/datadog_reporter.py) against real sockets speaking Datadog's wire formats.

* DogStatsD: a real UDP socket on 127.0.0.1 receives the datagrams, every line is
  parsed by the protocol's rules, and the counts must add up exactly to Locust's.
* HTTP API (no agent): a local HTTP server in place of Datadog's intake receives
  the series, the distribution points and the events.
"""

from __future__ import annotations

from locust import User
from locust.env import Environment

import json
import logging
import re
import socket
from collections import Counter
from pathlib import Path

import pytest

from selftests.conftest import REPO_ROOT, assert_no_traceback, free_port, helper, run_folder
from selftests.datadog_fixtures import ApiIntake, DogStatsdSink, parse_datagrams
from utils import datadog_reporter as dd
from utils.config import Settings
from utils.datadog_reporter import DatadogReporter, tag_value

UDP_PAYLOAD = 1432  # what the DogStatsD client packs into one UDP datagram


class NobodyUser(User):
    """A user class for a bare Environment; it never runs."""


def bare_environment() -> Environment:
    environment = Environment(user_classes=[NobodyUser])
    environment.create_local_runner()
    return environment


def statsd_reporter(environment, sink: DogStatsdSink, **options) -> DatadogReporter:
    settings = Settings(dd_agent_host="127.0.0.1", dd_dogstatsd_port=sink.port)
    transport = dd.StatsdTransport.from_settings(settings)
    options = {"run_id": "run-test", "scenario": "unit", "env": "loadtest", "service": "kit"} | options
    return DatadogReporter(transport, **options).register(environment)


def fire(environment, request_type, name, response_time=10.0, length=100, failed=False) -> None:
    environment.events.request.fire(
        request_type=request_type,
        name=name,
        response_time=response_time,
        response_length=length,
        exception=RuntimeError("boom") if failed else None,
        context={},
    )


def final_counts(folder: Path) -> Counter:
    """{(type, name as a tag value, status): count} from the run's exact final figures."""
    data = json.loads((folder / "final_stats.json").read_text())
    expected: Counter = Counter()
    for row in data["rows"]:
        ok = row["count"] - row["failures"]
        if ok:
            expected[(row["type"], name_tag(row["name"]), "ok")] = ok
        if row["failures"]:
            expected[(row["type"], name_tag(row["name"]), "error")] = row["failures"]
    return expected


def name_tag(name: str) -> str:
    """The request_name tag value the reporter sends for NAME."""
    return dd.tag("request_name", name).split(":", 1)[1]


def without_zeros(counter: Counter) -> Counter:
    return Counter({k: v for k, v in counter.items() if v})


# ---------------------------------------------------------------------------
# Unit: synthetic request events into a bare Locust Environment
# ---------------------------------------------------------------------------


def test_awkward_names_stay_on_the_wire_and_counts_add_up():
    sink = DogStatsdSink()
    environment = bare_environment()
    reporter = statsd_reporter(environment, sink)
    names = ["/api/items/[id]", "a|b,c#d\ne f", "ключ/値", ":colon:", "x" * 500, ""]
    expected: Counter = Counter()
    for i in range(600):
        name, failed = names[i % len(names)], i % 7 == 0
        fire(environment, "GET" if i % 2 else "POST", name, response_time=i / 3, failed=failed)
        expected[("GET" if i % 2 else "POST", name_tag(name), "error" if failed else "ok")] += 1
    reporter.on_quit(exit_code=0)
    received = sink.stop()  # parse_line asserts every tag is DogStatsD-safe and <= 200 characters

    assert without_zeros(received.counts_by(dd.REQUESTS, "request_type", "request_name", "status")) == expected
    durations = [m for m in received.kit_metrics(dd.DURATION) if m.type == "d"]
    assert sum(len(m.values) for m in durations) == 600
    assert tag_value("a|b,c#d\ne f") == "a_b_c_d_e_f" and len(dd.tag("request_name", "x" * 500)) == 200
    # The client sizes its datagrams in characters: with non-ASCII names a datagram can be a
    # few bytes over 1432, still inside one Ethernet frame (1500).
    assert all(len(d) <= 1500 for d in received.datagrams)


def test_datagrams_near_the_size_limit_are_split_and_complete():
    """Tags near Datadog's 200-character limit make long lines: each datagram still fits, nothing is lost."""
    sink = DogStatsdSink()
    environment = bare_environment()
    long = "v" * 190
    reporter = statsd_reporter(environment, sink, run_id="r" * 190, scenario="s" * 190, version=long)
    for i in range(3000):
        fire(environment, "GET", f"/{i % 40:02d}/" + "n" * 190, response_time=1000 + i / 7)
    reporter.on_quit(exit_code=0)
    received = sink.stop()

    sizes = [len(d) for d in received.datagrams]
    assert max(sizes) <= UDP_PAYLOAD and max(sizes) > UDP_PAYLOAD - 400, sizes
    assert sum(received.counts_by(dd.REQUESTS, "status").values()) == 3000
    assert sum(len(m.values) for m in received.kit_metrics(dd.DURATION)) == 3000
    assert len(received.counts_by(dd.REQUESTS, "request_name")) == 40


def test_ten_thousand_distinct_urls_are_capped(caplog):
    sink = DogStatsdSink()
    environment = bare_environment()
    reporter = statsd_reporter(environment, sink, max_names=50)
    with caplog.at_level(logging.WARNING, logger="utils.datadog_reporter"):
        for i in range(10_000):
            fire(environment, "GET", f"/api/products/{i}")
        reporter.on_quit(exit_code=0)
    received = sink.stop()

    by_name = received.counts_by(dd.REQUESTS, "request_name")
    assert len(by_name) == 51  # 50 names kept + "other"
    assert by_name[("other",)] == 10_000 - 50
    assert sum(by_name.values()) == 10_000
    assert len(reporter._tags) <= 51  # the tag cache does not grow with the URLs either
    assert sum("distinct request names" in r.getMessage() for r in caplog.records) == 1


def test_start_and_stop_events_once_with_the_verdict_and_final_figures():
    sink = DogStatsdSink()
    environment = bare_environment()
    reporter = statsd_reporter(environment, sink)
    environment.events.test_start.fire(environment=environment)
    environment.events.test_start.fire(environment=environment)  # a second start in one run: still one event
    for i in range(30):
        fire(environment, "GET", "/x", failed=i < 3)  # the local runner counts them in its stats too
    environment.kit_verdict = {"passed": False, "text": "FAILED: p95 above 1 ms\n" + "detail " * 3000}
    environment.events.test_stop.fire(environment=environment)
    environment.events.quit.fire(exit_code=3)
    reporter.on_quit(exit_code=3)  # a second quit: nothing more is sent, nothing breaks
    reporter.close()
    received = sink.stop()

    starts = [e for e in received.events if e.tag("phase") == "start"]
    stops = [e for e in received.events if e.tag("phase") == "stop"]
    assert len(starts) == 1 and len(stops) == 1
    stop = stops[0]
    assert stop.title == "Load test finished: unit (FAILED)"
    assert stop.tag("verdict") == "failed" and stop.fields["t"] == "error"
    assert stop.tag("run_id") == "run-test" and stop.fields["k"] == "run-test"
    assert "30 requests, 3 failures" in stop.text and "FAILED: p95 above 1 ms" in stop.text
    assert len(stop.text) <= dd.MAX_EVENT_TEXT + 10
    users = [m for m in received.kit_metrics(dd.USERS) if m.type == "g"]
    assert users and all(m.tag("run_id") == "run-test" for m in users)


def test_a_worker_sends_request_metrics_but_no_run_events():
    from locust.runners import WorkerRunner

    sink = DogStatsdSink()
    environment = bare_environment()
    reporter = statsd_reporter(environment, sink)
    # What the reporter checks to know it runs on a worker (no master needed for this).
    environment.runner.__class__ = type("FakeWorker", (WorkerRunner,), {})
    environment.events.test_start.fire(environment=environment)
    fire(environment, "GET", "/x")
    reporter.on_quit(exit_code=0)
    received = sink.stop()
    assert received.events == [] and received.kit_metrics(dd.USERS) == []
    assert sum(received.counts_by(dd.REQUESTS, "status").values()) == 1


def test_not_configured_is_one_line_and_off(caplog):
    with caplog.at_level(logging.INFO, logger="utils.datadog_reporter"):
        assert DatadogReporter.from_settings(bare_environment(), Settings()) is None
    assert [r.getMessage() for r in caplog.records] == [
        "Datadog reporter off: set DD_AGENT_HOST (agent) or DD_API_KEY (no agent) to send metrics"
    ]


def test_parser_rejects_what_dogstatsd_cannot_carry():
    with pytest.raises(AssertionError):
        parse_datagrams([b"locust.requests:1|c|#request_name:a|b"])
    with pytest.raises(AssertionError):
        parse_datagrams([b"_e{5,4}:title|text too long"])


# ---------------------------------------------------------------------------
# Unit: the HTTP API transport against a local intake
# ---------------------------------------------------------------------------


def api_reporter(environment, url: str, key: str = "test-key-0123456789") -> DatadogReporter:
    transport = dd.ApiTransport(url, key, flush_interval=60, site="datadoghq.com")
    return DatadogReporter(transport, run_id="run-api", scenario="unit", env="loadtest", service="kit").register(
        environment
    )


def test_api_key_refused_is_one_clear_error_without_the_key(caplog):
    intake = ApiIntake(status=403)
    environment = bare_environment()
    key = "secret-key-must-not-show-123"
    reporter = api_reporter(environment, intake.url, key)
    with caplog.at_level(logging.INFO):
        environment.events.test_start.fire(environment=environment)
        for _ in range(50):
            fire(environment, "GET", "/x")
        reporter.flush_requests()
        reporter.transport.flush()
        reporter.transport.flush()
        environment.events.quit.fire(exit_code=0)
    intake.stop()
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert key not in logs
    refused = [r for r in caplog.records if "refused the API key" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.ERROR
    assert "DD_API_KEY (28 characters)" in refused[0].getMessage()
    # After the 403 the transport stops: it does not knock again with every flush.
    assert len(intake.requests) == 1
    assert intake.requests[0].headers["dd-api-key"] == key


def test_api_host_unreachable_is_one_warning_and_no_error(caplog):
    environment = bare_environment()
    reporter = api_reporter(environment, f"http://127.0.0.1:{free_port()}")
    with caplog.at_level(logging.WARNING):
        environment.events.test_start.fire(environment=environment)
        for _ in range(100):
            fire(environment, "GET", "/x")
        reporter.flush_requests()
        reporter.transport.flush()
        environment.events.quit.fire(exit_code=0)
    unreachable = [r for r in caplog.records if "cannot be reached" in r.getMessage()]
    assert len(unreachable) == 1
    assert reporter.transport.dropped > 0


# ---------------------------------------------------------------------------
# Headless runs of tests/basic_test.py through the helper
# ---------------------------------------------------------------------------

FAST_LOCUSTFILE = '''
"""The basic scenario with a short think time: more requests in a short run."""
from locust import constant

import sys
sys.path.insert(0, {tests!r})

import basic_test


class BusyShopVisitor(basic_test.ShopVisitor):
    wait_time = constant(0.02)
'''


def helper_run(demo, tmp_path, scenario="basic", *locust_args, env=None, users="10", duration="4s"):
    return helper(
        "run", scenario, "-H", demo.url, "-u", users, "-r", users, "-t", duration, "--thresholds", "none",
        "--reports-dir", str(tmp_path / "reports"), "--", "--only-summary", "--stop-timeout", "3", *locust_args,
        env=env, timeout=120,
    )  # fmt: skip


def check_events_once(events, run_id: str) -> None:
    phases = Counter(e.tag("phase") for e in events)
    assert phases == Counter({"start": 1, "stop": 1}), events
    assert all(e.tag("run_id") == run_id and e.tag("scenario") for e in events)


def test_headless_run_counts_reach_the_agent_exactly(demo, tmp_path):
    demo.set_faults(error_ratio=0.15)
    sink = DogStatsdSink()
    env = {"DD_AGENT_HOST": "127.0.0.1", "DD_DOGSTATSD_PORT": str(sink.port), "DD_VERSION": "1.2.3"}
    result = helper_run(demo, tmp_path, env=env, users="15")
    received = sink.stop()
    assert_no_traceback(result)
    folder = run_folder(result.stdout)

    expected = final_counts(folder)
    assert any(status == "error" for _t, _n, status in expected), "the faults should have made failures"
    got = received.counts_by(dd.REQUESTS, "request_type", "request_name", "status")
    assert without_zeros(got) == expected
    assert sum(len(m.values) for m in received.kit_metrics(dd.DURATION)) == sum(expected.values())
    first = received.kit_metrics(dd.REQUESTS)[0]
    assert (first.tag("env"), first.tag("service"), first.tag("version")) == ("loadtest", "loadtest-kit", "1.2.3")
    assert first.tag("scenario") == "basic"
    check_events_once(received.events, folder.name)


def test_processes_2_counts_each_request_once(demo, tmp_path):
    locustfile = tmp_path / "busy_basic.py"
    locustfile.write_text(FAST_LOCUSTFILE.format(tests=str(REPO_ROOT / "tests")))
    sink = DogStatsdSink()
    env = {"DD_DOGSTATSD_URL": f"udp://127.0.0.1:{sink.port}"}
    port = str(free_port())  # not Locust's default 5557: other runs on this machine may hold it
    locust_args = ("--processes", "2", "--master-bind-port", port, "--master-port", port)
    result = helper_run(demo, tmp_path, str(locustfile), *locust_args, env=env, users="6")
    received = sink.stop()
    assert_no_traceback(result)
    folder = run_folder(result.stdout)

    expected = final_counts(folder)
    assert sum(expected.values()) > 300
    assert without_zeros(received.counts_by(dd.REQUESTS, "request_type", "request_name", "status")) == expected
    check_events_once(received.events, folder.name)


def test_agentless_run_posts_series_distributions_and_events(demo, tmp_path):
    demo.set_faults(error_ratio=0.1)
    intake = ApiIntake()
    key = "agentless-secret-key-42"
    result = helper_run(demo, tmp_path, env={"DD_API_KEY": key, "DD_API_URL": intake.url}, users="15")
    intake.stop()
    assert_no_traceback(result)
    assert key not in result.output
    folder = run_folder(result.stdout)

    assert intake.requests and all(r.headers["dd-api-key"] == key for r in intake.requests)
    assert all(r.headers["content-type"] == "application/json" for r in intake.requests)
    for series in intake.series():
        assert series["type"] in (1, 3) and series["points"], series
        assert all(isinstance(p["timestamp"], int) and isinstance(p["value"], int | float) for p in series["points"])
    expected = final_counts(folder)
    assert intake.counts_by(dd.REQUESTS, "request_type", "request_name", "status") == expected
    values = [v for s in intake.distributions() if s["metric"] == dd.DURATION for _ts, vs in s["points"] for v in vs]
    assert len(values) == sum(expected.values()) and all(v >= 0 for v in values)
    events = intake.events()
    phases = Counter(next(t for t in e["tags"] if t.startswith("phase:")) for e in events)
    assert phases == Counter({"phase:start": 1, "phase:stop": 1})
    assert all(e["title"] and e["text"] and f"run_id:{folder.name}" in e["tags"] for e in events)


def test_no_agent_listening_leaves_the_run_alone(demo, tmp_path):
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nobody listens there now
    result = helper_run(demo, tmp_path, env={"DD_AGENT_HOST": "127.0.0.1", "DD_DOGSTATSD_PORT": str(port)})
    assert result.returncode == 0, result.output
    assert_no_traceback(result)
    assert "RESULT: passed" in result.stdout
    noise = [line for line in result.output.splitlines() if "Datadog agent" in line or "submitting packet" in line]
    assert 1 <= len(noise) <= 2, noise
    rows = json.loads((run_folder(result.stdout) / "final_stats.json").read_text())
    assert rows["total"]["count"] > 0 and rows["total"]["failures"] == 0


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DD_DOGSTATSD_PORT", "99999", "DD_DOGSTATSD_PORT='99999' is not valid: a port number from 1 to 65535"),
        ("DD_DOGSTATSD_URL", "udp://127.0.0.1:70000", "DD_DOGSTATSD_URL='udp://127.0.0.1:70000' is not valid"),
        ("DD_AGENT_HOST", "http://agent:8125", "DD_AGENT_HOST='http://agent:8125' is not valid"),
    ],
)
def test_bad_datadog_settings_are_one_line_and_exit_2(variable, value, message):
    result = helper("run", "basic", "--dry-run", env={variable: value}, timeout=60)
    assert result.returncode == 2, result.output
    assert_no_traceback(result)
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------
# The dashboard and the traffic header
# ---------------------------------------------------------------------------


def test_dashboard_definition_uses_the_metrics_and_variables_it_defines():
    board = json.loads((REPO_ROOT / "dashboards/locust-loadtest.json").read_text())
    assert board["title"] and board["layout_type"] == "ordered" and board["widgets"]
    variables = {v["name"] for v in board["template_variables"]}
    assert {"run_id", "scenario", "env", "service"} <= variables
    text = json.dumps(board)
    sent = {dd.REQUESTS, dd.DURATION, dd.RESPONSE_BYTES, dd.USERS, dd.RPS, dd.FAILURE_RATIO}
    used = set(re.findall(r"(locust\.[a-z_.]+)\{", text))
    assert used and used <= sent, used - sent
    assert set(re.findall(r"\$([a-z_]+)", text)) <= variables


def test_traffic_headers_carry_the_run_id(monkeypatch):
    from utils import kit

    monkeypatch.setenv("KIT_RUN_ID", "run-header-1")
    assert kit.traffic_headers() == {"X-Load-Test": "true", "X-Load-Test-Run": "run-header-1"}
