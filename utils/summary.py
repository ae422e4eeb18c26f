"""The run's verdict and summary: thresholds, virtual-user hours, summary.md and summary.json.

``RunSummary`` is a listener attached by ``kit.install()``. It works on the master
or the local runner only (a worker sees only its own share of the requests):

* while the run goes: it samples the number of running users once a second (for
  the virtual-user hours) and, if asked to, stops the run as soon as a threshold
  is breached (after a grace period);
* when Locust is quitting: it checks the thresholds and sets Locust's exit code
  (0 passed, 3 breached), so a plain ``locust`` run gates too;
* when Locust has quit (final figures): it writes ``summary.json`` and
  ``summary.md`` next to Locust's CSV files (``--csv``), appends the Markdown to
  ``$GITHUB_STEP_SUMMARY`` when that is set, and leaves the verdict on
  ``environment.kit_verdict`` for the Datadog and Slack listeners.
"""

from __future__ import annotations

import locust
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import gevent

from utils import thresholds as th
from utils.config import get_settings, redact_url
from utils.results import StatsRow, stats_errors, stats_rows

log = logging.getLogger(__name__)

EXIT_PASSED = 0
EXIT_THRESHOLDS = 3
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"


# ---------------------------------------------------------------------------
# Building and rendering a summary (pure functions: the helper uses them too)
# ---------------------------------------------------------------------------


def build_summary(
    rows: list[StatsRow],
    total: StatsRow | None,
    errors: list[dict],
    verdict: th.Verdict,
    meta: dict,
) -> dict:
    return {
        **meta,
        "verdict": verdict.as_dict(),
        "total": total.as_dict() if total else None,
        "rows": [r.as_dict() for r in rows],
        "errors": errors[:20],
    }


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|")


def _ms(value) -> str:
    return f"{value:.0f}"


def render_markdown(summary: dict) -> str:
    verdict = summary["verdict"]
    status = "PASSED" if verdict["passed"] else "FAILED"
    lines = [f"## Load test `{summary.get('scenario', '?')}`: {status}", ""]
    facts = [f"run `{summary.get('run_id', '?')}`"]
    if summary.get("host"):
        facts.append(f"host {summary['host']}")
    if summary.get("duration_seconds") is not None:
        facts.append(f"{summary['duration_seconds']:.0f} s")
    if summary.get("peak_users") is not None:
        facts.append(f"{summary['peak_users']} users at peak")
    if summary.get("vu_hours") is not None:
        facts.append(f"{summary['vu_hours']:.3f} VU-hours")
    lines += [", ".join(facts), ""]
    workers = summary.get("workers")
    if workers:
        line = f"Workers: {workers['count']}"
        if workers["lost"]:
            line += f", **{len(workers['lost'])} lost during the run**"
        if workers["version_mismatch"]:
            versions = ", ".join(sorted(set(workers["version_mismatch"].values())))
            line += f", **Locust version mismatch** (master {workers['master_locust_version']}, workers {versions})"
        lines += [line, ""]
    lines += [
        "| request | count | failures | p50 ms | p95 ms | p99 ms | req/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in summary["rows"] + ([summary["total"]] if summary.get("total") else []):
        label = "**TOTAL**" if row is summary.get("total") else f"{row['type']} {row['name']}".strip()
        label = _cell(label)
        lines.append(
            f"| {label} | {row['count']} | {row['failures']} ({row['failure_ratio']:.1%}) | {_ms(row['p50'])} "
            f"| {_ms(row['p95'])} | {_ms(row['p99'])} | {row['rps']:.2f} |"
        )
    lines.append("")
    checks = verdict["checks"]
    if checks:
        lines += [
            f"### Thresholds ({Path(verdict['source']).name if verdict['source'] else 'none'})",
            "",
            "| threshold | row | measured | result |",
            "| --- | --- | ---: | --- |",
        ]
        for check in checks:
            metric = check["threshold"].split(":", 1)[1].split()[0] if ":" in check["threshold"] else ""
            measured = th.format_value(th.ALIASES.get(metric, metric), check["value"])
            result = {"pass": "pass", "fail": "**FAIL**", "skipped": "skipped"}.get(check["status"], "")
            if check["status"] == "no data":
                result = "**no data: FAIL**" if verdict["insufficient_data"] == "fail" else "no data"
            note = f" ({check['note']})" if check["note"] else ""
            threshold, row = _cell(check["threshold"]), _cell(check["row"])
            lines.append(f"| {threshold} | {row} | {measured} | {result}{note} |")
        lines.append("")
    lines.append(f"**Verdict:** {verdict['text']}")
    if summary.get("errors"):
        lines += ["", "### Most frequent failures", ""]
        for error in summary["errors"][:5]:
            lines.append(f"- {error['occurrences']} x {error['method']} {error['name']}: {str(error['error'])[:160]}")
    return "\n".join(lines) + "\n"


def write_summary(folder: Path | None, summary: dict) -> str:
    """Write summary.json/.md into FOLDER (when given), append to $GITHUB_STEP_SUMMARY; return the Markdown."""
    markdown = render_markdown(summary)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SUMMARY_JSON).write_text(json.dumps(summary, indent=2), encoding="utf-8")
        (folder / SUMMARY_MD).write_text(markdown, encoding="utf-8")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(markdown + "\n")
        except OSError as error:
            log.warning("could not append to GITHUB_STEP_SUMMARY (%s): %s", step_summary, error.strerror)
    return markdown


# ---------------------------------------------------------------------------
# The listener
# ---------------------------------------------------------------------------


class RunSummary:
    """Virtual-user hours, thresholds (with optional abort) and the summary files of one run."""

    SAMPLE_SECONDS = 1.0
    ABORT_CHECK_SECONDS = 2.0

    def __init__(self, environment, thresholds: th.Thresholds | None = None, clock=time.monotonic) -> None:
        self.environment = environment
        self.thresholds = thresholds if thresholds is not None else th.from_settings(get_settings())
        self.clock = clock
        self.vu_seconds = 0.0
        self.peak_users = 0
        self.started_at: float | None = None
        self.started_wall: str | None = None
        self.ended_at: float | None = None
        self._last_sample: tuple[float, int] | None = None
        self._sampler = None
        self._watcher = None
        self.aborted_reason = ""
        self.verdict: th.Verdict | None = None
        self.summary: dict | None = None
        # Distributed runs: requests per worker, workers that went missing, their Locust versions.
        self._pending_requests = 0
        self.worker_requests: dict[str, int] = {}
        self.worker_versions: dict[str, str] = {}
        self.lost_workers: set[str] = set()

    def register(self) -> RunSummary:
        events = self.environment.events
        events.test_start.add_listener(self.on_test_start)
        events.test_stop.add_listener(self.on_test_stop)
        events.quitting.add_listener(self.on_quitting)
        events.quit.add_listener(self.on_quit)
        if self._is_worker():
            # Only a worker counts its requests for the master (one cheap addition each).
            events.request.add_listener(self.on_request)
            events.report_to_master.add_listener(self.on_report_to_master)
        else:
            events.worker_report.add_listener(self.on_worker_report)
        return self

    # -- distributed runs: each worker tells the master how many requests it made --------
    def on_request(self, **_kwargs) -> None:
        self._pending_requests += 1

    def on_report_to_master(self, client_id: str, data: dict) -> None:
        data["kit_requests"] = self._pending_requests
        data["kit_locust_version"] = locust.__version__
        self._pending_requests = 0

    def on_worker_report(self, client_id: str, data: dict) -> None:
        self.worker_requests[client_id] = self.worker_requests.get(client_id, 0) + data.get("kit_requests", 0)
        if "kit_locust_version" in data:
            self.worker_versions[client_id] = data["kit_locust_version"]

    def workers_report(self) -> dict | None:
        """What the master knows of its workers; None in a local run."""
        if not isinstance(self.environment.runner, MasterRunner):
            return None
        mismatched = {w: v for w, v in self.worker_versions.items() if v != locust.__version__}
        return {
            "count": len(self.worker_requests),
            "requests": dict(self.worker_requests),
            "lost": sorted(self.lost_workers),
            "master_locust_version": locust.__version__,
            "version_mismatch": mismatched,
        }

    def _is_worker(self) -> bool:
        return isinstance(self.environment.runner, WorkerRunner)

    # -- during the run --------------------------------------------------------
    def on_test_start(self, **_kwargs) -> None:
        if self._is_worker() or self._sampler is not None:
            return
        self.started_at = self.clock()
        self.started_wall = datetime.now(UTC).isoformat(timespec="seconds")
        self._last_sample = (self.started_at, 0)
        self._sampler = gevent.spawn(self._sample_loop)
        if self.thresholds.abort_on_breach and self.thresholds.rules:
            self._watcher = gevent.spawn(self._abort_loop)

    def sample(self) -> None:
        """Add users x time since the last sample to the virtual-user seconds."""
        runner = self.environment.runner
        if runner is None or self._last_sample is None:
            return
        now = self.clock()
        last_time, last_users = self._last_sample
        users = runner.user_count
        if isinstance(runner, MasterRunner):
            self.lost_workers.update(c.id for c in runner.clients.all if c.state == STATE_MISSING)
        # Trapezoid: the user count moved from last_users to users during the interval.
        self.vu_seconds += (now - last_time) * (last_users + users) / 2.0
        self.peak_users = max(self.peak_users, users)
        self._last_sample = (now, users)

    def _sample_loop(self) -> None:
        while True:
            gevent.sleep(self.SAMPLE_SECONDS)
            self.sample()

    def _abort_loop(self) -> None:
        gevent.sleep(self.thresholds.abort_grace_seconds)
        while True:
            verdict = self.current_verdict()
            breached = [c for c in verdict.checks if c.status == "fail"]
            if breached:
                self.aborted_reason = th.describe(breached[0])
                log.error("Threshold breached, stopping the run early: %s", self.aborted_reason)
                runner = self.environment.runner
                options = self.environment.parsed_options
                if options is not None and getattr(options, "headless", False):
                    runner.quit()
                else:
                    runner.stop()
                return
            gevent.sleep(self.ABORT_CHECK_SECONDS)

    def on_test_stop(self, **_kwargs) -> None:
        if self._is_worker():
            return
        self._finish_sampling()

    def _finish_sampling(self) -> None:
        if self._sampler is not None:
            self.sample()
            self._sampler.kill(block=False)
            self._sampler = None
            self.ended_at = self.clock()
        if self._watcher is not None and self._watcher is not gevent.getcurrent():
            self._watcher.kill(block=False)
            self._watcher = None

    # -- figures and verdict ---------------------------------------------------------
    def current_rows(self) -> tuple[list[StatsRow], StatsRow]:
        return stats_rows(self.environment.runner.stats)

    def current_verdict(self) -> th.Verdict:
        rows, total = self.current_rows()
        return th.evaluate(self.thresholds, rows, total)

    @property
    def vu_hours(self) -> float:
        return self.vu_seconds / 3600.0

    # -- the end ---------------------------------------------------------------------
    def on_quitting(self, environment, **_kwargs) -> None:
        if self._is_worker() or environment.runner is None:
            return
        self._finish_sampling()
        verdict = self.current_verdict()
        passed = verdict.passed and not self.aborted_reason and not self.lost_workers
        if environment.process_exit_code is None:
            environment.process_exit_code = EXIT_PASSED if passed else EXIT_THRESHOLDS
        environment.kit_verdict = {"passed": passed, "text": verdict.text()}

    def on_quit(self, exit_code: int, **_kwargs) -> None:
        if self._is_worker() or self.environment.runner is None:
            return
        rows, total = self.current_rows()
        self.verdict = th.evaluate(self.thresholds, rows, total)
        if self.aborted_reason and self.verdict.passed:
            # Breached during the run, within limits at the end: the breach still counts.
            self.verdict.passed = False
        errors = stats_errors(self.environment.runner.stats)
        from utils import kit

        meta = {
            "run_id": kit.run_id(),
            "scenario": kit.scenario_name(self.environment),
            "host": redact_url(self.environment.host or ""),
            "started": self.started_wall,
            "duration_seconds": (self.ended_at - self.started_at) if self.started_at and self.ended_at else None,
            "peak_users": self.peak_users,
            "vu_hours": round(self.vu_hours, 6),
            "aborted": self.aborted_reason or None,
            "locust_exit_code": exit_code,
            "workers": self.workers_report(),
        }
        self.summary = build_summary(rows, total, errors, self.verdict, meta)
        workers = meta["workers"]
        if workers and workers["lost"]:
            # Less load than planned was sent: the result cannot pass as if nothing happened.
            self.summary["verdict"]["passed"] = False
            self.summary["verdict"]["text"] = f"FAILED ({len(workers['lost'])} worker(s) lost during the run)"
        if workers and workers["version_mismatch"]:
            log.warning(
                "Workers with another Locust version than the master's %s: %s",
                locust.__version__,
                ", ".join(f"{w} ({v})" for w, v in workers["version_mismatch"].items()),
            )
        if self.aborted_reason:
            self.summary["verdict"]["text"] = f"FAILED (stopped early: {self.aborted_reason})"
        passed = self.summary["verdict"]["passed"]
        self.environment.kit_verdict = {"passed": passed, "text": self.summary["verdict"]["text"]}
        self.environment.kit_summary = self.summary
        options = self.environment.parsed_options
        prefix = getattr(options, "csv_prefix", None) if options else None
        write_summary(Path(prefix).parent if prefix else None, self.summary)
        log.info("Thresholds: %s", self.summary["verdict"]["text"])
