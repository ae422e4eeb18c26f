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
       up?), no request was sent at all, the run was interrupted (Ctrl+C,
       SIGTERM), or Locust crashed or overran its time
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO_ROOT))

from utils import budget, config, shapes
from utils import thresholds as th
from utils.results import CSV_PREFIX, format_table, read_results
from utils.summary import SUMMARY_JSON, SUMMARY_MD, build_summary, write_summary

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_GATE_FAILED = 3
EXIT_NO_RESULTS = 4

# How long after the planned end a run may take to stop before it is killed.
STOP_GRACE_SECONDS = 30


class HelperError(Exception):
    """A usage or configuration problem: printed as one line, exit code 2."""


class GateRefused(HelperError):
    """A gate that refuses a run before it starts (the VU-hour budget): one line, exit code 3."""


@dataclass(frozen=True)
class Scenario:
    name: str
    file: str
    description: str
    # Locust options this scenario needs by default (an option given after -- wins).
    locust_args: tuple[str, ...] = ()


# Pub/Sub accounting is exact only when every user may finish what it is doing at the
# end (a message half-way counts as lost otherwise): 5 s to finish, then the run ends.
FINISH_IN_FLIGHT = ("--stop-timeout", "5")


SCENARIOS = {
    s.name: s
    for s in [
        Scenario("basic", "tests/basic_test.py", "REST shoppers: log in, browse products, fill a cart"),
        Scenario("graphql", "tests/graphql_test.py", "GraphQL shoppers: a row per operation, errors in a 200 fail"),
        Scenario(
            "redis",
            "tests/redis_test.py",
            "Redis Pub/Sub chat: publish, fan out, end-to-end latency, lost",
            FINISH_IN_FLIGHT,
        ),
        Scenario(
            "complete",
            "tests/complete_example.py",
            "all together: REST, GraphQL, app -> Redis -> subscribers",
            FINISH_IN_FLIGHT,
        ),
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
    group.add_argument(
        "--preset",
        help="a load shape scaled to --users (peak) and --duration: smoke, load, stress, spike, soak (LOAD_PRESET)",
    )
    group.add_argument("--stages", help="your own load shape, e.g. 30s:10,2m:10,30s:0 (LOAD_STAGES)")
    group.add_argument("--tags", nargs="+", metavar="TAG", help="run only tasks with these tags")
    group.add_argument("--exclude-tags", nargs="+", metavar="TAG", help="skip tasks with these tags")
    parser.add_argument("--dry-run", action="store_true", help="print the locust command, do not run it")


def _gate_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("thresholds (the pass/fail gate; see thresholds/default.toml)")
    group.add_argument("--thresholds", metavar="FILE", help="thresholds file (THRESHOLDS_FILE; 'none' for no file)")
    group.add_argument(
        "--threshold",
        action="append",
        metavar="RULE",
        help="an extra rule, e.g. 'p95 < 500' (TOTAL) or 'GET /api/cart: p99 < 900'; repeatable (THRESHOLDS)",
    )
    group.add_argument(
        "--abort-on-breach", action="store_true", default=None, help="stop the run once a threshold is breached"
    )


MASTER_WAIT_SECONDS = 120


def _distributed_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("distributed runs (Locust's own master/worker mode)")
    mode = group.add_mutually_exclusive_group()
    mode.add_argument("--workers", type=int, metavar="N", help="a master and N worker processes on this machine")
    mode.add_argument(
        "--master",
        action="store_true",
        help="be the master for workers on other machines (start them with the 'worker' command)",
    )
    group.add_argument("--expect-workers", type=int, metavar="N", help="with --master: wait for N workers (default 1)")
    group.add_argument("--master-bind-host", help="with --master: address to listen on (default: all)")
    group.add_argument("--master-bind-port", type=int, help="with --master: port to listen on (default 5557)")


def distributed_options(args) -> list[str]:
    """Locust's options for --workers / --master; warnings and errors as one line."""
    workers = getattr(args, "workers", None)
    master = getattr(args, "master", False)
    bind_options = (args.expect_workers is not None, args.master_bind_host, args.master_bind_port is not None)
    if not master and any(bind_options):
        raise HelperError("--expect-workers, --master-bind-host and --master-bind-port go with --master")
    if workers is not None:
        if workers < 1:
            raise HelperError(f"--workers={workers} is not valid: a whole number of at least 1 is needed, e.g. 2")
        cores = os.cpu_count() or 1
        if workers > cores:
            print(
                f"warning: --workers {workers} is more than this machine's {cores} CPU cores: "
                "the workers will compete for them and send less load each",
                file=sys.stderr,
                flush=True,
            )
        # --processes forks N workers and makes this process their master. They talk over a
        # free local port (Locust's default, 5557, may be held by another run on this machine).
        port = str(free_local_port())
        return ["--processes", str(workers), "--master-bind-port", port, "--master-port", port]
    if master:
        expected = args.expect_workers if args.expect_workers is not None else 1
        if expected < 1:
            raise HelperError(f"--expect-workers={expected} is not valid: a whole number of at least 1 is needed")
        options = ["--master", "--expect-workers", str(expected)]
        options += ["--expect-workers-max-wait", str(MASTER_WAIT_SECONDS)]
        if args.master_bind_host:
            options += ["--master-bind-host", args.master_bind_host]
        if args.master_bind_port is not None:
            if not 1 <= args.master_bind_port <= 65535:
                raise HelperError(
                    f"--master-bind-port={args.master_bind_port} is not valid: a port from 1 to 65535, e.g. 5557"
                )
            options += ["--master-bind-port", str(args.master_bind_port)]
        return options
    return []


def free_local_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_worker(sub) -> None:
    p = sub.add_parser(
        "worker",
        help="run worker process(es) for a master on another machine",
        description="Connect to a master started with 'run SCENARIO --master' and run its users. "
        "Use the same repository (same locustfiles) on every machine.",
    )
    p.add_argument("scenario", help="the same scenario (or locustfile path) as the master's")
    p.add_argument("--master-host", default="127.0.0.1", help="the master's address (default 127.0.0.1)")
    p.add_argument("--master-port", type=int, default=5557, help="the master's port (default 5557)")
    p.add_argument("--processes", type=int, default=1, help="worker processes on this machine (default 1)")
    p.add_argument("--dry-run", action="store_true", help="print the locust command, do not run it")
    p.set_defaults(func=cmd_worker)


def cmd_worker(args, passthrough) -> int:
    scenario = resolve_scenario(args.scenario)
    settings = settings_from(args)
    if args.processes < 1:
        raise HelperError(f"--processes={args.processes} is not valid: a whole number of at least 1 is needed, e.g. 2")
    if not 1 <= args.master_port <= 65535:
        raise HelperError(f"--master-port={args.master_port} is not valid: a port from 1 to 65535, e.g. 5557")
    if not re.fullmatch(r"[A-Za-z0-9._:-]+", args.master_host):
        raise HelperError(
            f"--master-host={args.master_host!r} is not valid: a host name or IP address (no http://), e.g. 10.0.0.5"
        )
    files = f"{scenario.file},{SHAPE_FILE}" if settings.stages else scenario.file
    command = [sys.executable, "-m", "locust", "-f", files, "--worker"]
    command += ["--master-host", args.master_host, "--master-port", str(args.master_port)]
    if args.processes > 1:
        command += ["--processes", str(args.processes)]
    command += passthrough
    print(f"$ {show_command(command, settings)}", flush=True)
    if args.dry_run:
        return EXIT_OK
    wait_child(start_child(command, env={"KIT_SCENARIO": scenario.name, **kit_environment(settings)}))
    return EXIT_OK


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
    _gate_options(p)
    group = p.add_argument_group("virtual-user hours (VU_HOURS_BUDGET a month, default 200)")
    budget_mode = group.add_mutually_exclusive_group()
    budget_mode.add_argument(
        "--enforce-budget", action="store_true", help="refuse to run when the plan exceeds what is left this month"
    )
    budget_mode.add_argument("--ignore-budget", action="store_true", help="do not compare the plan with the budget")
    _distributed_options(p)
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
    _gate_options(p)
    p.add_argument("--web-host", default="127.0.0.1", help="address of the web UI (default 127.0.0.1)")
    p.add_argument("--web-port", type=int, default=8089, help="port of the web UI (default 8089)")
    p.add_argument("--reports-dir", default="reports", help="where run folders are made (default: reports)")
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
    p.add_argument("--redis-url", help="enable the chat endpoints: publish to this Redis (redis://127.0.0.1:6379/0)")
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
        epilog="exit codes: 0 passed, 2 usage/configuration error, 3 gate failed (thresholds breached, "
        "worker lost, regression, over budget), 4 no usable results (target down, nothing sent, interrupted, "
        "Locust crashed)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env-file", help="read settings from this file instead of .env (sets ENV_FILE)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for build in (build_list, build_run, build_ui, build_target, build_demo, build_worker, build_budget, build_compare):
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
    rules = getattr(args, "threshold", None)
    overrides = {
        "host": getattr(args, "host", None),
        "users": getattr(args, "users", None),
        "spawn_rate": getattr(args, "spawn_rate", None),
        "duration": getattr(args, "duration", None),
        "thresholds_file": getattr(args, "thresholds", None),
        "thresholds": "; ".join(rules) if rules else None,
        "thresholds_abort": "true" if getattr(args, "abort_on_breach", None) else None,
        "preset": getattr(args, "preset", None),
        "stages": getattr(args, "stages", None),
    }
    overrides.update(extra)
    try:
        settings = config.load_settings(**overrides)
        # Check the thresholds now: a bad rule stops here, before any load is sent.
        th.from_settings(settings)
    except config.ConfigError as error:
        raise HelperError(str(error)) from None
    return settings


def kit_environment(settings: config.Settings) -> dict[str, str]:
    """The settings that came from flags, passed on to Locust (and its workers) as variables."""
    return {
        "THRESHOLDS_FILE": settings.thresholds_file,
        "THRESHOLDS": settings.thresholds,
        "THRESHOLDS_ABORT": "true" if settings.thresholds_abort else "false",
        # A load shape reads these in every process (utils/load_shape.py).
        "LOAD_PRESET": settings.load_preset,
        "LOAD_STAGES": settings.load_stages,
        "LOAD_USERS": str(settings.users),
        "LOAD_DURATION": settings.duration,
    }


def run_seconds(settings: config.Settings) -> int:
    """How long the run is planned to take: the shape's stages, or --duration."""
    return shapes.total_seconds(settings.stages) if settings.stages else settings.duration_seconds


def planned_vu_hours(settings: config.Settings) -> float:
    if settings.stages:
        return budget.stages_vu_hours(list(settings.stages))
    return budget.planned_vu_hours(settings.users, settings.duration_seconds, settings.spawn_rate)


SHAPE_FILE = "utils/load_shape.py"


def locust_base_command(scenario: Scenario, settings: config.Settings, args, timed: bool = True) -> list[str]:
    """locust -f FILE --host ... and the load: users/spawn rate/run time, or the load shape file."""
    command = [sys.executable, "-m", "locust"]
    if settings.stages:
        # With a shape, the stages decide users and time; Locust would ignore -u/-r/-t.
        command += ["-f", f"{scenario.file},{SHAPE_FILE}", "--host", settings.target_host]
    else:
        command += ["-f", scenario.file, "--host", settings.target_host]
        command += ["--users", str(settings.users), "--spawn-rate", f"{settings.spawn_rate:g}"]
        if timed:
            command += ["--run-time", config.format_duration(settings.duration_seconds)]
    if getattr(args, "tags", None):
        command += ["--tags", *args.tags]
    if getattr(args, "exclude_tags", None):
        command += ["--exclude-tags", *args.exclude_tags]
    return command


def show_command(command: list[str], settings: config.Settings | None = None) -> str:
    """The command as a copy-pastable line, with any password in a URL hidden.

    With a load shape, the LOAD_STAGES variable the shape file reads comes first."""
    shown = [config.redact_url(part) if "://" in part else part for part in command]
    if shown[:3] == [sys.executable, "-m", "locust"]:
        shown[:3] = ["locust"]
    if settings is not None:
        # Settings that reach Locust as variables, not flags: shown first, so the line runs as printed.
        prefix = []
        if settings.thresholds_file:
            prefix.append(f"THRESHOLDS_FILE={settings.thresholds_file}")
        if settings.thresholds:
            prefix.append(f"THRESHOLDS={settings.thresholds}")
        if settings.thresholds_abort:
            prefix.append("THRESHOLDS_ABORT=true")
        if settings.stages:
            prefix.append(f"LOAD_STAGES={shapes.describe(list(settings.stages))}")
        shown = prefix + shown
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
    command = locust_base_command(scenario, settings, args) + ["--headless"]
    command += distributed_options(args)
    command += ["--csv", str(folder / CSV_PREFIX), "--html", str(folder / "report.html")]
    command += scenario_defaults(scenario, passthrough) + passthrough
    if settings.stages:
        print(f"Load shape: {shapes.describe(list(settings.stages))} ({run_seconds(settings)} s)", flush=True)
    planned = planned_vu_hours(settings)
    check_budget(planned, settings, Path(args.reports_dir), enforce=args.enforce_budget, ignore=args.ignore_budget)
    print(f"$ {show_command(command, settings)}", flush=True)
    if args.dry_run:
        return EXIT_OK
    folder.mkdir(parents=True, exist_ok=True)
    return execute_run(command, folder, settings, scenario, planned)


def scenario_defaults(scenario: Scenario, passthrough: list[str]) -> list[str]:
    """The scenario's default Locust options that the user did not give after --."""
    defaults = list(scenario.locust_args)
    if defaults and defaults[0] in passthrough:
        return []
    return defaults


def check_budget(planned: float, settings: config.Settings, reports_dir: Path, enforce: bool, ignore: bool) -> None:
    """Warn (or refuse, with --enforce-budget) when a run would go over this month's VU-hours."""
    if ignore:
        return
    used = budget.Ledger(reports_dir / budget.LEDGER_NAME).used_in_month()
    left = settings.vu_hours_budget - used
    print(
        f"Plan: {planned:.3f} VU-hours; "
        f"this month {used:.3f} of {settings.vu_hours_budget:g} used, {max(left, 0):.3f} left",
        flush=True,
    )
    if planned > left:
        message = (
            f"this run plans {planned:.3f} VU-hours but only {max(left, 0):.3f} of the month's "
            f"{settings.vu_hours_budget:g} are left (VU_HOURS_BUDGET)"
        )
        if enforce:
            raise GateRefused(f"{message}: lower --users or --duration, or drop --enforce-budget")
        print(f"warning: {message}", file=sys.stderr, flush=True)


# Set when the helper was asked to stop (Ctrl+C or SIGTERM) while Locust ran.
INTERRUPTED = {"signal": ""}


def start_child(command: list[str], env: dict | None = None, **kwargs) -> subprocess.Popen:
    """Start COMMAND; a SIGTERM to the helper reaches it as Ctrl+C (so it writes its reports and stops)."""
    process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, **(env or {})}, **kwargs)

    def pass_on(_signum, _frame):
        INTERRUPTED["signal"] = "SIGTERM"
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # Locust's Ctrl+C path writes the HTML report too

    signal.signal(signal.SIGTERM, pass_on)
    return process


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is PID (Linux /proc; empty elsewhere)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def kill_tree(pid: int) -> None:
    """SIGKILL PID and its children (Locust's forked workers would live on without their master)."""
    for child in child_pids(pid):
        try:
            os.kill(child, signal.SIGKILL)
        except OSError:
            pass  # already gone
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def wait_child(process: subprocess.Popen) -> int:
    """Wait for PROCESS; on Ctrl+C (which reached it too) let it finish its own shutdown."""
    try:
        return process.wait()
    except KeyboardInterrupt:
        return process.wait()


def execute_run(
    command: list[str], folder: Path, settings: config.Settings, scenario: Scenario, planned: float | None = None
) -> int:
    """Run locust, then judge the run from the files it wrote."""
    deadline = run_seconds(settings) + STOP_GRACE_SECONDS
    if "--master" in command:
        deadline += MASTER_WAIT_SECONDS  # the master first waits for its workers
    started = time.monotonic()
    # The run's id (its folder's name) and scenario, for the kit's listeners on every process.
    env = {"KIT_RUN_ID": folder.name, "KIT_SCENARIO": scenario.name, **kit_environment(settings)}
    process = start_child(command, env=env)
    overran = False
    try:
        process.wait(timeout=deadline)
    except subprocess.TimeoutExpired:
        overran = True
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_tree(process.pid)
            process.wait()
    except KeyboardInterrupt:
        # Ctrl+C reached Locust too: let it stop and write its reports.
        INTERRUPTED["signal"] = "Ctrl+C"
        wait_child(process)
    elapsed = time.monotonic() - started
    code, summary = judge_run(folder, process.returncode, elapsed, overran, settings, scenario)
    record_vu_hours(folder, scenario, planned, summary, code)
    return code


def record_vu_hours(folder: Path, scenario: Scenario, planned: float | None, summary: dict | None, code: int) -> None:
    """Add the run's VU-hours to the ledger (runs against this machine are listed, not counted)."""
    if summary is None:
        return
    used = summary.get("vu_hours")
    verdict = {EXIT_OK: "passed", EXIT_GATE_FAILED: "failed"}.get(code, "no results")
    ledger = budget.Ledger(folder.parent / budget.LEDGER_NAME)
    local = budget.is_local_host(summary.get("host") or "")
    ledger.append(folder.name, scenario.name, planned, used, verdict, counted=not local)
    if used is not None:
        note = " - a run against this machine: listed, not counted in the budget" if local else ""
        print(f"VU-hours used: {used:.3f} (recorded in {ledger.path}{note})")


def judge_run(
    folder: Path,
    locust_exit: int,
    elapsed: float,
    overran: bool,
    settings: config.Settings,
    scenario: Scenario,
) -> tuple[int, dict | None]:
    """Decide the exit code from the run's figures; print the summary. Returns (code, summary)."""
    print()
    try:
        rows, total, errors = read_results(folder)
    except FileNotFoundError:
        if locust_exit == EXIT_USAGE:
            # Locust stopped before it started: a bad setting, threshold or document (said above).
            print("RESULT: not started - a setting or a locustfile was refused (see the error above)")
            return EXIT_USAGE, None
        print(f"RESULT: no results - Locust exited with code {locust_exit} and wrote no statistics in {folder}/")
        return EXIT_NO_RESULTS, None
    summary = load_or_build_summary(folder, rows, total, errors, settings, scenario)
    print(format_table(rows, total))
    print()
    count = total.count if total else 0
    failures = total.failures if total else 0
    interrupted = INTERRUPTED["signal"]
    no_results = overran or interrupted or locust_exit not in (0, 1, 3) or count == 0 or failures == count
    if not no_results:
        print(f"Verdict:     {summary['verdict']['text']}")
    print(f"HTML report: {folder / 'report.html'}")
    print(f"Summary:     {folder / SUMMARY_MD}")
    print(f"CSV files:   {folder}/{CSV_PREFIX}_*.csv")
    if overran:
        print(f"RESULT: no results - Locust did not stop on time and was stopped after {elapsed:.0f} s")
        return EXIT_NO_RESULTS, summary
    if interrupted:
        print(f"RESULT: interrupted ({interrupted}) after {elapsed:.0f} s - the figures above cover only that part")
        return EXIT_NO_RESULTS, summary
    if locust_exit not in (0, 1, 3):
        print(f"RESULT: no results - Locust exited with code {locust_exit} (see its output above)")
        return EXIT_NO_RESULTS, summary
    if count == 0:
        print(
            "RESULT: no results - no request was answered or sent: is the target hanging (no answer within the"
            " run)? Else check the scenario's tasks, --tags, and that workers connected"
        )
        return EXIT_NO_RESULTS, summary
    if failures == count:
        first = next(iter(errors), {}).get("error", "")
        print(f"RESULT: no results - all {count} requests failed; first error: {first[:200]}")
        print("        Is the target running and is TARGET_HOST / --host right?")
        return EXIT_NO_RESULTS, summary
    if not summary["verdict"]["passed"]:
        print(f"RESULT: {summary['verdict']['text']}")
        for check in th.breached_checks(summary["verdict"]):
            value = th.format_value(check["threshold"].rsplit(":", 1)[1].split()[0], check["value"])
            print(f"        {check['threshold']}  [{check['row']}: measured {value}] {check['note']}".rstrip())
        for failure in errors[:5]:
            print(
                f"        {failure['occurrences']:>6} x {failure['method']} {failure['name']}: {failure['error'][:110]}"
            )
        return EXIT_GATE_FAILED, summary
    print(f"RESULT: passed - {count} requests, {failures} failures, {total.rps:.1f} requests/s")
    return EXIT_OK, summary


def load_or_build_summary(folder: Path, rows, total, errors, settings: config.Settings, scenario: Scenario) -> dict:
    """The summary the kit's listener wrote; for a locustfile without kit.install(), build it here."""
    path = folder / SUMMARY_JSON
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    verdict = th.evaluate(th.from_settings(settings), rows, total)
    meta = {
        "run_id": folder.name,
        "scenario": scenario.name,
        "host": config.redact_url(settings.target_host),
        "duration_seconds": None,
        "peak_users": None,
        "vu_hours": budget.vu_hours_from_history(folder),
    }
    summary = build_summary(rows, total, errors, verdict, meta)
    write_summary(folder, summary)
    return summary


def cmd_ui(args, passthrough) -> int:
    scenario = resolve_scenario(args.scenario)
    settings = settings_from(args)
    if not 1 <= args.web_port <= 65535:
        raise HelperError(f"--web-port={args.web_port} is not valid: a port from 1 to 65535 is needed, e.g. 8089")
    folder = new_run_folder(args.reports_dir, scenario)
    # No run time unless you ask for one (-t): in the web UI you press Stop yourself.
    command = locust_base_command(scenario, settings, args, timed=bool(args.duration))
    command += ["--web-host", args.web_host, "--web-port", str(args.web_port)]
    command += ["--csv", str(folder / CSV_PREFIX), "--html", str(folder / "report.html"), *passthrough]
    print(f"$ {show_command(command, settings)}", flush=True)
    if args.dry_run:
        return EXIT_OK
    folder.mkdir(parents=True, exist_ok=True)
    print(f"Open http://{args.web_host}:{args.web_port} in your browser; Ctrl+C here stops Locust.", flush=True)
    env = {"KIT_RUN_ID": folder.name, "KIT_SCENARIO": scenario.name, **kit_environment(settings)}
    exit_code = wait_child(start_child(command, env=env))
    summary_path = folder / SUMMARY_JSON
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else None
    if not summary or not (summary.get("total") or {}).get("count"):
        shutil.rmtree(folder, ignore_errors=True)  # no test was started: nothing to keep
        return EXIT_OK
    INTERRUPTED["signal"] = ""  # stopping the web UI with Ctrl+C is how a UI session ends
    code, _ = judge_run(folder, exit_code, 0.0, False, settings, scenario)
    record_vu_hours(folder, scenario, None, summary, code)
    return code


def target_command(port: int, args=None) -> list[str]:
    command = [sys.executable, "-m", "demo", "--port", str(port)]
    for knob in ("latency_ms", "error_ratio", "error_status", "fail_endpoint", "redis_url"):
        value = getattr(args, knob, None) if args else None
        if knob == "redis_url" and value is not None:
            value = config.parse_redis_url(value, "--redis-url")
        if value is not None:
            command += [f"--{knob.replace('_', '-')}", str(value)]
    return command


def cmd_target(args, _passthrough) -> int:
    if not 0 <= args.port <= 65535:
        raise HelperError(f"--port={args.port} is not valid: a port from 0 to 65535 is needed, e.g. 8080")
    command = target_command(args.port, args)
    print(f"$ {shlex.join(['python'] + [config.redact_url(p) if '://' in p else p for p in command[1:]])}", flush=True)
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
            "--csv",
            str(folder / CSV_PREFIX),
            "--html",
            str(folder / "report.html"),
            "--only-summary",
        ]
        print(f"$ {show_command(command, settings)}", flush=True)
        print(f"Running {settings.users} users for {settings.duration} (Locust prints its summary at the end) ...")
        return execute_run(command, folder, settings, scenario, planned_vu_hours(settings))
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


def build_budget(sub) -> None:
    p = sub.add_parser(
        "budget",
        help="plan virtual-user hours against the monthly budget",
        description="Planned VU-hours of one run and of a month of runs, against the monthly budget "
        "(VU_HOURS_BUDGET, default 200) and what the ledger says was used this month. "
        "Exit code 0 when the plan fits, 3 when it does not.",
    )
    p.add_argument("-u", "--users", help="virtual users per run (LOAD_USERS, default 10)")
    p.add_argument("-r", "--spawn-rate", help="users started per second (LOAD_SPAWN_RATE, default 2)")
    p.add_argument("-t", "--duration", help="length of one run (LOAD_DURATION, default 1m)")
    p.add_argument("--preset", help="a load shape: smoke, load, stress, spike, soak (LOAD_PRESET)")
    p.add_argument("--stages", help="your own load shape, e.g. 30s:10,2m:10,30s:0 (LOAD_STAGES)")
    p.add_argument("--runs-per-month", default="1", help="how many such runs a month (default 1)")
    p.add_argument("--budget", dest="vu_hours_budget", help="VU-hours a month (VU_HOURS_BUDGET, default 200)")
    p.add_argument("--reports-dir", default="reports", help="where the ledger is (default: reports)")
    p.set_defaults(func=cmd_budget)


def cmd_budget(args, _passthrough) -> int:
    settings = settings_from(args, vu_hours_budget=args.vu_hours_budget)
    try:
        runs = config.parse_int(args.runs_per_month, "--runs-per-month", 1, "2")
    except config.ConfigError as error:
        raise HelperError(str(error)) from None
    per_run = planned_vu_hours(settings)
    per_month = per_run * runs
    ledger = budget.Ledger(Path(args.reports_dir) / budget.LEDGER_NAME)
    used = ledger.used_in_month()
    left = settings.vu_hours_budget - used
    if settings.stages:
        shape = shapes.describe(list(settings.stages))
        print(f"One run:    load shape {shape} ({run_seconds(settings)} s) = {per_run:.3f} VU-hours")
    else:
        ramp = settings.users / settings.spawn_rate
        print(
            f"One run:    {settings.users} users x {settings.duration} "
            f"(ramp-up {ramp:.0f} s at {settings.spawn_rate:g}/s) = {per_run:.3f} VU-hours"
        )
    print(f"Per month:  {runs} run(s) = {per_month:.3f} VU-hours")
    print(f"Budget:     {settings.vu_hours_budget:g} VU-hours a month")
    print(f"Used:       {used:.3f} VU-hours this month (ledger: {ledger.path})")
    print(f"Left:       {left:.3f} VU-hours")
    if per_month <= left:
        print(f"FITS: {left - per_month:.3f} VU-hours to spare")
        return EXIT_OK
    print(f"OVER: the plan needs {per_month - left:.3f} VU-hours more than are left")
    return EXIT_GATE_FAILED


def build_compare(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="compare two runs, with a regression gate",
        description="Per-row changes in p95, failure ratio and requests/s between run A and run B "
        "(folders under reports/, or their names). With one run: compared with the last passing run "
        "of the same scenario before it. Exit code 3 when a gate is crossed.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="RUN_A RUN_B, or just RUN_B")
    p.add_argument("--max-p95-increase", default="20", help="percent p95 may grow (default 20)")
    p.add_argument("--min-p95-delta-ms", default="5", help="ignore p95 changes smaller than this (default 5 ms)")
    p.add_argument("--max-failure-ratio-increase", default="1", help="percentage points (default 1)")
    p.add_argument("--max-rps-decrease", default="0", help="percent requests/s may fall (default 0 = not checked)")
    p.add_argument("--min-samples", default="20", help="rows with fewer requests are shown, not gated (default 20)")
    p.add_argument("--reports-dir", default="reports", help="where run folders are (default: reports)")
    p.set_defaults(func=cmd_compare)


def _number_option(value: str, flag: str, example: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number >= 0:
        raise HelperError(
            f"{flag}={value!r} is not valid: a number of at least 0 is needed, for example {flag}={example}"
        )
    return number


def find_run(name: str, reports_dir: Path) -> Path:
    for candidate in (Path(name), reports_dir / name):
        if candidate.is_dir():
            if (candidate / "final_stats.json").exists() or (candidate / f"{CSV_PREFIX}_stats.csv").exists():
                return candidate
            raise HelperError(
                f"{candidate} is not a finished run: it has no final_stats.json or {CSV_PREFIX}_stats.csv"
            )
    raise HelperError(f"no run folder {name!r} (looked in . and {reports_dir}/)")


def run_scenario_and_verdict(folder: Path) -> tuple[str, bool | None]:
    path = folder / SUMMARY_JSON
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return data.get("scenario", ""), bool(data["verdict"]["passed"])
        except (ValueError, KeyError, TypeError):
            return "", None
    return folder.name.split("_", 1)[-1], None


def last_passing_run(before: Path, reports_dir: Path) -> Path:
    scenario, _ = run_scenario_and_verdict(before)
    candidates = sorted(p for p in reports_dir.iterdir() if p.is_dir() and p.name < before.name)
    for candidate in reversed(candidates):
        other, passed = run_scenario_and_verdict(candidate)
        if passed and other == scenario:
            return candidate
    raise HelperError(f"no passing run of scenario {scenario!r} before {before.name} in {reports_dir}/")


def read_run(folder: Path):
    """(rows, total) of a finished run, or one line saying what is wrong with its files."""
    try:
        rows, total, _errors = read_results(folder)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as error:
        raise HelperError(
            f"{folder} is not a finished run: its figures cannot be read ({type(error).__name__})"
        ) from None
    return rows, total


def cmd_compare(args, _passthrough) -> int:
    if len(args.runs) > 2:
        raise HelperError("compare takes one or two runs: RUN_A RUN_B, or just RUN_B")
    reports_dir = Path(args.reports_dir)
    max_p95 = _number_option(args.max_p95_increase, "--max-p95-increase", "20")
    min_delta = _number_option(args.min_p95_delta_ms, "--min-p95-delta-ms", "5")
    max_fail = _number_option(args.max_failure_ratio_increase, "--max-failure-ratio-increase", "1") / 100.0
    max_rps = _number_option(args.max_rps_decrease, "--max-rps-decrease", "20")
    min_samples = _number_option(args.min_samples, "--min-samples", "20")
    run_b = find_run(args.runs[-1], reports_dir)
    run_a = find_run(args.runs[0], reports_dir) if len(args.runs) == 2 else last_passing_run(run_b, reports_dir)
    rows_a, total_a = read_run(run_a)
    rows_b, total_b = read_run(run_b)
    scenario_a, scenario_b = run_scenario_and_verdict(run_a)[0], run_scenario_and_verdict(run_b)[0]
    if scenario_a and scenario_b and scenario_a != scenario_b:
        raise HelperError(f"A is a run of {scenario_a!r}, B of {scenario_b!r}: compare runs of the same scenario")
    common = {r.label for r in rows_a if r.count} & {r.label for r in rows_b if r.count}
    if not common:
        raise HelperError(f"nothing to compare: {run_a.name} and {run_b.name} have no request name in common")
    print(f"A: {run_a}\nB: {run_b}\n")
    by_label_a = {r.label: r for r in rows_a} | ({"TOTAL": total_a} if total_a else {})
    by_label_b = {r.label: r for r in rows_b} | ({"TOTAL": total_b} if total_b else {})
    header = f"{'request':<40} {'p95 A':>7} {'p95 B':>7} {'change':>8} {'fail% A':>8} {'fail% B':>8}"
    header += f" {'rps A':>8} {'rps B':>8}  gate"
    print(header)
    print("-" * len(header))
    regressions = []
    labels = sorted((set(by_label_a) | set(by_label_b)) - {"TOTAL"}) + ["TOTAL"]
    for label in labels:
        a, b = by_label_a.get(label), by_label_b.get(label)
        if a is None or b is None:
            print(f"{label[:40]:<40} {'only in ' + ('B' if a is None else 'A'):>17}")
            continue
        change = (b.p95 - a.p95) / a.p95 * 100 if a.p95 else 0.0
        crossed = []
        if min(a.count, b.count) < min_samples:
            gate = f"not gated: fewer than {min_samples:g} requests"
        else:
            if b.p95 - a.p95 > min_delta and change > max_p95:
                crossed.append(f"p95 {a.p95:.0f} -> {b.p95:.0f} ms ({change:+.0f}% > {max_p95:g}%)")
            if b.failure_ratio - a.failure_ratio > max_fail:
                crossed.append(
                    f"failure ratio {a.failure_ratio:.2%} -> {b.failure_ratio:.2%} "
                    f"(+{(b.failure_ratio - a.failure_ratio) * 100:.2f} points > {max_fail * 100:g})"
                )
            if max_rps and a.rps and (a.rps - b.rps) / a.rps * 100 > max_rps:
                crossed.append(f"requests/s {a.rps:.2f} -> {b.rps:.2f} (down more than {max_rps:g}%)")
            if crossed:
                gate = "REGRESSION"
            elif change > max_p95:
                gate = f"ok (p95 up by {b.p95 - a.p95:.0f} ms, under {min_delta:g} ms)"
            else:
                gate = "ok"
        regressions += [f"{label}: {text}" for text in crossed]
        print(
            f"{label[:40]:<40} {a.p95:>7.0f} {b.p95:>7.0f} {change:>+7.0f}% {a.failure_ratio:>8.2%} "
            f"{b.failure_ratio:>8.2%} {a.rps:>8.2f} {b.rps:>8.2f}  {gate}"
        )
    print()
    if regressions:
        print(f"REGRESSION: {len(regressions)} gate(s) crossed")
        for line in regressions:
            print(f"  {line}")
        return EXIT_GATE_FAILED
    print("NO REGRESSION: every gated row is within limits")
    return EXIT_OK


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
        if passthrough and args.command not in ("run", "ui", "worker"):
            raise HelperError(f"'--' arguments are for locust; the {args.command} command takes none")
        return args.func(args, passthrough)
    except GateRefused as error:
        print(f"refused: {error}", file=sys.stderr)
        return EXIT_GATE_FAILED
    except HelperError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except config.ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
