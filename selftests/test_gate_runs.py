"""Thresholds, summary, compare, Slack and VU-hours on real runs against the demo target."""

import json
import textwrap

from selftests.conftest import PYTHON, assert_no_traceback, helper, run, run_folder
from selftests.http_intake import Intake


def run_basic(demo, tmp_path, *extra, duration="6s", users="10", env=None, after=()):
    return helper(
        "run", "basic", "-H", demo.url, "-u", users, "-r", users, "-t", duration,
        "--reports-dir", str(tmp_path), *extra, "--", "--only-summary", *after,
        env=env,
    )  # fmt: skip


def few_samples(tmp_path) -> str:
    """A thresholds file with no rules of its own and min_samples = 3 (short test runs)."""
    path = tmp_path / "few-samples.toml"
    path.write_text("[settings]\nmin_samples = 3\n")
    return str(path)


def summary_of(result) -> dict:
    return json.loads((run_folder(result.stdout) / "summary.json").read_text())


def test_breached_p95_exits_3_and_the_summary_names_row_and_value(demo, tmp_path):
    demo.set_faults(latency_ms=250)
    result = run_basic(
        demo, tmp_path, "--thresholds", few_samples(tmp_path),
        "--threshold", "GET /api/products: p95 < 200", "--threshold", "p95 < 5000",
    )  # fmt: skip
    assert result.returncode == 3, result.output
    assert_no_traceback(result)
    summary = summary_of(result)
    assert summary["verdict"]["passed"] is False
    failed = [c for c in summary["verdict"]["checks"] if c["status"] == "fail"]
    assert [c["row"] for c in failed] == ["GET /api/products"]
    assert 250 <= failed[0]["value"] < 1000
    markdown = (run_folder(result.stdout) / "summary.md").read_text()
    assert "| GET /api/products: p95 < 200 | GET /api/products |" in markdown and "**FAIL**" in markdown
    assert "GET /api/products: p95 < 200  [GET /api/products: measured" in result.stdout


def test_passing_run_exits_0_with_a_passed_summary(demo, tmp_path):
    result = run_basic(demo, tmp_path, "--threshold", "p95 < 2000")
    assert result.returncode == 0, result.output
    summary = summary_of(result)
    assert summary["verdict"]["passed"] is True
    assert summary["total"]["count"] > 0 and summary["total"]["failures"] == 0


def test_abort_on_breach_stops_the_run_early(demo, tmp_path):
    demo.set_faults(latency_ms=300)
    thresholds = tmp_path / "abort.toml"
    thresholds.write_text('[settings]\nabort_on_breach = true\nabort_grace = "2s"\nmin_samples = 5\n')
    result = run_basic(
        demo, tmp_path, "--thresholds", str(thresholds), "--threshold", "p95 < 100", duration="60s", users="20"
    )
    assert result.returncode == 3, result.output
    assert result.seconds < 30, result.seconds  # planned 60 s
    summary = summary_of(result)
    assert summary["aborted"].startswith("TOTAL: p95 < 100")
    assert summary["verdict"]["text"].startswith("FAILED (stopped early")
    assert summary["duration_seconds"] < 20


def test_run_with_no_requests_at_all_has_no_results(demo, tmp_path):
    locustfile = tmp_path / "idle_test.py"
    locustfile.write_text(
        textwrap.dedent(
            f"""
            from locust import User, constant, task
            import sys
            sys.path.insert(0, {str(run_folder.__globals__["REPO_ROOT"])!r})
            from utils import kit
            kit.install()

            class Idle(User):
                wait_time = constant(1)

                @task
                def think(self):
                    pass
            """
        )
    )
    result = helper("run", str(locustfile), "-H", demo.url, "-u", "2", "-r", "2", "-t", "3s",
                    "--reports-dir", str(tmp_path / "reports"))  # fmt: skip
    assert result.returncode == 4, result.output
    assert "no request was answered or sent" in result.stdout
    summary = summary_of(result)
    assert summary["total"]["count"] == 0
    assert [c["status"] for c in summary["verdict"]["checks"] if c["row"] == "TOTAL"] == ["no data", "no data"]


def test_compare_flags_a_regression_between_two_real_runs(demo, tmp_path):
    fast = run_basic(demo, tmp_path)
    assert fast.returncode == 0, fast.output
    demo.set_faults(latency_ms=120)
    slow = run_basic(demo, tmp_path)
    assert slow.returncode == 0, slow.output
    a, b = run_folder(fast.stdout), run_folder(slow.stdout)
    result = helper("compare", str(a), str(b), "--min-samples", "5")
    assert result.returncode == 3, result.output
    assert "REGRESSION" in result.stdout and "TOTAL: p95" in result.stdout
    # The other way round it is an improvement; and with one run: against the last passing one.
    assert helper("compare", str(b), str(a), "--min-samples", "5").returncode == 0
    latest = helper("compare", b.name, "--reports-dir", str(tmp_path), "--min-samples", "5")
    assert latest.returncode == 3 and f"A: {a}" in latest.stdout


def test_compare_with_a_broken_run_folder_is_one_line(tmp_path):
    (tmp_path / "20260101T000000Z_basic").mkdir()
    result = helper("compare", "20260101T000000Z_basic", "nowhere", "--reports-dir", str(tmp_path))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "no run folder 'nowhere'" in result.stderr
    result = helper("compare", str(tmp_path / "20260101T000000Z_basic"))
    assert result.returncode == 2 and "is not a finished run: it has no final_stats.json" in result.stderr
    assert_no_traceback(result)


def test_slack_gets_exactly_one_message_in_a_two_process_run(demo, tmp_path):
    intake = Intake().start()
    try:
        hook = f"{intake.url}/hook/secret-token-42"
        result = run_basic(
            demo,
            tmp_path,
            env={
                "SLACK_WEBHOOK_URL": hook,
                "GITHUB_SERVER_URL": "https://github.com",
                "GITHUB_REPOSITORY": "team/app",
                "GITHUB_RUN_ID": "99",
            },
            after=["--processes", "2"],
        )
        assert result.returncode == 0, result.output
        assert len(intake.received) == 1
        message = intake.received[0].json()
        text = message["blocks"][0]["text"]["text"]
        summary = summary_of(result)
        assert f"*Requests:* {summary['total']['count']} " in text
        assert "PASSED" in text and "https://github.com/team/app/actions/runs/99" in text
        assert "secret-token-42" not in result.output
    finally:
        intake.stop()


def test_slack_errors_and_timeouts_never_change_the_verdict(demo, tmp_path):
    for status, hang in ((500, 0), (400, 0), (200, 8)):
        intake = Intake(status=status, hang_seconds=hang, reply=b"invalid_payload").start()
        try:
            hook = f"{intake.url}/hook/secret-token-43"
            result = run_basic(demo, tmp_path, duration="3s", env={"SLACK_WEBHOOK_URL": hook})
            assert result.returncode == 0, result.output
            assert_no_traceback(result)
            assert len(intake.received) == 1
            assert "Slack: " in result.output  # one warning line says what happened
            assert "secret-token-43" not in result.output
        finally:
            intake.stop()


def test_vu_hours_of_a_20_user_60_second_run(long_run):
    # A helper run of basic, 20 users for 60 s, started in the background when the
    # tests were collected (selftests/conftest.py): 20 x 60 s = 1/3 VU-hour.
    result = long_run.wait()
    assert result.returncode == 0, result.output
    used = summary_of(result)["vu_hours"]
    assert abs(used - 1 / 3) / (1 / 3) < 0.05, used
    ledger = (long_run.reports / "vu-hours-ledger.csv").read_text().splitlines()
    assert ledger[0].startswith("finished_utc,run_id,scenario,planned_vu_hours,used_vu_hours")
    assert ledger[-1].split(",")[4] == f"{used:.6f}"


def test_github_step_summary_is_appended_once(demo, tmp_path):
    step = tmp_path / "step.md"
    result = run_basic(demo, tmp_path, duration="3s", env={"GITHUB_STEP_SUMMARY": str(step)})
    assert result.returncode == 0
    assert step.read_text().count("## Load test `basic`: PASSED") == 1


def test_budget_plans_the_teams_profile():
    result = helper(
        "budget", "-u", "50", "-r", "50", "-t", "2h", "--runs-per-month", "2", "--reports-dir", "/nonexistent"
    )
    assert result.returncode == 0, result.output
    assert "= 99.993 VU-hours" in result.stdout  # 50 x 2 h, less half of a 1 s ramp-up
    assert "Per month:  2 run(s) = 199.986 VU-hours" in result.stdout
    over = helper("budget", "-u", "50", "-t", "2h", "--runs-per-month", "3", "--reports-dir", "/nonexistent")
    assert over.returncode == 3 and "OVER" in over.stdout


def test_budget_options_that_contradict_each_other():
    both = helper("run", "basic", "--enforce-budget", "--ignore-budget", "--dry-run")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    for args, message in [
        (["budget", "--runs-per-month", "0"], "--runs-per-month='0' is not valid"),
        (["budget", "--budget", "-5"], "--vu-hours-budget='-5' is not valid"),
    ]:
        result = helper(*args)
        assert result.returncode == 2 and result.stderr.startswith(f"error: {message}"), result.stderr
        assert_no_traceback(result)


def test_enforced_budget_refuses_a_run_that_does_not_fit(tmp_path):
    result = helper("run", "basic", "-u", "50", "-t", "2h", "--enforce-budget", "--dry-run",
                    "--reports-dir", str(tmp_path), env={"VU_HOURS_BUDGET": "10"})  # fmt: skip
    assert result.returncode == 3
    assert result.stderr.startswith("refused: this run plans")
    assert "only 10.000 of the month's 10 are left" in result.stderr
    budget = {"VU_HOURS_BUDGET": "10"}
    warned = helper("run", "basic", "-u", "50", "-t", "2h", "--dry-run", "--reports-dir", str(tmp_path), env=budget)
    assert warned.returncode == 0 and "warning: this run plans" in warned.stderr


def test_plain_locust_run_gates_with_exit_code_3(demo, tmp_path):
    demo.set_faults(fail_endpoint="/api/products")
    result = run(
        [PYTHON, "-m", "locust", "-f", "tests/basic_test.py", "--headless", "-u", "5", "-r", "5", "-t", "4s",
         "--host", demo.url, "--only-summary"],
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 3, result.output
    assert "Thresholds: FAILED" in result.output
