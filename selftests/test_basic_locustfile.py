"""tests/basic_test.py run for real: headless against the demo target, with and without faults."""

import csv
import json
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from selftests.conftest import (
    PYTHON,
    REPO_ROOT,
    assert_no_traceback,
    free_port,
    helper,
    run,
    run_folder,
    start_swarm,
)

EXPECTED_ROWS = {
    "POST /api/login": "POST /api/login",
    "GET /api/products": "GET /api/products",
    "GET /api/products/[id]": "GET /api/products/{id}",
    "POST /api/cart": "POST /api/cart",
    "GET /api/cart": "GET /api/cart",
    "GET /": "GET /",
    "GET /health": "GET /health",
}


def final_rows(folder) -> dict:
    data = json.loads((folder / "final_stats.json").read_text())
    return {f"{r['type']} {r['name']}": r for r in data["rows"]}


def run_basic(demo, tmp_path, *extra, duration="6s", users="20"):
    # --stop-timeout lets each user finish the request it is in when time is up,
    # so every request the demo target saw is also in Locust's figures.
    return helper(
        "run", "basic", "-H", demo.url, "-u", users, "-r", users, "-t", duration,
        "--reports-dir", str(tmp_path), *extra, "--", "--only-summary", "--stop-timeout", "5",
    )  # fmt: skip


def test_locustfile_loads_and_lists_its_user():
    result = run([PYTHON, "-m", "locust", "-f", "tests/basic_test.py", "--list"], timeout=60)
    assert result.returncode == 0, result.output
    assert "ShopVisitor" in result.stdout


def test_clean_run_has_every_row_and_no_failures(demo, tmp_path):
    result = run_basic(demo, tmp_path)
    assert result.returncode == 0, result.output
    assert_no_traceback(result)
    folder = run_folder(result.stdout)
    assert (folder / "report.html").stat().st_size > 10_000
    # Locust's own CSV holds every request name ...
    with (folder / "locust_stats.csv").open() as handle:
        csv_names = {f"{r['Type']} {r['Name']}" for r in csv.DictReader(handle) if r["Name"] != "Aggregated"}
    assert csv_names == set(EXPECTED_ROWS)
    # ... and the exact final figures: counts above zero, no failure, and the same
    # number of requests per route as the demo target counted on its side.
    rows = final_rows(folder)
    served = demo.stats()["requests"]
    for name, route in EXPECTED_ROWS.items():
        assert rows[name]["count"] > 0, name
        assert rows[name]["failures"] == 0, name
        assert rows[name]["count"] == served[route], (name, rows[name]["count"], served[route])
    # Every request carried the header that marks load-test traffic (kit.traffic_headers()).
    assert demo.stats()["marked_as_load_test"] == sum(served.values())
    assert "RESULT: passed" in result.stdout


def test_one_failing_endpoint_fails_exactly_its_rows(demo, tmp_path):
    demo.set_faults(fail_endpoint="/api/cart", error_status=503)
    result = run_basic(demo, tmp_path)
    assert result.returncode == 3, result.output  # the gate: requests failed
    rows = final_rows(run_folder(result.stdout))
    for name in ("POST /api/cart", "GET /api/cart"):
        assert rows[name]["count"] > 0
        assert rows[name]["failures"] == rows[name]["count"], name
    for name in set(EXPECTED_ROWS) - {"POST /api/cart", "GET /api/cart"}:
        assert rows[name]["failures"] == 0, name
    assert "answered 503, expected 200" in result.stdout


def test_error_ratio_failures_match_what_the_target_injected(demo, tmp_path):
    demo.set_faults(error_ratio=0.2)
    result = run_basic(demo, tmp_path)
    assert result.returncode == 3, result.output
    rows = final_rows(run_folder(result.stdout))
    injected = demo.stats()["injected_errors"]
    assert sum(injected.values()) > 0
    for name, route in EXPECTED_ROWS.items():
        if name in rows:
            assert rows[name]["failures"] == injected.get(route, 0), (name, rows[name], injected)


def test_added_latency_shows_in_the_percentiles(demo, tmp_path):
    demo.set_faults(latency_ms=120)
    result = run_basic(demo, tmp_path)
    assert result.returncode == 0, result.output
    for name, row in final_rows(run_folder(result.stdout)).items():
        assert row["min"] >= 120, (name, row)
        assert 120 <= row["p50"] < 1000, (name, row)


def test_target_down_ends_on_time_counts_every_failure_and_writes_reports(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    result = helper("run", "basic", "-H", dead, "-u", "5", "-r", "5", "-t", "4s", "--reports-dir", str(tmp_path))
    assert result.returncode == 4, result.output
    assert_no_traceback(result)
    assert result.seconds < 4 + 15
    folder = run_folder(result.stdout)
    assert (folder / "report.html").exists() and (folder / "locust_stats.csv").exists()
    total = json.loads((folder / "final_stats.json").read_text())["total"]
    assert total["count"] > 0 and total["failures"] == total["count"]
    assert "no answer from the target" in result.stdout
    assert "Is the target running" in result.stdout


def test_demo_command_runs_to_the_end(tmp_path):
    result = helper("demo", "-t", "5s", "--reports-dir", str(tmp_path), timeout=90)
    assert result.returncode == 0, result.output
    assert_no_traceback(result)
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT: passed"))
    requests_per_second = float(line.split(",")[-1].split()[0])
    assert requests_per_second > 0
    assert ", 0 failures," in line
    assert (run_folder(result.stdout) / "report.html").exists()


def test_ui_serves_locusts_web_ui_and_runs_a_test(demo, tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, str(REPO_ROOT / "locust_helper.py"), "ui", "basic", "-H", demo.url, "--web-port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        start_swarm(base, users=5, host=demo.url)
        time.sleep(4)
        stats = json.loads(urllib.request.urlopen(base + "/stats/requests", timeout=5).read())
        total = next(s for s in stats["stats"] if s["name"] == "Aggregated")
        assert total["num_requests"] > 0 and total["num_failures"] == 0
        assert stats["user_count"] == 5
        urllib.request.urlopen(urllib.request.Request(base + "/stop", data=b""), timeout=5).read()
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail("the web UI did not stop on SIGTERM")
