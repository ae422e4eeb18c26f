"""utils/thresholds.py and utils/summary.py without load: parsing, evaluation, and the listener
fed with synthetic request events in a bare Locust Environment."""

from locust import FastHttpUser, task
from locust.env import Environment

import json
from types import SimpleNamespace

import pytest

from selftests.conftest import PYTHON, assert_no_traceback, helper, run
from utils import thresholds as th
from utils.config import ConfigError
from utils.results import StatsRow
from utils.summary import RunSummary


def row(name, count=100, failures=0, p95=100.0, type_="GET", rps=10.0) -> StatsRow:
    percentiles = {n: p95 for n in ("p50", "p66", "p75", "p80", "p90", "p95", "p98", "p99", "p99.9", "p99.99", "p100")}
    return StatsRow(type_, name, count, failures, p95, 1, p95, p95, p95, p95, p95, p95, rps, 10, percentiles)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("p96 < 500", "uses the unknown percentile p96: use one of p50, p66"),
        ("latency < 500", "uses the unknown metric 'latency': use one of avg"),
        ("p95 < fast", "is not a threshold expression: write METRIC OPERATOR NUMBER"),
        ("p95 <", "is not a threshold expression"),
        ("p95 < 5%", "% only goes with failure_ratio"),
        ("failure_ratio < 150%", "a failure ratio is from 0 to 1"),
        ("rps > 5ms", "ms is a time unit but rps is not a time"),
    ],
)
def test_malformed_expressions_are_one_line_errors(expression, message):
    with pytest.raises(ConfigError) as error:
        th.parse_expression(expression)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_units_and_aliases():
    assert th.parse_expression("p95 < 0.5s").limit == 500
    assert th.parse_expression("p99.9 <= 800ms").metric == "p99.9"
    rule = th.parse_expression("error_ratio < 1%")
    assert (rule.metric, rule.limit) == ("failure_ratio", 0.01)


def test_overrides_replace_the_same_rule_and_add_others(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[thresholds]\n"TOTAL" = ["p95 < 1000", "failure_ratio < 0.01"]\n')
    result = th.load(str(path), "p95 < 200; GET /api/cart: p99 < 900")
    assert {(r.pattern, r.metric, r.limit) for r in result.rules} == {
        ("TOTAL", "p95", 200.0),
        ("TOTAL", "failure_ratio", 0.01),
        ("GET /api/cart", "p99", 900.0),
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[thresholds\n", "not valid TOML"),
        ('[thresholds]\n"TOTAL" = "p95 <"\n', "is not a threshold expression"),
        ("[settings]\nmin_samples = -1\n", "min_samples = -1: a whole number of at least 0"),
        ('[settings]\ninsufficient_data = "maybe"\n', 'insufficient_data = \'maybe\': use "fail" or "pass"'),
        ("[settings]\ncolour = 1\n", "unknown setting 'colour'"),
        ("[limits]\n", "unknown table [limits]"),
        ('[thresholds]\n"TOTAL" = 5\n', "needs a list of expressions"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as error:
        th.load(str(path))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_evaluate_wildcards_total_and_missing_names():
    rules = th.load("none", "p95 < 300; GET /api/*: p95 < 150; GET /nowhere: p95 < 100")
    rows = [row("/api/a", p95=100), row("/api/b", p95=200), row("/other", p95=50)]
    total = row("Aggregated", count=300, p95=180, type_="")
    verdict = th.evaluate(rules, rows, total)
    by = {(c.rule.pattern, c.row): c for c in verdict.checks}
    assert by[("TOTAL", "TOTAL")].status == "pass"
    assert by[("GET /api/*", "GET /api/a")].status == "pass"
    assert by[("GET /api/*", "GET /api/b")].status == "fail" and by[("GET /api/*", "GET /api/b")].value == 200
    assert ("GET /api/*", "GET /other") not in by
    assert by[("GET /nowhere", "GET /nowhere")].status == "no data"
    assert not verdict.passed and len(verdict.breached) == 2


def test_insufficient_data_policy_and_min_samples():
    thresholds = th.load("none", "GET /rare: p95 < 100; *: p95 < 100; *: failure_ratio < 0.5")
    thresholds.min_samples = 20
    rows = [row("/rare", count=5, failures=4, p95=10)]
    verdict = th.evaluate(thresholds, rows, row("Aggregated", count=5, type_=""))
    statuses = {(c.rule.pattern, c.rule.metric): c.status for c in verdict.checks}
    assert statuses[("GET /rare", "p95")] == "no data"  # named: the policy decides
    assert statuses[("*", "p95")] == "skipped"  # wildcard: skipped
    assert statuses[("*", "failure_ratio")] == "fail"  # failures need no sample size
    assert not verdict.passed
    thresholds.insufficient_data = "pass"
    thresholds.rules = [r for r in thresholds.rules if r.metric == "p95"]
    assert th.evaluate(thresholds, rows, None).passed


class _User(FastHttpUser):
    host = "http://127.0.0.1:1"

    @task
    def nothing(self):
        pass


def fire(environment, name, ms, ok=True, count=1):
    for _ in range(count):
        environment.events.request.fire(
            request_type="GET",
            name=name,
            response_time=ms,
            response_length=10,
            exception=None if ok else RuntimeError("boom"),
            context={},
        )


def test_listener_sets_exit_code_and_writes_the_summary(tmp_path, monkeypatch):
    step_summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    environment = Environment(user_classes=[_User], events=None)
    environment.parsed_options = SimpleNamespace(csv_prefix=str(tmp_path / "run" / "locust"), headless=True)
    runner = environment.create_local_runner()
    thresholds = th.load("none", "GET /slow: p95 < 100; failure_ratio < 0.1")
    listener = RunSummary(environment, thresholds).register()
    fire(environment, "/fast", 20, count=50)
    fire(environment, "/slow", 250, count=30)
    fire(environment, "/fast", 20, ok=False, count=2)
    environment.events.quitting.fire(environment=environment)
    assert environment.process_exit_code == 3
    environment.events.quit.fire(exit_code=3)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["verdict"]["passed"] is False
    failed = [c for c in summary["verdict"]["checks"] if c["status"] == "fail"]
    assert [(c["row"], c["value"]) for c in failed] == [("GET /slow", 250)]
    assert summary["total"]["count"] == 82 and summary["total"]["failures"] == 2
    markdown = (tmp_path / "run" / "summary.md").read_text()
    assert "| GET /slow: p95 < 100 | GET /slow | 250 ms | **FAIL** |" in markdown
    assert step_summary.read_text() == markdown + "\n"  # appended once
    assert listener.verdict is not None
    runner.quit()


def test_listener_passes_with_exit_code_0(tmp_path):
    environment = Environment(user_classes=[_User], events=None)
    environment.parsed_options = SimpleNamespace(csv_prefix=None, headless=True)
    environment.create_local_runner()
    RunSummary(environment, th.load("none", "p95 < 100")).register()
    fire(environment, "/fast", 20, count=30)
    environment.events.quitting.fire(environment=environment)
    assert environment.process_exit_code == 0
    assert environment.kit_verdict["passed"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "p96 < 500"], "uses the unknown percentile p96"),
        (["--threshold", "latency < 5"], "uses the unknown metric 'latency'"),
        (["--threshold", "p95 < lots"], "is not a threshold expression"),
        (["--thresholds", "thresholds/nope.toml"], "THRESHOLDS_FILE='"),
    ],
)
def test_helper_refuses_bad_thresholds_before_any_load(args, message):
    result = helper("run", "basic", *args, "--dry-run")
    assert result.returncode == 2
    assert_no_traceback(result)
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_plain_locust_refuses_bad_thresholds_with_exit_2():
    result = run(
        [PYTHON, "-m", "locust", "-f", "tests/basic_test.py", "--headless", "-t", "2s"],
        env={"THRESHOLDS": "p95 < 500; GET /x: p42 < 3"},
        timeout=60,
    )
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "error: THRESHOLDS 'GET /x': 'p42 < 3' uses the unknown percentile p42" in result.stderr
