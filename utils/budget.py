"""Virtual-user hours (VU-hours): plan them, record them, keep a monthly budget.

One virtual user running for one hour is one VU-hour. 50 users for 2 hours are
100 VU-hours; twice a month that is 200 VU-hours, the kit's default monthly
budget (VU_HOURS_BUDGET). Hosted load-testing services bill in this unit, and it
is a fair measure of how much load you put on shared environments.

* Planned: users x duration, less the ramp-up (users start at the spawn rate, so
  during the ramp the count climbs from 0). Load shapes: the area under their curve.
* Used: every helper run records what it actually used (from the user count,
  sampled once a second) in its summary and in the ledger
  ``reports/vu-hours-ledger.csv``; the month's total is read from there. Runs
  against this machine (127.0.0.1, localhost: practice on the demo target) are
  listed with counted=no and do not use up the budget.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from utils.config import ConfigError

LEDGER_NAME = "vu-hours-ledger.csv"
LEDGER_COLUMNS = ["finished_utc", "run_id", "scenario", "planned_vu_hours", "used_vu_hours", "verdict", "counted"]


def is_local_host(url: str) -> bool:
    """True for a target on this machine (practice runs against the demo target)."""
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


def planned_vu_seconds(users: int, duration_seconds: float, spawn_rate: float) -> float:
    """Users x time for a constant-load run that ramps up at SPAWN_RATE users per second."""
    ramp = users / spawn_rate
    if ramp >= duration_seconds:
        # Still ramping when the run ends: a triangle.
        return spawn_rate * duration_seconds**2 / 2.0
    return users * duration_seconds - users * ramp / 2.0


def planned_vu_hours(users: int, duration_seconds: float, spawn_rate: float) -> float:
    return planned_vu_seconds(users, duration_seconds, spawn_rate) / 3600.0


def stages_vu_hours(stages: list[tuple[float, int]], start_users: int = 0) -> float:
    """Area under a k6-style stage list: [(seconds, target users), ...], linear ramps between."""
    area = 0.0
    users = start_users
    for seconds, target in stages:
        area += seconds * (users + target) / 2.0
        users = target
    return area / 3600.0


def vu_hours_from_history(folder: Path) -> float | None:
    """VU-hours from Locust's locust_stats_history.csv (one row a second with the user count)."""
    path = Path(folder) / "locust_stats_history.csv"
    if not path.exists():
        return None
    points = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("Name") == "Aggregated":
                try:
                    points.append((float(row["Timestamp"]), float(row["User Count"])))
                except (KeyError, ValueError):
                    continue
    area = sum((t2 - t1) * (u1 + u2) / 2.0 for (t1, u1), (t2, u2) in itertools.pairwise(points))
    return area / 3600.0


@dataclass
class Ledger:
    """The CSV file of every helper run's VU-hours."""

    path: Path

    def append(
        self, run_id: str, scenario: str, planned: float | None, used: float | None, verdict: str, counted: bool = True
    ) -> None:
        new = not self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a", newline="", encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"{self.path} cannot be written ({error.strerror})") from None
        with handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(LEDGER_COLUMNS)
            writer.writerow(
                [
                    datetime.now(UTC).isoformat(timespec="seconds"),
                    run_id,
                    scenario,
                    "" if planned is None else f"{planned:.6f}",
                    "" if used is None else f"{used:.6f}",
                    verdict,
                    "yes" if counted else "no",
                ]
            )

    def used_in_month(self, month: str | None = None) -> float:
        """VU-hours used in MONTH ('2026-12'; default: the current UTC month)."""
        month = month or datetime.now(UTC).strftime("%Y-%m")
        if not self.path.exists():
            return 0.0
        total = 0.0
        try:
            with self.path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise ConfigError(
                f"{self.path} cannot be read ({type(error).__name__}): move it away to start a new ledger"
            ) from None
        for row in rows:
            if str(row.get("finished_utc", "")).startswith(month) and row.get("counted") != "no":
                try:
                    total += float(row.get("used_vu_hours") or 0)
                except ValueError:
                    continue
        return total
