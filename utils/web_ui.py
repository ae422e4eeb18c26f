"""A "Thresholds" tab in Locust's web UI: every threshold, its measured value and pass/fail, live.

Locust's web UI can show extra tabs: the page learns the tab and its table's
columns from ``template_args``, and the table's rows from an ``extended_stats``
entry added to the ``/stats/requests`` answer it polls every 2 seconds.
Attached by ``kit.install()`` on the process that serves the web UI (the master
or the local runner).
"""

from __future__ import annotations

import json
import logging

from utils import thresholds as th

log = logging.getLogger(__name__)

TAB_KEY = "thresholds"
COLUMNS = [
    {"key": "threshold", "title": "Threshold"},
    {"key": "row", "title": "Request"},
    {"key": "measured", "title": "Measured"},
    {"key": "samples", "title": "Samples"},
    {"key": "result", "title": "Result"},
]


def table_rows(verdict: th.Verdict) -> list[dict]:
    rows = []
    for check in verdict.checks:
        result = check.status.upper() if check.status in ("pass", "fail") else check.status
        if check.status == "no data" and verdict.policy == "fail":
            result = "no data (fails)"
        rows.append(
            {
                "threshold": f"{check.rule.pattern}: {check.rule.text}",
                "row": check.row,
                "measured": th.format_value(check.rule.metric, check.value),
                "samples": check.samples,
                "result": result,
            }
        )
    if not rows:
        rows.append({"threshold": "(no thresholds)", "row": "", "measured": "", "samples": "", "result": ""})
    return rows


class ThresholdsTab:
    """Adds the tab; its rows come from the run summary listener's live verdict."""

    def __init__(self, environment, summary_listener) -> None:
        self.environment = environment
        self.summary_listener = summary_listener

    def register(self) -> ThresholdsTab | None:
        web_ui = self.environment.web_ui
        if web_ui is None:
            return None
        args = web_ui.template_args
        args["extendedTabs"] = [*args.get("extendedTabs", []), {"key": TAB_KEY, "title": "Thresholds"}]
        args["extendedTables"] = [*args.get("extendedTables", []), {"key": TAB_KEY, "structure": COLUMNS}]
        web_ui.app.after_request(self.add_rows)
        return self

    def rows(self) -> list[dict]:
        if self.environment.runner is None:
            return []
        return table_rows(self.summary_listener.current_verdict())

    def add_rows(self, response):
        """Flask after_request hook: put the thresholds' rows into /stats/requests."""
        from flask import request

        if request.path != "/stats/requests" or response.status_code != 200:
            return response
        try:
            data = json.loads(response.get_data())
        except ValueError:
            return response
        extended = [e for e in data.get("extended_stats", []) if e.get("key") != TAB_KEY]
        data["extended_stats"] = [*extended, {"key": TAB_KEY, "data": self.rows()}]
        response.set_data(json.dumps(data))
        return response
