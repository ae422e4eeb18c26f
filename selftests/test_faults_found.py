"""Bad input and faults found by trying to break the kit: each one stays fixed."""

import json
import signal
import socket
import subprocess
import time

import pytest

from selftests.conftest import PYTHON, REPO_ROOT, assert_no_traceback, free_port, helper, run_folder
from selftests.http_intake import Intake


def one_line_exit_2(result, starts_with: str) -> None:
    assert result.returncode == 2, result.output
    assert_no_traceback(result)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(starts_with), result.stderr


@pytest.fixture
def silent_listener():
    """A TCP port that accepts connections and never answers (a hung server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


# -- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "secret"),
    [
        ("SLACK_WEBHOOK_URL", "webhook.invalid/hook/fake-token-1", "fake-token-1"),
        ("SLACK_WEBHOOK_URL", "https://webhook.invalid:99999/hook/fake-token-2", "fake-token-2"),
        ("REDIS_URL", "redis//:SECRET3@127.0.0.1:6379/0", "SECRET3"),
        ("REDIS_URL", "127.0.0.1:6379?password=SECRET4", "SECRET4"),
        ("TARGET_HOST", "http://user:SECRET5@127.0.0.1:8080", "SECRET5"),
    ],
)
def test_a_bad_secret_setting_is_refused_without_showing_the_secret(variable, value, secret):
    result = helper("run", "basic", "--dry-run", env={variable: value})
    one_line_exit_2(result, f"error: {variable}=")
    assert secret not in result.output


def test_debug_logging_does_not_show_the_slack_webhook(demo, tmp_path):
    intake = Intake(status=500).start()
    try:
        hook = f"{intake.url}/hook/SECRET-DEBUG-6"
        result = helper("run", "basic", "-H", demo.url, "-u", "2", "-r", "2", "-t", "2s", "--reports-dir",
                        str(tmp_path), "--", "--loglevel", "DEBUG", env={"SLACK_WEBHOOK_URL": hook})  # fmt: skip
    finally:
        intake.stop()
    assert len(intake.received) == 1
    assert "SECRET-DEBUG-6" not in result.output


# -- runs that hang or are stopped -------------------------------------------------------------


def test_a_hanging_datadog_api_neither_delays_the_run_nor_changes_its_result(demo, tmp_path, silent_listener):
    env = {"DD_API_KEY": "key-7", "DD_API_URL": silent_listener}
    result = helper("run", "basic", "-H", demo.url, "-u", "3", "-r", "3", "-t", "4s", "--reports-dir",
                    str(tmp_path), "--thresholds", "none", env=env)  # fmt: skip
    assert result.returncode == 0, result.output
    assert result.seconds < 4 + 20, result.seconds
    assert "did not stop on time" not in result.output


def test_a_hanging_target_says_no_request_was_answered(tmp_path, silent_listener):
    result = helper("run", "basic", "-H", silent_listener, "-u", "3", "-r", "3", "-t", "3s",
                    "--reports-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 4, result.output
    assert "no request was answered or sent: is the target hanging" in result.stdout
    assert result.seconds < 3 + 20


def test_sigterm_to_the_helper_stops_the_run_with_reports_and_exit_4(demo, tmp_path):
    process = subprocess.Popen(
        [PYTHON, "locust_helper.py", "run", "basic", "-H", demo.url, "-u", "4", "-r", "4", "-t", "10m",
         "--reports-dir", str(tmp_path)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    time.sleep(5)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 4, output
    assert "RESULT: interrupted (SIGTERM)" in output
    assert (run_folder(output) / "report.html").exists()
    assert "Verdict:" not in output  # an interrupted run is not judged as passed or failed


# -- files the kit reads that are broken ----------------------------------------------------------


def test_broken_files_are_one_line_not_a_traceback(tmp_path):
    one_line_exit_2(helper("run", "basic", "--thresholds", str(tmp_path), "--dry-run"), "error: THRESHOLDS_FILE=")
    bad_types = tmp_path / "types.toml"
    bad_types.write_text("thresholds = 5\n")
    one_line_exit_2(helper("run", "basic", "--thresholds", str(bad_types), "--dry-run"), f"error: {bad_types}:")
    latin1 = tmp_path / "latin1.env"
    latin1.write_bytes(b"TARGET_HOST=http://127.0.0.1:8080\nLOGIN_USERNAME=J\xf6rg\n")
    one_line_exit_2(helper("--env-file", str(latin1), "run", "basic", "--dry-run"), f"error: {latin1}: cannot be read")
    one_line_exit_2(helper("--env-file", str(tmp_path), "run", "basic", "--dry-run"), "error: ENV_FILE=")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "vu-hours-ledger.csv").write_bytes(b"\xff\xfe\x00garbage")
    one_line_exit_2(helper("budget", "--reports-dir", str(tmp_path / "reports")), "error: ")
    one_line_exit_2(helper("run", "basic", "-t", "99999999999999h", "--dry-run"), "error: --duration=")


def test_compare_refuses_what_it_cannot_compare(tmp_path):
    broken = tmp_path / "20260101T000000Z_basic"
    broken.mkdir()
    (broken / "final_stats.json").write_text("{not json")
    empty = tmp_path / "20260101T000001Z_basic"
    empty.mkdir()
    (empty / "final_stats.json").write_text(json.dumps({"rows": [], "total": None, "errors": []}))
    one_line_exit_2(helper("compare", str(broken), str(empty)), "error: ")
    ok = tmp_path / "20260101T000002Z_redis"
    ok.mkdir()
    row = {"type": "GET", "name": "/x", "count": 50, "failures": 0, "avg": 1, "min": 1, "max": 1, "median": 1,
           "p50": 1, "p90": 1, "p95": 1, "p99": 1, "rps": 1, "avg_size": 1}  # fmt: skip
    (ok / "final_stats.json").write_text(json.dumps({"rows": [row], "total": row, "errors": []}))
    other = tmp_path / "20260101T000003Z_basic"
    other.mkdir()
    (other / "final_stats.json").write_text(json.dumps({"rows": [row], "total": row, "errors": []}))
    (ok / "summary.json").write_text(json.dumps({"scenario": "redis", "verdict": {"passed": True}}))
    (other / "summary.json").write_text(json.dumps({"scenario": "basic", "verdict": {"passed": True}}))
    one_line_exit_2(helper("compare", str(ok), str(other)), "error: A is a run of 'redis', B of 'basic'")
    one_line_exit_2(helper("compare", str(empty), str(other)), "error: nothing to compare")


def test_compare_lists_total_once(tmp_path):
    row = {"type": "GET", "name": "/x", "count": 50, "failures": 0, "avg": 1, "min": 1, "max": 1, "median": 1,
           "p50": 1, "p90": 1, "p95": 10, "p99": 1, "rps": 1, "avg_size": 1}  # fmt: skip
    total = {**row, "type": "", "name": "Aggregated"}
    folders = []
    for n, p95 in enumerate((10, 100)):
        folder = tmp_path / f"2026010{n}T000000Z_basic"
        folder.mkdir()
        rows = [{**row, "p95": p95}]
        (folder / "final_stats.json").write_text(json.dumps({"rows": rows, "total": {**total, "p95": p95}}))
        folders.append(str(folder))
    result = helper("compare", *folders)
    assert result.returncode == 3
    assert result.stdout.count("\nTOTAL ") == 1
    assert "REGRESSION: 2 gate(s) crossed" in result.stdout  # GET /x and TOTAL, once each


# -- options that do not fit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "starts_with"),
    [
        (["run", "basic"], {"DD_AGENT_HOST": "127.0.0.1:8125"}, "error: DD_AGENT_HOST='127.0.0.1:8125'"),
        (["run", "basic", "--master", "--master-bind-port", "99999"], {}, "error: --master-bind-port=99999"),
        (["worker", "basic", "--master-host", "http://x"], {}, "error: --master-host='http://x'"),
        (["run", "basic", "--preset", "stress", "-t", "1s"], {}, "error: LOAD_DURATION=1s is too short"),
        (["run", "basic", "-H", "http://127.0.0.1:0"], {}, "error: --host='http://127.0.0.1:0'"),
    ],
)
def test_options_that_do_not_fit_are_one_line(args, env, starts_with):
    one_line_exit_2(helper(*args, "--dry-run", env=env), starts_with)


def test_a_preset_flag_wins_over_stages_from_the_environment():
    result = helper("run", "basic", "--preset", "load", "--dry-run", "--ignore-budget", env={"LOAD_STAGES": "9s:1"})
    assert result.returncode == 0, result.output
    assert "LOAD_STAGES=6s:10,48s:10,6s:0" in result.stdout


def test_a_worker_port_is_free_not_5557():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    result = helper("run", "basic", "--workers", "2", "--dry-run", "--ignore-budget")
    blocker.close()
    assert "--master-bind-port" in result.stdout and "--master-port" in result.stdout
    assert free_port() > 0
