#!/usr/bin/env python3
"""locust_helper.py: run the kit's load tests with short commands.

Every command prints the exact ``locust`` command line it runs, so you learn
Locust's own options as you go; ``--dry-run`` prints it without running. You can
always run the same locustfile with plain ``locust -f tests/FILE.py``.

    python locust_helper.py list                      the scenarios
    python locust_helper.py run basic --users 10 --duration 1m
    python locust_helper.py run basic -- --loglevel DEBUG   (after --: straight to locust)
    python locust_helper.py ui basic                  Locust's web UI on http://127.0.0.1:8089
    python locust_helper.py target --port 8080        start the demo target app
    python locust_helper.py demo                      demo target + a 30 s basic run + results

Exit codes (also in README.md):
    0  passed
    2  usage or configuration error (one line on stderr)
    3  the run finished but failed its gate: a threshold was breached
       (with no thresholds file: at least one request failed)
    4  the run produced no usable results: no request succeeded (is the target
       up?), no request was sent at all, or Locust crashed or overran its time
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO_ROOT))

from utils import config
from utils.results import CSV_PREFIX, format_table, read_results

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_GATE_FAILED = 3
EXIT_NO_RESULTS = 4

# How long after the planned end a run may take to stop before it is killed.
STOP_GRACE_SECONDS = 30


class HelperError(Exception):
    """A usage or configuration problem: printed as one line, exit code 2."""


@dataclass(frozen=True)
class Scenario:
    name: str
    file: str
    description: str


SCENARIOS = {
    s.name: s
    for s in [
        Scenario("basic", "tests/basic_test.py", "REST shoppers: log in, browse products, fill a cart"),
    ]
}


# ---------------------------------------------------------------------------
# Argument parsing
# ---------------------------------------------------------------------------


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage block) and exit code 2."""

    def error(self, message: str):
        raise HelperError(f"{message} (see: python locust_helper.py {self._subcommand()}--help)")

    def _subcommand(self) -> str:
        parts = self.prog.split()[1:]
        return " ".join(parts) + " " if parts else ""


def _load_options(parser: argparse.ArgumentParser, with_duration: bool = True) -> None:
    group = parser.add_argument_group("load (defaults from .env / environment)")
    group.add_argument("-u", "--users", help="number of virtual users (LOAD_USERS, default 10)")
    group.add_argument("-r", "--spawn-rate", help="users started per second (LOAD_SPAWN_RATE, default 2)")
    if with_duration:
        group.add_argument("-t", "--duration", help="how long: 30s, 5m, 2h, 1h30m (LOAD_DURATION, default 1m)")
    group.add_argument("-H", "--host", help="target base URL (TARGET_HOST, default http://127.0.0.1:8080)")
    group.add_argument("--tags", nargs="+", metavar="TAG", help="run only tasks with these tags")
    group.add_argument("--exclude-tags", nargs="+", metavar="TAG", help="skip tasks with these tags")
    parser.add_argument("--dry-run", action="store_true", help="print the locust command, do not run it")


def build_list(sub) -> None:
    p = sub.add_parser("list", help="list the scenarios", description="List the scenarios with one line each.")
    p.set_defaults(func=cmd_list)


def build_run(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run a scenario headless and write reports/",
        description="Run SCENARIO headless. Reports go to reports/<UTC time>_<scenario>/. "
        "Anything after -- is passed to locust untouched.",
    )
    p.add_argument("scenario", help="a scenario name (see 'list') or a path to a locustfile")
    _load_options(p)
    p.add_argument("--reports-dir", default="reports", help="where run folders are made (default: reports)")
    p.set_defaults(func=cmd_run)


def build_ui(sub) -> None:
    p = sub.add_parser(
        "ui",
        help="open Locust's web UI for a scenario",
        description="Start Locust's web UI for SCENARIO on 127.0.0.1. Open the printed URL, press Start.",
    )
    p.add_argument("scenario", help="a scenario name (see 'list') or a path to a locustfile")
    _load_options(p)
    p.add_argument("--web-host", default="127.0.0.1", help="address of the web UI (default 127.0.0.1)")
    p.add_argument("--web-port", type=int, default=8089, help="port of the web UI (default 8089)")
    p.set_defaults(func=cmd_ui)


def build_target(sub) -> None:
    p = sub.add_parser(
        "target",
        help="start the demo target app (until Ctrl+C)",
        description="Start the bundled demo target app in the foreground. Stop it with Ctrl+C.",
    )
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0 = any free port)")
    p.add_argument("--latency-ms", help="fault: milliseconds added to every answer")
    p.add_argument("--error-ratio", help="fault: share of requests that fail, 0.0 to 1.0")
    p.add_argument("--error-status", help="fault: HTTP status of failed requests (default 500)")
    p.add_argument("--fail-endpoint", help="fault: a path prefix that always fails, e.g. /api/cart")
    p.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    p.set_defaults(func=cmd_target)


def build_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="start the demo target, run the basic scenario against it, show results",
        description="Start the demo target on a free port, run the basic scenario headless against it, "
        "print a results table and the HTML report's path, stop the target.",
    )
    p.add_argument("-u", "--users", default="10", help="virtual users (default 10)")
    p.add_argument("-r", "--spawn-rate", default="5", help="users started per second (default 5)")
    p.add_argument("-t", "--duration", default="30s", help="how long (default 30s)")
    p.add_argument("--reports-dir", default="reports", help="where run folders are made (default: reports)")
    p.set_defaults(func=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="locust_helper.py",
        description="Run the kit's Locust load tests.",
        epilog="exit codes: 0 passed, 2 usage/configuration error, 3 gate failed (thresholds breached or "
        "requests failed), 4 no usable results (target down, nothing sent, Locust crashed)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env-file", help="read settings from this file instead of .env (sets ENV_FILE)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for build in (build_list, build_run, build_ui, build_target, build_demo):
        build(sub)
    return parser


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


def cmd_list(args, _passthrough) -> int:
    width = max(len(name) for name in SCENARIOS)
    for scenario in SCENARIOS.values():
        print(f"{scenario.name:<{width}}  {scenario.file:<28}  {scenario.description}")
    return EXIT_OK


def resolve_scenario(name: str) -> Scenario:
    if name in SCENARIOS:
        return SCENARIOS[name]
    path = Path(name)
    if path.suffix == ".py" and path.is_file():
        return Scenario(path.stem, str(path), "your own locustfile")
    raise HelperError(f"unknown scenario {name!r}: choose one of {', '.join(SCENARIOS)}, or give a locustfile path")


def settings_from(args, **extra) -> config.Settings:
    overrides = {
        "host": getattr(args, "host", None),
        "users": getattr(args, "users", None),
        "spawn_rate": getattr(args, "spawn_rate", None),
        "duration": getattr(args, "duration", None),
    }
    overrides.update(extra)
    try:
        return config.load_settings(**overrides)
    except config.ConfigError as error:
        raise HelperError(str(error)) from None


def locust_base_command(scenario: Scenario, settings: config.Settings, args) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        scenario.file,
        "--host",
        settings.target_host,
        "--users",
        str(settings.users),
        "--spawn-rate",
        f"{settings.spawn_rate:g}",
    ]
    if getattr(args, "tags", None):
        command += ["--tags", *args.tags]
    if getattr(args, "exclude_tags", None):
        command += ["--exclude-tags", *args.exclude_tags]
    return command


def show_command(command: list[str]) -> str:
    """The command as a copy-pastable line, with any password in a URL hidden."""
    shown = [config.redact_url(part) if "://" in part else part for part in command]
    if shown[:3] == [sys.executable, "-m", "locust"]:
        shown[:3] = ["locust"]
    return shlex.join(shown)


def new_run_folder(reports_dir: str, scenario: Scenario) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(reports_dir) / f"{stamp}_{scenario.name}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = Path(reports_dir) / f"{stamp}_{scenario.name}_{suffix}"
    return folder


def cmd_run(args, passthrough) -> int:
    scenario = resolve_scenario(args.scenario)
    settings = settings_from(args)
    folder = new_run_folder(args.reports_dir, scenario)
    command = locust_base_command(scenario, settings, args) + [
        "--headless",
        "--run-time",
        config.format_duration(settings.duration_seconds),
        "--csv",
        str(folder / CSV_PREFIX),
        "--html",
        str(folder / "report.html"),
        *passthrough,
    ]
    print(f"$ {show_command(command)}", flush=True)
    if args.dry_run:
        return EXIT_OK
    folder.mkdir(parents=True, exist_ok=True)
    return execute_run(command, folder, settings, scenario)


def start_child(command: list[str], env: dict | None = None, **kwargs) -> subprocess.Popen:
    """Start COMMAND; a SIGTERM to the helper is passed on to it (so nothing is left running)."""
    process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, **(env or {})}, **kwargs)

    def pass_on(_signum, _frame):
        if process.poll() is None:
            process.terminate()

    signal.signal(signal.SIGTERM, pass_on)
    return process


def wait_child(process: subprocess.Popen) -> int:
    """Wait for PROCESS; on Ctrl+C (which reached it too) let it finish its own shutdown."""
    try:
        return process.wait()
    except KeyboardInterrupt:
        return process.wait()


def execute_run(command: list[str], folder: Path, settings: config.Settings, scenario: Scenario) -> int:
    """Run locust, then judge the run from the files it wrote."""
    deadline = settings.duration_seconds + STOP_GRACE_SECONDS
    started = time.monotonic()
    # The run's id (its folder's name) and scenario, for the kit's listeners on every process.
    process = start_child(command, env={"KIT_RUN_ID": folder.name, "KIT_SCENARIO": scenario.name})
    overran = False
    try:
        process.wait(timeout=deadline)
    except subprocess.TimeoutExpired:
        overran = True
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    except KeyboardInterrupt:
        # Ctrl+C reached Locust too: let it stop and write its reports.
        wait_child(process)
    elapsed = time.monotonic() - started
    return judge_run(folder, process.returncode, elapsed, overran)


def judge_run(folder: Path, locust_exit: int, elapsed: float, overran: bool = False) -> int:
    print()
    try:
        rows, total, failures_list = read_results(folder)
    except FileNotFoundError:
        print(f"RESULT: no results - Locust exited with code {locust_exit} and wrote no statistics in {folder}/")
        return EXIT_NO_RESULTS
    print(format_table(rows, total))
    print()
    print(f"HTML report: {folder / 'report.html'}")
    print(f"CSV files:   {folder}/{CSV_PREFIX}_*.csv")
    if overran:
        print(f"RESULT: no results - Locust did not stop on time and was stopped after {elapsed:.0f} s")
        return EXIT_NO_RESULTS
    if locust_exit not in (0, 1):
        print(f"RESULT: no results - Locust exited with code {locust_exit} (see its output above)")
        return EXIT_NO_RESULTS
    count = total.count if total else 0
    failures = total.failures if total else 0
    if count == 0:
        print("RESULT: no results - no request was sent (check the scenario's tasks and --tags)")
        return EXIT_NO_RESULTS
    if failures == count:
        first = next(iter(failures_list), {}).get("error", "")
        print(f"RESULT: no results - all {count} requests failed; first error: {first[:200]}")
        print("        Is the target running and is TARGET_HOST / --host right?")
        return EXIT_NO_RESULTS
    if failures:
        print(f"RESULT: FAILED - {failures} of {count} requests failed ({failures / count:.2%})")
        for failure in failures_list[:5]:
            print(
                f"        {failure['occurrences']:>6} x {failure['method']} {failure['name']}: {failure['error'][:120]}"
            )
        return EXIT_GATE_FAILED
    print(f"RESULT: passed - {count} requests, 0 failures, {total.rps:.1f} requests/s")
    return EXIT_OK


def cmd_ui(args, passthrough) -> int:
    scenario = resolve_scenario(args.scenario)
    settings = settings_from(args)
    if not 1 <= args.web_port <= 65535:
        raise HelperError(f"--web-port={args.web_port} is not valid: a port from 1 to 65535 is needed, e.g. 8089")
    command = locust_base_command(scenario, settings, args) + [
        "--web-host",
        args.web_host,
        "--web-port",
        str(args.web_port),
        "--run-time",
        config.format_duration(settings.duration_seconds),
        *passthrough,
    ]
    print(f"$ {show_command(command)}", flush=True)
    if args.dry_run:
        return EXIT_OK
    print(f"Open http://{args.web_host}:{args.web_port} in your browser; Ctrl+C here stops Locust.", flush=True)
    wait_child(start_child(command))
    return EXIT_OK


def target_command(port: int, args=None) -> list[str]:
    command = [sys.executable, "-m", "demo", "--port", str(port)]
    for knob in ("latency_ms", "error_ratio", "error_status", "fail_endpoint"):
        value = getattr(args, knob, None) if args else None
        if value is not None:
            command += [f"--{knob.replace('_', '-')}", str(value)]
    return command


def cmd_target(args, _passthrough) -> int:
    if not 0 <= args.port <= 65535:
        raise HelperError(f"--port={args.port} is not valid: a port from 0 to 65535 is needed, e.g. 8080")
    command = target_command(args.port, args)
    print(f"$ {shlex.join(['python'] + command[1:])}", flush=True)
    if args.dry_run:
        return EXIT_OK
    code = wait_child(start_child(command))
    return EXIT_USAGE if code == 2 else EXIT_OK


def start_target(port: int = 0, extra: list[str] | None = None, timeout: float = 15.0):
    """Start the demo target in the background; return (process, base URL)."""
    command = target_command(port) + list(extra or [])
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("DEMO_READY "):
            return process, line.split()[1]
        if not line and process.poll() is not None:
            break
    process.kill()
    raise HelperError(f"the demo target did not start (last output: {line.strip()!r})")


def cmd_demo(args, _passthrough) -> int:
    scenario = SCENARIOS["basic"]
    # Check the options before starting anything.
    settings_from(args, host="http://127.0.0.1:8080")
    print("Starting the demo target ...", flush=True)
    process, url = start_target()
    try:
        print(f"Demo target listening on {url}", flush=True)
        settings = settings_from(args, host=url)
        folder = new_run_folder(args.reports_dir, scenario)
        folder.mkdir(parents=True, exist_ok=True)
        command = locust_base_command(scenario, settings, args) + [
            "--headless",
            "--run-time",
            config.format_duration(settings.duration_seconds),
            "--csv",
            str(folder / CSV_PREFIX),
            "--html",
            str(folder / "report.html"),
            "--only-summary",
        ]
        print(f"$ {show_command(command)}", flush=True)
        print(f"Running {settings.users} users for {settings.duration} (Locust prints its summary at the end) ...")
        return execute_run(command, folder, settings, scenario)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


# ---------------------------------------------------------------------------


def split_passthrough(argv: list[str]) -> tuple[list[str], list[str]]:
    """Everything after the first '--' goes to locust untouched."""
    if "--" in argv:
        index = argv.index("--")
        return argv[:index], argv[index + 1 :]
    return argv, []


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, passthrough = split_passthrough(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(own)
        if args.env_file:
            os.environ["ENV_FILE"] = args.env_file
        if passthrough and args.command not in ("run", "ui"):
            raise HelperError(f"'--' arguments are for locust; the {args.command} command takes none")
        return args.func(args, passthrough)
    except HelperError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except config.ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
