"""Benchmark: the basic scenario's user versus a bare FastHttpUser, and the demo target's raw capacity.

    python bench/bench_basic.py [--seconds 10] [--users 20] [--rounds 2]

Prints:
  * the demo target's raw capacity, measured with wrk (Debian package "wrk") when it is installed;
  * requests/s of tests/basic_test.py's user (think time removed) and of a minimal
    FastHttpUser hitting one endpoint, each run alternately in the same session, and their ratio.
Both Locust runs use one Locust process: the figure is what one load-generator core can send.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess

from _common import REPO_ROOT, locust_rps, ratio_line, start_demo


def wrk_capacity(url: str, seconds: int) -> str:
    if not shutil.which("wrk"):
        return "wrk not installed (apt-get install wrk): raw capacity not measured"
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", "50", "-d", f"{seconds}s", url], capture_output=True, text=True, timeout=seconds + 30
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return f"{float(match.group(1)):.0f} requests/s" if match else f"wrk gave no figure: {out[-200:]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    process, url = start_demo()
    try:
        print(
            f"demo target raw capacity, GET /api/products/1 (wrk, 50 connections): "
            f"{wrk_capacity(url + '/api/products/1', args.seconds)}"
        )
        basic, minimal = [], []
        for _ in range(args.rounds):
            basic.append(locust_rps(str(REPO_ROOT / "bench/locustfiles/basic_max.py"), url, args.users, args.seconds))
            minimal.append(
                locust_rps(str(REPO_ROOT / "bench/locustfiles/minimal_fasthttp.py"), url, args.users, args.seconds)
            )
        for name, runs in (("basic_test user (no think time)", basic), ("minimal FastHttpUser", minimal)):
            figures = ", ".join(
                f"{r['rps']:.0f} rps ({r['failures']} failures, {r['cpu_us']:.0f} us CPU each)" for r in runs
            )
            print(f"{name:<34} {figures}")
        best_basic = max(r["rps"] for r in basic)
        best_minimal = max(r["rps"] for r in minimal)
        print(ratio_line("ratio basic / minimal (best of each)", best_basic, best_minimal))
        cpu_basic = min(r["cpu_us"] for r in basic)
        cpu_minimal = min(r["cpu_us"] for r in minimal)
        print(f"Locust CPU per request (best): basic {cpu_basic:.0f} us, minimal {cpu_minimal:.0f} us")
        label = "ratio of CPU per request minimal / basic (less sensitive to a busy machine)"
        print(ratio_line(label, cpu_minimal, cpu_basic))
    finally:
        process.terminate()
        process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
