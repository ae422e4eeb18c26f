"""Shared pieces of the benchmarks: start the demo target, run Locust headless, read its figures.

Benchmarks are not tests: they print what they measured, side by side in one run,
so that a ratio compares two things under the same machine load.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from utils.results import read_results


def start_demo(*extra: str) -> tuple[subprocess.Popen, str]:
    """Start the demo target on a free port; return (process, base URL)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "demo", "--port", "0", *extra], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    line = process.stdout.readline()
    if not line.startswith("DEMO_READY "):
        process.kill()
        raise SystemExit(f"the demo target did not start: {line!r}")
    return process, line.split()[1]


def locust_rps(locustfile: str, host: str, users: int, seconds: int, extra: list[str] | None = None) -> dict:
    """Run LOCUSTFILE headless; return its aggregated figures (count, failures, rps, p50, p95)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        command = [
            sys.executable, "-m", "locust", "-f", locustfile, "--headless", "--host", host,
            "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--only-summary",
            "--csv", str(folder / "locust"), "--stop-timeout", "2", *(extra or []),
        ]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, cwd=REPO_ROOT, capture_output=True, timeout=seconds + 60, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # Locust's own CPU time per request: a figure a busy machine disturbs far less than requests/s.
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        _rows, total, _failures = read_results(folder)
        figures = {"count": total.count, "failures": total.failures, "rps": total.rps, "p50": total.p50}
        figures["cpu_us"] = cpu / total.count * 1e6 if total.count else 0.0
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def ratio_line(label: str, a: float, b: float) -> str:
    return f"{label}: {a:.0f} / {b:.0f} = {a / b:.2f}" if b else f"{label}: n/a (denominator 0)"
