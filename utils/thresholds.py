"""Thresholds: pass/fail limits that turn a load test into a deployment gate.

A thresholds file is TOML (Python reads it without extra packages). Example,
``thresholds/default.toml``::

    [settings]
    min_samples = 20              # fewer requests than this on a row = not enough data
    insufficient_data = "fail"    # what not enough data means: "fail" or "pass"
    abort_on_breach = false       # stop the run as soon as a threshold is breached ...
    abort_grace = "30s"           # ... but never in its first 30 seconds

    [thresholds]
    "TOTAL" = ["failure_ratio < 1%", "p95 < 1000ms"]     # over all requests together
    "*" = ["failure_ratio < 5%"]                         # every row on its own
    "GET /api/products*" = ["p95 < 300"]                 # rows whose name matches
    "query GetProducts" = ["p99 < 800", "rps > 5"]

An expression is ``METRIC OPERATOR NUMBER[UNIT]``:
    METRIC    avg, min, max, median, p50, p66, p75, p80, p90, p95, p98, p99, p99.9,
              p99.99, p100 (response times, ms), failure_ratio (0 to 1), failures,
              rps (requests per second), count (requests)
    OPERATOR  <  <=  >  >=  ==
    UNIT      ms or s for times (ms when left out), % for failure_ratio

A name is matched against "TYPE NAME" (``GET /api/products``) and against the bare
name (``/api/products``); ``*`` and ``?`` are wildcards. ``TOTAL`` is the row of
all requests together.

Not enough data: a row matched by name (or TOTAL) with fewer than ``min_samples``
requests - including a name that never appeared - is "no data", and
``insufficient_data`` decides: "fail" (the default: a renamed endpoint cannot
silently skip its gate) or "pass" (reported, not failing). Rows that a wildcard
matches with too few requests are skipped and listed. Only response-time limits
need ``min_samples``: failure_ratio, failures, count and rps are checked whatever
the sample size (a failed request is a fact, a p95 of five requests is a guess).

Overrides: ``THRESHOLDS`` (environment) or ``--threshold`` (helper) add rules,
separated by ``;``, each ``NAME: EXPRESSION`` or just ``EXPRESSION`` for TOTAL;
a rule for the same name and metric replaces the file's.
"""

from __future__ import annotations

import fnmatch
import math
import operator
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from utils.config import REPO_ROOT, ConfigError, parse_duration
from utils.results import PERCENTILE_NAMES, StatsRow

DEFAULT_FILE = REPO_ROOT / "thresholds" / "default.toml"
TOTAL = "TOTAL"
TIME_METRICS = {"avg", "min", "max", "median", *PERCENTILE_NAMES}
SAMPLED_METRICS = TIME_METRICS  # only these need min_samples; failures, count and rps are counted, not estimated
METRICS = [
    *sorted(TIME_METRICS - set(PERCENTILE_NAMES)),
    *PERCENTILE_NAMES,
    "failure_ratio",
    "failures",
    "rps",
    "count",
]
ALIASES = {"error_ratio": "failure_ratio", "fail_ratio": "failure_ratio", "med": "median", "requests": "count"}
OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
_EXPRESSION = re.compile(
    r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|<|>)\s*(-?[0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*(ms|s|%)?\s*$"
)


@dataclass(frozen=True)
class Rule:
    pattern: str  # a stats name, a wildcard pattern, or TOTAL
    metric: str
    op: str
    limit: float  # in the metric's own unit: ms, ratio 0..1, requests, requests/s
    text: str  # as written, for messages

    @property
    def is_wildcard(self) -> bool:
        return self.pattern != TOTAL and any(c in self.pattern for c in "*?[")

    def passes(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.limit)


@dataclass
class Thresholds:
    rules: list[Rule] = field(default_factory=list)
    min_samples: int = 20
    insufficient_data: str = "fail"
    abort_on_breach: bool = False
    abort_grace_seconds: int = 30
    source: str = ""


def parse_expression(text: str, pattern: str = TOTAL, where: str = "threshold") -> Rule:
    """'p95 < 500ms' -> Rule. Raises ConfigError (one line) on anything it cannot use."""
    match = _EXPRESSION.match(str(text))
    if not match:
        raise ConfigError(
            f"{where}: {text!r} is not a threshold expression: write METRIC OPERATOR NUMBER, for example 'p95 < 500'"
        )
    metric, op, number, unit = match.groups()
    metric = ALIASES.get(metric.lower(), metric.lower())
    if metric not in METRICS:
        if re.fullmatch(r"p[\d.]+", metric):
            raise ConfigError(
                f"{where}: {text!r} uses the unknown percentile {metric}: use one of {', '.join(PERCENTILE_NAMES)}"
            )
        raise ConfigError(f"{where}: {text!r} uses the unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    limit = float(number)
    if math.isnan(limit) or math.isinf(limit):
        raise ConfigError(f"{where}: {text!r} has a number the kit cannot use, for example 'p95 < 500'")
    if unit in ("ms", "s") and metric not in TIME_METRICS:
        raise ConfigError(f"{where}: {text!r}: {unit} is a time unit but {metric} is not a time")
    if unit == "%" and metric != "failure_ratio":
        raise ConfigError(f"{where}: {text!r}: % only goes with failure_ratio")
    if unit == "s":
        limit *= 1000.0
    if unit == "%":
        limit /= 100.0
    if metric == "failure_ratio" and not 0 <= limit <= 1:
        raise ConfigError(f"{where}: {text!r}: a failure ratio is from 0 to 1 (or 0% to 100%), for example '< 0.01'")
    if limit < 0:
        raise ConfigError(f"{where}: {text!r}: the limit cannot be negative")
    return Rule(pattern=pattern, metric=metric, op=op, limit=limit, text=" ".join(str(text).split()))


def parse_overrides(text: str, where: str = "THRESHOLDS") -> list[Rule]:
    """'p95<500; GET /api/cart: p99 < 900' -> rules (no name = TOTAL)."""
    rules = []
    for part in re.split(r"[;\n]", text or ""):
        part = part.strip()
        if not part:
            continue
        name, sep, expression = part.rpartition(":")
        if not sep:
            name, expression = TOTAL, part
        name = name.strip()
        if not name:
            raise ConfigError(f"{where}: {part!r} has an empty name before ':', for example 'GET /api/cart: p95 < 500'")
        rules.append(parse_expression(expression.strip(), name, f"{where} {name!r}" if sep else where))
    return rules


def load_file(path: str | Path) -> Thresholds:
    """Read and check a thresholds file. Raises ConfigError (one line) on any problem."""
    path = Path(path)
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"THRESHOLDS_FILE={where!r} is not valid: no such file, for example thresholds/default.toml"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{where}: not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"THRESHOLDS_FILE={where!r} is not valid: {error.strerror}, a TOML file is needed") from None
    unknown = set(data) - {"settings", "thresholds"}
    if unknown:
        raise ConfigError(f"{where}: unknown table [{sorted(unknown)[0]}]: use [settings] and [thresholds]")
    result = Thresholds(source=where)
    for table in ("settings", "thresholds"):
        if not isinstance(data.get(table, {}), dict):
            raise ConfigError(f"{where}: {table} must be a table ([{table}] with key = value lines below it)")
    settings = data.get("settings", {})
    for key, value in settings.items():
        if key == "min_samples":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{where}: min_samples = {value!r}: a whole number of at least 0, for example 20")
            result.min_samples = value
        elif key == "insufficient_data":
            if value not in ("fail", "pass"):
                raise ConfigError(f'{where}: insufficient_data = {value!r}: use "fail" or "pass"')
            result.insufficient_data = value
        elif key == "abort_on_breach":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: abort_on_breach = {value!r}: use true or false")
            result.abort_on_breach = value
        elif key == "abort_grace":
            result.abort_grace_seconds = parse_duration(str(value), f"{where}: abort_grace")
        else:
            raise ConfigError(
                f"{where}: unknown setting {key!r}: use min_samples, insufficient_data, abort_on_breach, abort_grace"
            )
    for pattern, expressions in data.get("thresholds", {}).items():
        if isinstance(expressions, str):
            expressions = [expressions]
        if not isinstance(expressions, list):
            raise ConfigError(f'{where}: "{pattern}" needs a list of expressions, for example ["p95 < 500"]')
        for expression in expressions:
            result.rules.append(parse_expression(expression, pattern, f'{where}: "{pattern}"'))
    return result


def load(file: str | None = None, overrides: str | None = None, abort: bool | None = None) -> Thresholds:
    """The thresholds of a run: FILE (or the default file), then OVERRIDES on top.

    ``file`` may be "none" for no file at all.
    """
    if file and file.strip().lower() == "none":
        thresholds = Thresholds(source="none")
    elif file and file.strip():
        path = Path(file)
        if not path.is_absolute() and not path.exists():
            path = REPO_ROOT / path
        thresholds = load_file(path)
    elif DEFAULT_FILE.exists():
        thresholds = load_file(DEFAULT_FILE)
    else:
        thresholds = Thresholds(source="none")
    extra = parse_overrides(overrides or "")
    replaced = {(r.pattern, r.metric) for r in extra}
    thresholds.rules = [r for r in thresholds.rules if (r.pattern, r.metric) not in replaced] + extra
    if abort is not None:
        thresholds.abort_on_breach = abort
    return thresholds


def from_settings(settings) -> Thresholds:
    return load(settings.thresholds_file, settings.thresholds, settings.thresholds_abort or None)


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------


@dataclass
class Check:
    rule: Rule
    row: str  # the row's label, or the pattern when no row matched
    status: str  # "pass", "fail", "no data" (counted per policy), "skipped"
    value: float | None
    samples: int
    note: str = ""

    def as_dict(self) -> dict:
        return {
            "threshold": f"{self.rule.pattern}: {self.rule.text}",
            "row": self.row,
            "status": self.status,
            "value": self.value,
            "samples": self.samples,
            "note": self.note,
        }


@dataclass
class Verdict:
    passed: bool
    checks: list[Check]
    policy: str
    source: str

    @property
    def breached(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail" or (c.status == "no data" and self.policy == "fail")]

    def text(self) -> str:
        if not self.checks:
            return "PASSED (no thresholds)"
        counts = {}
        for check in self.checks:
            counts[check.status] = counts.get(check.status, 0) + 1
        tally = ", ".join(f"{n} {status}" for status, n in counts.items())
        if self.passed:
            return f"PASSED ({tally})"
        return f"FAILED ({tally}; first breach: {describe(self.breached[0])})"

    def as_dict(self) -> dict:
        return {
            "passed": self.passed,
            "text": self.text(),
            "source": self.source,
            "insufficient_data": self.policy,
            "checks": [c.as_dict() for c in self.checks],
        }


def breached_checks(verdict: dict) -> list[dict]:
    """The checks of a verdict (as in summary.json) that make it fail."""
    fail_on_no_data = verdict.get("insufficient_data") == "fail"
    return [
        c for c in verdict.get("checks", []) if c["status"] == "fail" or (c["status"] == "no data" and fail_on_no_data)
    ]


def describe(check: Check) -> str:
    if check.status == "no data":
        return f"{check.rule.pattern}: {check.rule.text} - no data ({check.samples} samples; {check.note})"
    return f"{check.row}: {check.rule.text} - measured {format_value(check.rule.metric, check.value)}"


def format_value(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if metric in TIME_METRICS:
        return f"{value:.0f} ms"
    if metric == "failure_ratio":
        return f"{value:.2%}"
    if metric == "rps":
        return f"{value:.2f}/s"
    return f"{value:.0f}"


def _matches(pattern: str, row: StatsRow) -> bool:
    return fnmatch.fnmatchcase(row.label, pattern) or fnmatch.fnmatchcase(row.name, pattern)


def evaluate(thresholds: Thresholds, rows: list[StatsRow], total: StatsRow | None) -> Verdict:
    """Check every rule against the rows. Pure: the same figures always give the same verdict."""
    checks: list[Check] = []
    for rule in thresholds.rules:
        if rule.pattern == TOTAL:
            matched = [total] if total is not None else []
        else:
            matched = [r for r in rows if _matches(rule.pattern, r)]
        if not matched:
            checks.append(Check(rule, rule.pattern, "no data", None, 0, "no request with this name was made"))
            continue
        for row in matched:
            label = TOTAL if row is total else row.label
            if row.count == 0 and rule.metric not in ("count", "rps"):
                checks.append(Check(rule, label, "no data", None, 0, "no requests"))
                continue
            enough = row.count >= max(thresholds.min_samples, 1) or rule.metric not in SAMPLED_METRICS
            if not enough:
                note = f"fewer than min_samples={thresholds.min_samples}"
                status = "skipped" if rule.is_wildcard else "no data"
                checks.append(Check(rule, label, status, row.metric(rule.metric), row.count, note))
                continue
            value = row.metric(rule.metric)
            checks.append(Check(rule, label, "pass" if rule.passes(value) else "fail", value, row.count))
    verdict = Verdict(passed=True, checks=checks, policy=thresholds.insufficient_data, source=thresholds.source)
    verdict.passed = not verdict.breached
    return verdict
