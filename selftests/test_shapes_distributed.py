"""Load shapes, distributed runs (Locust's master/worker) and the web UI's thresholds tab."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from selftests.conftest import PYTHON, REPO_ROOT, assert_no_traceback, free_port, helper, run_folder, start_swarm
from utils import shapes
from utils.config import ConfigError, load_settings


def summary_of(result) -> dict:
    return json.loads((run_folder(result.stdout) / "summary.json").read_text())


# -- shapes without load ----------------------------------------------------------------


def test_presets_scale_to_users_and_duration():
    for preset in shapes.PRESETS:
        stages = shapes.preset_stages(preset, 30, 600)
        assert shapes.total_seconds(stages) == 600, preset
        assert max(u for _, u in stages) == (2 if preset == "smoke" else 30), preset
    assert shapes.describe(shapes.preset_stages("load", 30, 600)) == "1m:30,8m:30,1m:0"


def test_users_at_follows_the_stages_and_ends():
    stages = [(10, 10), (20, 10), (10, 0)]
    assert shapes.users_at(stages, 0) == (10, 1.0)
    assert shapes.users_at(stages, 15) == (10, 1.0)
    assert shapes.users_at(stages, 35) == (0, 1.0)
    assert shapes.users_at(stages, 40) is None


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LOAD_PRESET": "gentle"}, "LOAD_PRESET='gentle' is not valid: one of smoke, load, stress, spike, soak"),
        ({"LOAD_STAGES": "30s:10,oops"}, "stage 'oops' is not DURATION:USERS"),
        ({"LOAD_STAGES": "30x:10"}, "'30x' is not a duration"),
        ({"LOAD_STAGES": "30s:0,1m:0"}, "no stage has any user"),
        ({"LOAD_STAGES": ""}, None),
        ({"LOAD_PRESET": "load", "LOAD_STAGES": "1m:5"}, "contradict each other"),
    ],
)
def test_invalid_stage_lists_and_presets(environ, message):
    if message is None:
        assert load_settings(environ).stages == ()
        return
    with pytest.raises(ConfigError) as error:
        load_settings(environ)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_helper_rejects_an_unknown_preset_in_one_line():
    result = helper("run", "basic", "--preset", "huge", "--dry-run")
    assert result.returncode == 2
    assert result.stderr.startswith("error: --preset='huge' is not valid")
    assert_no_traceback(result)


def test_budget_counts_the_area_under_a_shape():
    result = helper("budget", "--stages", "30m:50,1h:50,30m:0", "--reports-dir", "/none")
    assert result.returncode == 0
    assert "= 75.000 VU-hours" in result.stdout  # ramps count half: 12.5 + 50 + 12.5


def test_workers_beyond_the_cores_warn():
    result = helper("run", "basic", "--workers", str((os.cpu_count() or 1) + 1), "--dry-run", "--ignore-budget")
    assert result.returncode == 0
    assert "warning: --workers" in result.stderr and "CPU cores" in result.stderr
    assert "--processes" in result.stdout


# -- real runs ----------------------------------------------------------------------------


def test_a_shape_ends_the_run_at_its_planned_time(demo, tmp_path):
    result = helper(
        "run", "basic", "-H", demo.url, "--stages", "3s:6,5s:6", "--reports-dir", str(tmp_path),
        "--thresholds", "none", "--", "--only-summary",
    )  # fmt: skip
    assert result.returncode == 0, result.output
    assert "LOAD_STAGES=3s:6,5s:6 locust -f tests/basic_test.py,utils/load_shape.py" in result.stdout
    summary = summary_of(result)
    assert abs(summary["duration_seconds"] - 8) <= 2, summary["duration_seconds"]
    assert summary["peak_users"] == 6


def test_two_workers_totals_are_the_sum_over_workers(demo, tmp_path):
    result = helper(
        "run", "basic", "-H", demo.url, "-u", "10", "-r", "10", "-t", "6s", "--workers", "2",
        "--reports-dir", str(tmp_path), "--", "--only-summary", "--stop-timeout", "5",
    )  # fmt: skip
    assert result.returncode == 0, result.output
    summary = summary_of(result)
    workers = summary["workers"]
    assert workers["count"] == 2 and workers["lost"] == []
    assert all(n > 0 for n in workers["requests"].values())
    assert sum(workers["requests"].values()) == summary["total"]["count"]
    assert summary["total"]["count"] == sum(demo.stats()["requests"].values())


def _locust_tree(host_url: str) -> tuple[int, list[int]]:
    """(master pid, worker pids) of the locust processes started for HOST_URL."""
    found = subprocess.run(["pgrep", "-f", f"locust -f tests/basic_test.py --host {host_url}"], capture_output=True)
    pids = [int(p) for p in found.stdout.split()]
    parents = {p: int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) for p in pids}
    masters = [p for p in pids if parents[p] not in pids]
    workers = [p for p in pids if parents[p] in pids]
    return masters[0], workers


def test_a_worker_killed_during_the_run(demo, tmp_path):
    process = subprocess.Popen(
        [PYTHON, "locust_helper.py", "run", "basic", "-H", demo.url, "-u", "10", "-r", "10", "-t", "12s",
         "--workers", "2", "--reports-dir", str(tmp_path), "--", "--only-summary"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        time.sleep(5)
        _master, workers = _locust_tree(demo.url)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 3, output
    assert "failed to send heartbeat" in output  # the master noticed, and went on
    summary = json.loads((run_folder(output) / "summary.json").read_text())
    assert len(summary["workers"]["lost"]) == 1
    assert summary["verdict"]["text"] == "FAILED (1 worker(s) lost during the run)"
    assert summary["total"]["count"] > 0


OLD_WORKER = """
import sys
import locust
import locust.runners
locust.__version__ = locust.runners.__version__ = "2.40.0"
from locust.main import main
sys.argv = ["locust", "-f", "tests/basic_test.py", "--worker", "--master-port", sys.argv[1]]
main()
"""


def test_a_worker_with_another_locust_version_is_reported(demo, tmp_path):
    port = free_port()
    master = subprocess.Popen(
        [PYTHON, "locust_helper.py", "run", "basic", "-H", demo.url, "-u", "4", "-r", "4", "-t", "5s", "--master",
         "--expect-workers", "2", "--master-bind-port", str(port), "--reports-dir", str(tmp_path),
         "--thresholds", "none", "--", "--only-summary"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    time.sleep(1.5)
    same = subprocess.Popen(
        [PYTHON, "locust_helper.py", "worker", "basic", "--master-port", str(port)],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    old = subprocess.Popen(
        [PYTHON, "-c", OLD_WORKER, str(port)], cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        output, _ = master.communicate(timeout=90)
    finally:
        for process in (master, same, old):
            if process.poll() is None:
                process.kill()
    assert master.returncode == 0, output
    assert "running a different version (2.40.0) connected" in output  # Locust's own warning
    workers = json.loads((run_folder(output) / "summary.json").read_text())["workers"]
    assert workers["count"] == 2
    assert list(workers["version_mismatch"].values()) == ["2.40.0"]
    assert "Locust version mismatch" in (run_folder(output) / "summary.md").read_text()


def test_thresholds_tab_in_the_web_ui_in_headless_chromium(demo):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is needed for this test (apt-get install chromium; .ci/run installs it)"
    port = free_port()
    ui = subprocess.Popen(
        [PYTHON, "locust_helper.py", "ui", "basic", "-H", demo.url, "--web-port", str(port),
         "--threshold", "GET /api/products: count > 100000"],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        start_swarm(base, users=5, host=demo.url)
        time.sleep(6)
        dom = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", f"{base}/?tab=thresholds"],
            capture_output=True, text=True, timeout=90,
        ).stdout  # fmt: skip
    finally:
        ui.terminate()
        ui.wait(timeout=15)
        shutil.rmtree(profile, ignore_errors=True)
    assert ">Thresholds<" in dom  # the tab
    assert "TOTAL: failure_ratio &lt; 1%" in dom and ">PASS<" in dom  # a passing row
    assert "GET /api/products: count &gt; 100000" in dom and ">FAIL<" in dom  # a failing row, live
