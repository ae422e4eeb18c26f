"""Benchmark: the basic scenario's maximum requests/s with the Datadog reporter on versus off.

    python bench/bench_datadog.py [--seconds 10] [--users 20] [--rounds 2]

One run of Locust (one process, one core) per measurement, alternately off and on,
against the demo target this script starts. "On" sends DogStatsD to a local UDP
socket that this script reads, as an agent would. The user is tests/basic_test.py's
with its think time removed (bench/locustfiles/basic_max.py), so the load generator's
CPU is the limit and any cost of the reporter shows. Prints each run's requests/s,
the datagrams received, the ratio on / off (per round, median, best of each; goal:
at least 0.95) and Locust's CPU time per request on each side.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import tempfile
import threading

from _common import REPO_ROOT, locust_rps, ratio_line, start_demo

LOCUSTFILE = str(REPO_ROOT / "bench/locustfiles/basic_max.py")


class UdpSink:
    """A local UDP socket standing in for the Datadog agent: counts datagrams and bytes."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.datagrams = 0
        self.bytes = 0
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while self.running:
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            self.datagrams += 1
            self.bytes += len(data)

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each measurement (default 10)")
    parser.add_argument("--users", type=int, default=20, help="virtual users (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="off/on pairs (default 2)")
    args = parser.parse_args()

    # Nothing from a developer's .env: "off" must really be off.
    empty_env = tempfile.NamedTemporaryFile("w", suffix=".env", delete=False)
    empty_env.close()
    for name in ("DD_AGENT_HOST", "DD_DOGSTATSD_URL", "DD_API_KEY", "SLACK_WEBHOOK_URL"):
        os.environ.pop(name, None)
    os.environ["ENV_FILE"] = empty_env.name
    os.environ["THRESHOLDS_FILE"] = "none"

    sink = UdpSink()
    process, url = start_demo()
    off, on = [], []

    def measure(reporter_on: bool) -> dict:
        if reporter_on:
            os.environ.update(DD_AGENT_HOST="127.0.0.1", DD_DOGSTATSD_PORT=str(sink.port))
        else:
            os.environ.pop("DD_AGENT_HOST", None)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures = locust_rps(LOCUSTFILE, url, args.users, args.seconds)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        figures["cpu_us"] = cpu / figures["count"] * 1e6 if figures["count"] else 0.0
        (on if reporter_on else off).append(figures)
        return figures

    try:
        # Off and on side by side, the order swapped every round so that a change in the
        # machine's load (it is shared) hits both sides alike.
        for round_number in range(args.rounds):
            for reporter_on in (False, True) if round_number % 2 == 0 else (True, False):
                measure(reporter_on)
    finally:
        process.terminate()
        process.wait(timeout=10)
        sink.stop()
        os.unlink(empty_env.name)

    for label, runs in (("reporter off", off), ("reporter on (DogStatsD/UDP)", on)):
        figures = ", ".join(f"{r['rps']:.0f} rps ({r['count']} req, {r['failures']} fail)" for r in runs)
        print(f"{label:<28} {figures}")
    print(f"datagrams received: {sink.datagrams} ({sink.bytes / 1024:.0f} KiB)")
    cpu_off = statistics.median(r["cpu_us"] for r in off)
    cpu_on = statistics.median(r["cpu_us"] for r in on)
    print(f"Locust CPU per request (median): off {cpu_off:.0f} us, on {cpu_on:.0f} us")
    pairs = [a["rps"] / b["rps"] for a, b in zip(on, off, strict=True) if b["rps"]]
    print(f"ratio on / off per round: {', '.join(f'{r:.2f}' for r in pairs)}")
    print(f"ratio on / off (median of rounds): {statistics.median(pairs):.2f}" if pairs else "no figures")
    print(
        ratio_line("ratio on / off (best of each, goal >= 0.95)", max(r["rps"] for r in on), max(r["rps"] for r in off))
    )
    print(
        f"ratio of CPU per request off / on (the same goal, less sensitive to a busy machine): {cpu_off / cpu_on:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
