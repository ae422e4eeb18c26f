"""One call that wires the kit into a locustfile: ``kit.install()``.

Every locustfile in tests/ calls it once, at import. It does not connect to
anything: it only asks Locust to call ``_on_init`` when the test environment
exists (on the master, on every worker and in a local run), and that function
attaches the kit's listeners to the environment.
"""

from __future__ import annotations

from locust import events

import logging
import os
import sys
import uuid
from pathlib import Path

from utils import thresholds as th
from utils.config import ConfigError, get_settings
from utils.datadog_reporter import DatadogReporter
from utils.results import FinalResultsWriter
from utils.slack_notifier import SlackNotifier
from utils.summary import RunSummary
from utils.web_ui import ThresholdsTab

log = logging.getLogger(__name__)

_installed = False
_thresholds: th.Thresholds | None = None
_generated_run_id = f"run-{uuid.uuid4().hex[:12]}"


def run_id() -> str:
    """The id of this run, the same on the master and every worker.

    The helper sets KIT_RUN_ID (the run folder's name) for Locust and the workers it
    starts. A plain `locust` run has none: each process then makes its own id, so set
    KIT_RUN_ID yourself when you start workers by hand.
    """
    return os.environ.get("KIT_RUN_ID") or _generated_run_id


def traffic_headers() -> dict[str, str]:
    """Headers that mark the kit's requests as load-test traffic, with the run's id.

    The app's tracing can keep them as span tags, so APM traces of a load test can be
    found or filtered out: for Datadog, DD_TRACE_HEADER_TAGS=x-load-test-run:loadtest.run_id
    """
    return {"X-Load-Test": "true", "X-Load-Test-Run": run_id()}


def scenario_name(environment=None) -> str:
    """KIT_SCENARIO (set by the helper), else the locustfile's name without .py."""
    if os.environ.get("KIT_SCENARIO"):
        return os.environ["KIT_SCENARIO"]
    options = getattr(environment, "parsed_options", None)
    locustfile = getattr(options, "locustfile", None) or ""
    return Path(str(locustfile).split(",")[0]).stem or "unknown"


def _on_init(environment, **_kwargs) -> None:
    # Order matters when Locust quits: final figures first, then the verdict and
    # summary, then the listeners that report them (Datadog, Slack).
    # 1. The exact final figures next to Locust's CSV files (when --csv is given).
    environment.kit_results = FinalResultsWriter(environment).register()
    # 2. Thresholds, virtual-user hours, summary.md / summary.json.
    environment.kit_summary_listener = RunSummary(environment, _thresholds).register()
    # 3. A "Thresholds" tab in the web UI (when there is one), with live pass/fail.
    environment.kit_thresholds_tab = ThresholdsTab(environment, environment.kit_summary_listener).register()
    # 3. Datadog, when DD_AGENT_HOST, DD_DOGSTATSD_URL or DD_API_KEY is set: per-request
    #    metrics from every process that runs users, start/stop events from the master.
    environment.kit_datadog = DatadogReporter.from_settings(environment)
    # 4. Slack, when SLACK_WEBHOOK_URL is set: one message per run, from the master or local runner.
    environment.kit_slack = SlackNotifier.from_settings(environment)


def install(thresholds_file: str | None = None) -> None:
    """Check the settings and thresholds, then attach the kit's listeners to Locust's
    init event. Safe to call twice. A bad setting or threshold stops here with one
    line and exit code 2, before any load is sent.

    ``thresholds_file``: this locustfile's own thresholds, used unless THRESHOLDS_FILE
    (or the helper's --thresholds) names another; without it, thresholds/default.toml.
    """
    global _installed, _thresholds
    if _installed:
        return
    try:
        settings = get_settings()
        _thresholds = th.load(
            settings.thresholds_file or thresholds_file, settings.thresholds, settings.thresholds_abort or None
        )
    except ConfigError as error:
        sys.stderr.write(f"error: {error}\n")
        raise SystemExit(2) from None
    events.init.add_listener(_on_init)
    _installed = True
