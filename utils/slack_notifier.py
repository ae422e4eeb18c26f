"""Slack: one message per run with the verdict and the key figures.

Set ``SLACK_WEBHOOK_URL`` to a Slack incoming webhook (Slack: Apps -> Incoming
Webhooks -> Add to a channel). Leave it empty and nothing is sent.

The message is posted once, when Locust quits, from the master or the local
runner (never from a worker). Inside GitHub Actions it links to the workflow run.
A Slack failure or timeout is logged as one line and never changes the verdict
or the exit code; the webhook URL (a secret) is never logged.
"""

from __future__ import annotations

from locust.runners import WorkerRunner

import logging
import os

import requests

from utils.config import get_settings
from utils.thresholds import breached_checks

log = logging.getLogger(__name__)


def ci_run_link() -> str | None:
    """The GitHub Actions run's URL, when running inside GitHub Actions."""
    server, repo, run = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if server and repo and run:
        return f"{server}/{repo}/actions/runs/{run}"
    return None


def build_message(summary: dict) -> dict:
    """The Slack payload (text for notifications, blocks for the channel) from a run summary."""
    verdict = summary["verdict"]
    total = summary.get("total") or {}
    icon = ":white_check_mark:" if verdict["passed"] else ":x:"
    status = "PASSED" if verdict["passed"] else "FAILED"
    title = f"{icon} Load test `{summary.get('scenario', '?')}` {status}"
    figures = (
        f"*Requests:* {total.get('count', 0)}   *Failures:* {total.get('failures', 0)} "
        f"({total.get('failure_ratio', 0):.2%})   *p95:* {total.get('p95', 0):.0f} ms   "
        f"*Throughput:* {total.get('rps', 0):.1f} req/s"
    )
    extra = []
    if summary.get("host"):
        extra.append(f"*Host:* {summary['host']}")
    if summary.get("peak_users") is not None:
        extra.append(f"*Users:* {summary['peak_users']}")
    if summary.get("vu_hours") is not None:
        extra.append(f"*VU-hours:* {summary['vu_hours']:.3f}")
    breached = breached_checks(verdict)
    lines = [title, figures, "   ".join(extra), f"*Verdict:* {verdict['text']}"]
    for check in breached[:5]:
        value = "no data" if check["value"] is None else f"{check['value']:.4g}"
        lines.append(f"• `{check['threshold']}` on {check['row']}: measured {value}")
    link = ci_run_link()
    if link:
        lines.append(f"<{link}|Open the CI run>")
    lines.append(f"Run `{summary.get('run_id', '?')}`")
    text = "\n".join(line for line in lines if line)
    return {"text": f"Load test {summary.get('scenario', '?')} {status}", "blocks": [_section(text)]}


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}


class SlackNotifier:
    """Posts the run summary to a Slack incoming webhook, once per run."""

    def __init__(self, environment, webhook_url: str, session: requests.Session | None = None, timeout=5.0) -> None:
        self.environment = environment
        self.webhook_url = webhook_url
        self.session = session or requests.Session()
        self.timeout = timeout
        self.sent = 0
        self.last_error = ""

    @classmethod
    def from_settings(cls, environment) -> SlackNotifier | None:
        url = get_settings().slack_webhook_url
        if not url:
            log.info("Slack: SLACK_WEBHOOK_URL is not set, no Slack message will be sent")
            return None
        return cls(environment, url).register()

    def register(self) -> SlackNotifier:
        self.environment.events.quit.add_listener(self.on_quit)
        return self

    def on_quit(self, **_kwargs) -> None:
        if isinstance(self.environment.runner, WorkerRunner) or self.sent:
            return
        summary = getattr(self.environment, "kit_summary", None)
        if summary is None:
            log.warning("Slack: no run summary to send")
            return
        self.post(build_message(summary))

    def post(self, payload: dict) -> bool:
        """POST the payload; True when Slack accepted it. Never raises."""
        self.sent += 1
        # urllib3 logs each request's path at DEBUG level: for a webhook the path IS the secret.
        quiet = logging.getLogger("urllib3.connectionpool")
        level = quiet.level
        quiet.setLevel(max(level, logging.INFO))
        try:
            response = self.session.post(self.webhook_url, json=payload, timeout=self.timeout)
        except requests.RequestException as error:
            # The exception's text contains the URL (a secret): log only its kind.
            self.last_error = type(error).__name__
            log.warning("Slack: the message was not sent (%s; timeout %.0f s)", self.last_error, self.timeout)
            return False
        finally:
            quiet.setLevel(level)
        if response.status_code != 200:
            self.last_error = f"HTTP {response.status_code}"
            log.warning("Slack: the webhook answered %s: %s", response.status_code, response.text[:200])
            return False
        log.info("Slack: summary posted")
        return True

    def close(self) -> None:
        self.session.close()
