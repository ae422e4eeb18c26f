"""Read a finished run's figures from Locust's own CSV files.

``locust --csv reports/RUN/locust`` writes, among others:
    locust_stats.csv          one row per request name, plus an "Aggregated" row
    locust_failures.csv       one row per distinct failure message
    locust_stats_history.csv  one "Aggregated" row per second (with the user count)

The helper decides pass or fail from these files, not from Locust's exit code:
they hold the final numbers also in distributed runs.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

CSV_PREFIX = "locust"

# The percentiles Locust reports, as the kit names them: p50, p66, ..., p99.9, p99.99, p100.
PERCENTILES = [0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0]


def percentile_name(fraction: float) -> str:
    """0.95 -> 'p95', 0.999 -> 'p99.9', 1.0 -> 'p100'."""
    return "p" + f"{fraction * 100:.2f}".rstrip("0").rstrip(".")


PERCENTILE_NAMES = [percentile_name(p) for p in PERCENTILES]


@dataclass(frozen=True)
class StatsRow:
    """One line of locust_stats.csv. Times are in milliseconds."""

    type: str
    name: str
    count: int
    failures: int
    avg: float
    min: float
    max: float
    median: float
    p50: float
    p90: float
    p95: float
    p99: float
    rps: float
    avg_size: float
    percentiles: dict = field(default_factory=dict)  # {"p50": ms, ..., "p100": ms}

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.count if self.count else 0.0

    @property
    def label(self) -> str:
        return f"{self.type} {self.name}".strip()

    def as_dict(self) -> dict:
        return asdict(self) | {"failure_ratio": self.failure_ratio}

    def metric(self, name: str) -> float:
        """A figure by its threshold name: avg, min, max, median, p95, p99.9, failure_ratio, failures, rps, count."""
        if name in self.percentiles:
            return self.percentiles[name]
        if name == "failure_ratio":
            return self.failure_ratio
        return float(getattr(self, name))


def _num(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0  # Locust writes "N/A" where there is no sample yet


def read_stats(folder: str | Path) -> tuple[list[StatsRow], StatsRow | None]:
    """(rows per request name, the Aggregated row) from FOLDER/locust_stats.csv.

    Raises FileNotFoundError when Locust wrote no statistics (it crashed or never started).
    """
    path = Path(folder) / f"{CSV_PREFIX}_stats.csv"
    rows: list[StatsRow] = []
    total = None
    with path.open(newline="", encoding="utf-8") as handle:
        for line in csv.DictReader(handle):
            row = StatsRow(
                type=line["Type"],
                name=line["Name"],
                count=int(_num(line["Request Count"])),
                failures=int(_num(line["Failure Count"])),
                avg=_num(line["Average Response Time"]),
                min=_num(line["Min Response Time"]),
                max=_num(line["Max Response Time"]),
                median=_num(line["Median Response Time"]),
                p50=_num(line["50%"]),
                p90=_num(line["90%"]),
                p95=_num(line["95%"]),
                p99=_num(line["99%"]),
                rps=_num(line["Requests/s"]),
                avg_size=_num(line["Average Content Size"]),
                percentiles={
                    name: _num(line.get(f"{name[1:]}%", "")) for name in PERCENTILE_NAMES if f"{name[1:]}%" in line
                },
            )
            if row.name == "Aggregated" and not row.type:
                total = row
            else:
                rows.append(row)
    return rows, total


def read_failures(folder: str | Path) -> list[dict]:
    """The rows of locust_failures.csv: method, name, error message, occurrences."""
    path = Path(folder) / f"{CSV_PREFIX}_failures.csv"
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            {"method": r["Method"], "name": r["Name"], "error": r["Error"], "occurrences": int(_num(r["Occurrences"]))}
            for r in csv.DictReader(handle)
        ]


def format_table(rows: list[StatsRow], total: StatsRow | None) -> str:
    """A plain-text table of the rows, for the terminal."""
    header = f"{'request':<44} {'count':>7} {'fails':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8}"
    lines = [header, "-" * len(header)]
    for row in [*rows, *([total] if total else [])]:
        label = "TOTAL" if row is total else row.label
        lines.append(
            f"{label[:44]:<44} {row.count:>7} {row.failures:>6} {row.p50:>8.0f} {row.p95:>8.0f} {row.p99:>8.0f}"
            f" {row.rps:>8.2f}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The exact final figures, written by a listener when Locust quits
# ---------------------------------------------------------------------------
#
# Locust rewrites locust_stats.csv once a second, and does not rewrite it at the
# very end: the requests of the last second can be missing from it. The kit's
# FinalResultsWriter writes FOLDER/final_stats.json when Locust quits, from the
# same in-memory statistics Locust prints in its final summary. The helper
# prefers that file and falls back to the CSV.

FINAL_STATS_FILE = "final_stats.json"


_WRAPPED = re.compile(r"^(?:CatchResponseError|RescheduleTask|Exception)\((['\"])(.*?)\1?\)?$", re.S)


def clean_error(text: str) -> str:
    """Locust shows a failure as CatchResponseError('the reason'): keep only the reason."""
    match = _WRAPPED.match(str(text))
    return match.group(2) if match else str(text)


def row_from_entry(entry) -> StatsRow:
    """A StatsRow from a locust.stats.StatsEntry."""
    count = entry.num_requests
    return StatsRow(
        type=entry.method or "",
        name=entry.name,
        count=count,
        failures=entry.num_failures,
        avg=entry.avg_response_time,
        min=entry.min_response_time or 0,
        max=entry.max_response_time,
        median=entry.median_response_time,
        p50=entry.get_response_time_percentile(0.50) if count else 0,
        p90=entry.get_response_time_percentile(0.90) if count else 0,
        p95=entry.get_response_time_percentile(0.95) if count else 0,
        p99=entry.get_response_time_percentile(0.99) if count else 0,
        rps=entry.total_rps,
        avg_size=entry.avg_content_length,
        percentiles={
            name: (entry.get_response_time_percentile(p) if count else 0)
            for name, p in zip(PERCENTILE_NAMES, PERCENTILES, strict=True)
        },
    )


def stats_rows(stats) -> tuple[list[StatsRow], StatsRow]:
    """(one row per request name, sorted; the total row) from a locust.stats.RequestStats."""
    rows = [row_from_entry(e) for e in stats.entries.values() if e.num_requests or e.num_failures]
    rows.sort(key=lambda r: (r.name, r.type))
    return rows, row_from_entry(stats.total)


def stats_errors(stats) -> list[dict]:
    """Locust's failures, most frequent first, with the reason unwrapped."""
    errors = [
        {"method": e.method, "name": e.name, "error": clean_error(e.parse_error(e.error)), "occurrences": e.occurrences}
        for e in stats.errors.values()
    ]
    return sorted(errors, key=lambda e: -e["occurrences"])


class FinalResultsWriter:
    """Writes final_stats.json next to Locust's CSV files when Locust quits.

    Needs ``--csv PREFIX``: the file goes into PREFIX's folder. Runs on the
    master or the local runner only (a worker's figures are only its share).
    """

    def __init__(self, environment) -> None:
        self.environment = environment
        self.written: Path | None = None

    def register(self) -> FinalResultsWriter:
        self.environment.events.quit.add_listener(self.on_quit)
        return self

    def target_folder(self) -> Path | None:
        options = self.environment.parsed_options
        prefix = getattr(options, "csv_prefix", None) if options else None
        return Path(prefix).parent if prefix else None

    def on_quit(self, exit_code: int, **_kwargs) -> None:
        from locust.runners import WorkerRunner

        folder = self.target_folder()
        runner = self.environment.runner
        if folder is None or runner is None or isinstance(runner, WorkerRunner):
            return
        stats = runner.stats
        rows, total = stats_rows(stats)
        payload = {
            "locust_exit_code": exit_code,
            "start_time": stats.total.start_time,
            "last_request_time": stats.total.last_request_timestamp,
            "rows": [r.as_dict() for r in rows],
            "total": total.as_dict(),
            "errors": stats_errors(stats),
        }
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / FINAL_STATS_FILE
        path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        self.written = path


def _row_from_dict(data: dict) -> StatsRow:
    known = {f for f in StatsRow.__dataclass_fields__}
    return StatsRow(**{k: v for k, v in data.items() if k in known})


def read_results(folder: str | Path) -> tuple[list[StatsRow], StatsRow | None, list[dict]]:
    """(rows, total, failures) of a finished run: final_stats.json if there, else the CSV files.

    Raises FileNotFoundError when neither exists.
    """
    path = Path(folder) / FINAL_STATS_FILE
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        total = _row_from_dict(data["total"]) if data.get("total") else None
        return [_row_from_dict(r) for r in data["rows"]], total, data.get("errors", [])
    rows, total = read_stats(folder)
    return rows, total, read_failures(folder)
