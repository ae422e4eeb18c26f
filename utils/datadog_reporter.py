"""Send every request's figures, and the run's start and stop, to Datadog.

``kit.install()`` attaches one ``DatadogReporter`` per Locust process. What it sends:

per request (from the process that made it: the local runner or each worker)
    ``locust.request.duration``  distribution, milliseconds (p50/p95/p99 in Datadog)
    ``locust.requests``          count; failures are ``locust.requests{status:error}``
    ``locust.response.bytes``    count of response bytes (bytes/s, and bytes per request)
    tagged ``request_type``, ``request_name``, ``status`` (ok/error), ``run_id``,
    ``scenario`` and the unified service tags ``env``, ``service``, ``version``.

per run (from the master or the local runner only, so nothing is counted twice)
    ``locust.users``, ``locust.requests_per_second``, ``locust.failure_ratio``
    gauges every few seconds, and one event when the test starts and one when
    Locust quits (with the final figures and the thresholds verdict).

Two ways to reach Datadog, chosen from the settings (utils/config.py):

* an agent (DogStatsD): ``DD_AGENT_HOST`` / ``DD_DOGSTATSD_PORT``, or
  ``DD_DOGSTATSD_URL`` (udp://host:port or unix:///path). The client buffers
  lines into full datagrams and aggregates counts and gauges before sending;
* no agent (CI runners): Datadog's HTTP API with ``DD_API_KEY`` (and ``DD_SITE``
  or ``DD_API_URL``). Figures are aggregated in memory and posted every 10 s and
  when Locust quits.

Neither configured: one log line and the reporter stays off. Datadog being
unreachable never changes a test's result: errors are logged once, not per request.

Every distinct tag value is a new custom metric in Datadog (and costs money), so
only the first ``MAX_NAMES`` request names are kept; later ones are reported as
``request_name:other``. Group URLs that carry ids with ``name=`` in the locustfile.
"""

from __future__ import annotations

from locust.runners import WorkerRunner

import gzip
import json
import logging
import re
import time
from urllib.parse import urlsplit

import gevent
from gevent.lock import BoundedSemaphore

log = logging.getLogger(__name__)

# Metric names (the dashboard in dashboards/locust-loadtest.json uses the same).
REQUESTS = "locust.requests"
DURATION = "locust.request.duration"
RESPONSE_BYTES = "locust.response.bytes"
USERS = "locust.users"
RPS = "locust.requests_per_second"
FAILURE_RATIO = "locust.failure_ratio"

MAX_NAMES = 100  # distinct request names (per type) kept as tag values; the rest -> "other"
OTHER = "other"
MAX_TAG_LENGTH = 200  # Datadog's limit for one tag
MAX_EVENT_TEXT = 3000  # DogStatsD refuses events over 8 KB; keep well below
GAUGE_INTERVAL = 5.0  # seconds between two run-level gauge samples
API_FLUSH_INTERVAL = 10.0  # seconds between two HTTP API posts
API_TIMEOUT = (3.05, 5.0)  # (connect, read) seconds for one HTTP API call
API_PAUSE_AFTER_FAILURE = 30.0  # an API that timed out or refused the connection: skip it this long
API_MAX_VALUES = 20_000  # distribution values in one series of one post
MAX_LINE = 1400  # bytes of one DogStatsD line with packed values (a UDP datagram carries 1432)
STATSD_FLUSH_INTERVAL = 0.5  # seconds between two DogStatsD flushes (aggregated lines, buffer)
REQUEST_FLUSH_INTERVAL = 1.0  # seconds between two hand-overs of request figures to the transport

_TAG_UNSAFE = re.compile(r"[^\w\-:./]", re.UNICODE)


def tag_value(text, room: int = MAX_TAG_LENGTH) -> str:
    """A value DogStatsD can carry and Datadog keeps as written: '/api/items/[id]' -> '/api/items/_id_'.

    Characters other than letters, digits and ``_ - : . /`` become ``_`` (DogStatsD
    uses ``|``, ``,`` and ``#`` as separators); at most ROOM characters.
    """
    value = _TAG_UNSAFE.sub("_", str(text))[:room]
    return value or "none"


def tag(key: str, value) -> str:
    """'key:value', at most 200 characters in all (Datadog's limit for one tag)."""
    return f"{key}:{tag_value(value, MAX_TAG_LENGTH - len(key) - 1)}"


# ---------------------------------------------------------------------------
# Transports: the same five calls, to an agent or to the HTTP API
# ---------------------------------------------------------------------------


class _OnceFilter(logging.Filter):
    """Lets the DogStatsD client's first send error through and counts the rest.

    With no agent listening, the client logs one warning per datagram: thousands in
    a load test. One line says what is wrong; the reporter reports the count at the end.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        self.seen += 1
        if self.seen == 1:
            record.msg = f"Datadog agent: {record.msg} (further send errors are counted, not logged)"
            return True
        return False


_statsd_filter = _OnceFilter()
logging.getLogger("datadog.dogstatsd").addFilter(_statsd_filter)


def dogstatsd_address(settings) -> dict:
    """DogStatsd() keyword arguments from DD_DOGSTATSD_URL, else DD_AGENT_HOST/DD_DOGSTATSD_PORT."""
    url = settings.dd_dogstatsd_url
    if url:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return {"socket_path": parts.path}
        return {"host": parts.hostname, "port": parts.port or 8125}
    return {"host": settings.dd_agent_host, "port": settings.dd_dogstatsd_port}


class _PeriodicFlush:
    """A transport that flushes every ``flush_interval`` seconds in its own greenlet once started."""

    def start(self) -> None:
        if self._loop is None and not self._closed:
            self._loop = gevent.spawn(self._run)

    def _run(self) -> None:
        while not self._closed:
            gevent.sleep(self.flush_interval)
            self.flush()


class StatsdTransport(_PeriodicFlush):
    """DogStatsD through an agent, with the client's buffering and aggregation on.

    The client's own flush thread is replaced by a greenlet here: under gevent the
    thread is a greenlet too, and one that is half-way through a flush when the client
    is stopped leaves its last lines in the buffer. One lock, one flusher: nothing is lost.
    """

    kind = "dogstatsd"

    def __init__(self, client, where: str = "", flush_interval: float = STATSD_FLUSH_INTERVAL) -> None:
        self.client = client
        self.where = where
        self.flush_interval = flush_interval
        self._lock = BoundedSemaphore()
        self._loop = None
        self._closed = False
        self._finished = False

    @classmethod
    def from_settings(cls, settings) -> StatsdTransport:
        from datadog.dogstatsd import DogStatsd

        address = dogstatsd_address(settings)
        client = DogStatsd(
            **address,
            disable_buffering=False,  # pack many lines into each datagram
            disable_aggregation=False,  # one line per counter and interval, not per request
            flush_interval=0,  # no flush thread in the client: start() flushes (see above)
            origin_detection_enabled=False,  # a load generator is not a container to enrich
            socket_timeout=0,  # never block a user: a full socket buffer drops the datagram
        )
        client.constant_tags = []  # the reporter adds its own tags (from .env as well)
        where = address.get("socket_path") or f"{address['host']}:{address['port']}"
        return cls(client, where)

    def count(self, metric: str, value: float, tags) -> None:
        self.client.count(metric, value, tags)

    def distribution(self, metric: str, values: list, tags) -> None:
        """Many values in one line: ``metric:12.5:3.1:...|d|#tags`` (DogStatsD 1.1, agent 6.25+/7.25+).

        One line per few hundred requests instead of one per request: the client only
        formats what it is given, so the values are passed in as that text.
        """
        room = max(MAX_LINE - len(metric) - len(",".join(tags)) - 8, 16)
        line: list[str] = []
        used = 0
        for value in values:
            text = str(round(value, 2))
            if line and used + len(text) + 1 > room:
                self.client.distribution(metric, ":".join(line), tags)
                line, used = [], 0
            line.append(text)
            used += len(text) + 1
        if line:
            self.client.distribution(metric, ":".join(line), tags)

    def gauge(self, metric: str, value: float, tags) -> None:
        self.client.gauge(metric, value, tags)

    def event(self, title: str, text: str, alert_type: str, tags, aggregation_key: str) -> None:
        self.client.event(
            title, text, alert_type=alert_type, aggregation_key=aggregation_key, source_type_name="locust", tags=tags
        )

    def flush(self) -> None:
        with self._lock:
            if not self._finished:
                self.client.flush_aggregated_metrics()
                self.client.flush_buffered_metrics()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._lock:  # waits for a flush in progress
            self.client.flush_aggregated_metrics()
            self.client.flush_buffered_metrics()
            self._finished = True
            self.client.close_socket()
        if self._loop is not None:
            self._loop.kill(block=False)
        errors = _statsd_filter.seen
        if errors > 1:
            log.warning("Datadog agent at %s: %d sends failed (is the agent running?)", self.where, errors)


class ApiTransport(_PeriodicFlush):
    """Datadog's HTTP API (no agent): aggregates in memory, posts every few seconds and at the end.

    ``session`` is a ``requests.Session`` (a test hands one pointing at a local server).
    A 403 (bad API key) is logged once, without the key, and turns the transport off.
    """

    kind = "api"

    def __init__(
        self, api_url: str, api_key: str, session=None, flush_interval: float = API_FLUSH_INTERVAL, site: str = ""
    ) -> None:
        import requests

        self.api_url = api_url.rstrip("/")
        self.site = site
        self.session = session or requests.Session()
        self.headers = {"DD-API-KEY": api_key, "Content-Type": "application/json"}
        self._key_length = len(api_key)
        self.flush_interval = flush_interval
        self.counts: dict = {}
        self.distributions: dict = {}
        self.gauges: dict = {}
        self.events: list = []
        self.extra_count_tags: tuple = ()  # set by the reporter on a worker (see _tags_for)
        self.dropped = 0  # points or events that could not be delivered
        self.disabled = False
        self._warned: set = set()
        self._lock = BoundedSemaphore()
        self._loop = None
        self._closed = False
        self._flushed_last = False
        self._last_timestamp = 0

    def count(self, metric: str, value: float, tags) -> None:
        key = (metric, tags)
        self.counts[key] = self.counts.get(key, 0) + value

    def distribution(self, metric: str, values: list, tags) -> None:
        self.distributions.setdefault((metric, tags), []).extend(values)

    def gauge(self, metric: str, value: float, tags) -> None:
        self.gauges[(metric, tags)] = (int(time.time()), value)

    def event(self, title: str, text: str, alert_type: str, tags, aggregation_key: str) -> None:
        self.events.append(
            {
                "title": title,
                "text": text,
                "alert_type": alert_type,
                "aggregation_key": aggregation_key,
                "source_type_name": "locust",
                "date_happened": int(time.time()),
                "tags": list(tags),
            }
        )
        if self._loop is not None:
            gevent.spawn(self.flush)  # an event should not wait for the next interval

    # Sending
    def flush(self) -> None:
        with self._lock:
            if self._flushed_last:
                return
            counts, self.counts = self.counts, {}
            distributions, self.distributions = self.distributions, {}
            gauges, self.gauges = self.gauges, {}
            events, self.events = self.events, []
            if self.disabled:
                return
            # One count point per series and second: Datadog keeps the last point it gets for
            # the same series and timestamp, so two flushes never share a timestamp.
            now = max(int(time.time()), self._last_timestamp + 1)
            self._last_timestamp = now
            series = [
                {
                    "metric": metric,
                    "type": 1,  # count
                    "interval": int(self.flush_interval),
                    "points": [{"timestamp": now, "value": value}],
                    "tags": [*tags, *self.extra_count_tags],
                }
                for (metric, tags), value in counts.items()
            ]
            series += [
                {"metric": metric, "type": 3, "points": [{"timestamp": ts, "value": value}], "tags": list(tags)}
                for (metric, tags), (ts, value) in gauges.items()
            ]
            for chunk in _chunks(series, 2000):
                self._post("/api/v2/series", {"series": chunk}, len(chunk))
            dist_series = []
            for (metric, tags), values in distributions.items():
                for start in range(0, len(values), API_MAX_VALUES):
                    part = [round(v, 3) for v in values[start : start + API_MAX_VALUES]]
                    dist_series.append({"metric": metric, "points": [[now, part]], "tags": list(tags)})
            for chunk in _chunks(dist_series, 10):
                self._post("/api/v1/distribution_points", {"series": chunk}, sum(len(s["points"][0][1]) for s in chunk))
            for event in events:
                self._post("/api/v1/events", event, 1, compress=False)

    def _post(self, path: str, body: dict, points: int, compress: bool = True) -> bool:
        import requests

        if self.disabled or time.monotonic() < getattr(self, "_paused_until", 0.0):
            # Refused key, or the API did not answer a moment ago: do not make the run wait again.
            self.dropped += points
            return False
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = dict(self.headers)
        if compress:
            data = gzip.compress(data, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        try:
            response = self.session.post(self.api_url + path, data=data, headers=headers, timeout=API_TIMEOUT)
        except requests.RequestException as error:
            self.dropped += points
            self._paused_until = time.monotonic() + API_PAUSE_AFTER_FAILURE
            self._warn_once(
                "unreachable", "Datadog API at %s cannot be reached (%s)", self.api_url, type(error).__name__
            )
            return False
        if response.status_code < 300:
            return True
        self.dropped += points
        if response.status_code == 403:
            self.disabled = True
            log.error(
                "Datadog API at %s refused the API key (403 Forbidden): check DD_API_KEY (%d characters) and"
                " DD_SITE=%s. The Datadog reporter stops sending for this run.",
                self.api_url,
                self._key_length,
                self.site or "?",
            )
        else:
            self._warn_once(
                response.status_code,
                "Datadog API at %s answered %s to %s: %s",
                self.api_url,
                response.status_code,
                path,
                response.text[:200].replace(self.headers["DD-API-KEY"], "***"),
            )
        return False

    def _warn_once(self, key, message: str, *args) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.flush()  # waits for a flush in progress, then sends what is left
        self._flushed_last = True
        if self._loop is not None:
            self._loop.kill(block=False)
        self.session.close()
        if self.dropped:
            log.warning("Datadog API: %d points or events could not be delivered", self.dropped)


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def transport_from_settings(settings):
    """The transport the settings ask for, or None (with one log line) when Datadog is not configured."""
    if settings.dd_dogstatsd_url or settings.dd_agent_host:
        transport = StatsdTransport.from_settings(settings)
        log.info("Datadog: sending metrics and events to the agent at %s (DogStatsD)", transport.where)
        return transport
    if settings.dd_api_key:
        log.info("Datadog: sending metrics and events to %s (HTTP API, no agent)", settings.datadog_api_url)
        return ApiTransport(settings.datadog_api_url, settings.dd_api_key, site=settings.dd_site)
    log.info("Datadog reporter off: set DD_AGENT_HOST (agent) or DD_API_KEY (no agent) to send metrics")
    return None


# ---------------------------------------------------------------------------
# The listener
# ---------------------------------------------------------------------------


class DatadogReporter:
    """Listens to Locust's events and hands figures to a transport (see the module docstring)."""

    def __init__(
        self,
        transport,
        *,
        run_id: str,
        scenario: str,
        env: str = "",
        service: str = "",
        version: str = "",
        max_names: int = MAX_NAMES,
        gauge_interval: float = GAUGE_INTERVAL,
        request_flush_interval: float = REQUEST_FLUSH_INTERVAL,
    ) -> None:
        self.transport = transport
        self.run_id = run_id
        self.scenario = scenario
        self.max_names = max_names
        self.gauge_interval = gauge_interval
        self.request_flush_interval = request_flush_interval
        unified = [tag("env", env) if env else "", tag("service", service) if service else ""]
        unified.append(tag("version", version) if version else "")
        self.run_tags = tuple(t for t in [tag("run_id", run_id), tag("scenario", scenario), *unified] if t)
        self.environment = None
        self._tags: dict = {}  # (request_type, name, ok) -> tag tuple
        self._pending: dict = {}  # tag tuple -> [requests, response bytes, [durations]]
        self._request_loop = None
        self._names: dict = {}  # request_type -> set of names kept
        self._folded = 0
        self._gauge_loop = None
        self._start_sent = False
        self._stop_sent = False
        self._closed = False
        self._errors = 0

    @classmethod
    def from_settings(cls, environment, settings=None) -> DatadogReporter | None:
        """Build and register the reporter the settings ask for; None when Datadog is not configured."""
        from utils import kit
        from utils.config import get_settings

        settings = settings or get_settings()
        transport = transport_from_settings(settings)
        if transport is None:
            return None
        reporter = cls(
            transport,
            run_id=kit.run_id(),
            scenario=kit.scenario_name(environment),
            env=settings.dd_env,
            service=settings.dd_service,
            version=settings.dd_version,
        )
        return reporter.register(environment)

    def register(self, environment) -> DatadogReporter:
        self.environment = environment
        events = environment.events
        # Only processes that run users fire `request`: the master never does.
        events.request.add_listener(self.on_request)
        events.test_start.add_listener(self.on_test_start)
        events.test_stop.add_listener(self.on_test_stop)
        events.quit.add_listener(self.on_quit)
        if hasattr(self.transport, "start"):
            self.transport.start()
        self._request_loop = gevent.spawn(self._flush_requests_forever)
        return self

    def _is_worker(self) -> bool:
        return isinstance(getattr(self.environment, "runner", None), WorkerRunner)

    # ------------------------------------------------------------ per request
    def on_request(self, request_type, name, response_time, response_length, exception=None, **_kwargs) -> None:
        ok = exception is None
        tags = self._tags.get((request_type, name, ok))
        if tags is None:
            tags = self._tags_for(request_type, name, ok)
        # The hot path: add to this second's figures; a greenlet hands them over (flush_requests).
        figures = self._pending.get(tags)
        if figures is None:
            figures = self._pending[tags] = [0, 0, []]
        figures[0] += 1
        figures[1] += response_length or 0
        figures[2].append(response_time or 0)

    def flush_requests(self) -> None:
        """Hand the figures gathered since the last call to the transport (counts, bytes, latencies)."""
        pending, self._pending = self._pending, {}
        try:
            for tags, (count, size, durations) in pending.items():
                self.transport.count(REQUESTS, count, tags)
                if size:
                    self.transport.count(RESPONSE_BYTES, size, tags)
                self.transport.distribution(DURATION, durations, tags)
        except (OSError, ValueError, TypeError) as error:
            # Never fail the load test because of Datadog.
            self._errors += 1
            if self._errors == 1:
                log.warning("Datadog reporter: could not hand over request figures (%s); the test goes on", error)

    def _flush_requests_forever(self) -> None:
        while True:
            gevent.sleep(self.request_flush_interval)
            self.flush_requests()

    def _tags_for(self, request_type, name, ok: bool) -> tuple:
        names = self._names.setdefault(request_type, set())
        if name not in names and len(names) >= self.max_names:
            self._folded += 1
            if self._folded == 1:
                log.warning(
                    "Datadog: more than %d distinct request names; the others are sent as request_name:%s."
                    " Group URLs that carry ids with name=... in the locustfile.",
                    self.max_names,
                    OTHER,
                )
            key = (request_type, OTHER, ok)
            if key not in self._tags:
                self._tags[key] = self._make_tags(request_type, OTHER, ok)
            return self._tags[key]  # not cached under the real name: the cache stays bounded
        names.add(name)
        tags = self._make_tags(request_type, name, ok)
        self._tags[(request_type, name, ok)] = tags
        return tags

    def _make_tags(self, request_type, name, ok: bool) -> tuple:
        request_tags = (
            tag("request_type", request_type),
            tag("request_name", name),
            "status:ok" if ok else "status:error",
        )
        return request_tags + self.run_tags

    # ---------------------------------------------------------------- per run
    def on_test_start(self, environment=None, **_kwargs) -> None:
        if self._is_worker():
            if hasattr(self.transport, "extra_count_tags"):
                # HTTP API only: the agent adds up counts from many processes, the API keeps
                # the last point per series and second. A worker tag keeps each process's own.
                self.transport.extra_count_tags = (f"locust_worker:{self.environment.runner.worker_index}",)
            return
        if not self._start_sent:
            self._start_sent = True
            self._event("start", f"Load test started: {self.scenario}", self._start_text(), "info")
        if self._gauge_loop is None:
            self._gauge_loop = gevent.spawn(self._gauges_forever)

    def _start_text(self) -> str:
        options = getattr(self.environment, "parsed_options", None)
        facts = [f"run {self.run_id}"]
        host = getattr(self.environment, "host", None) or getattr(options, "host", None)
        if host:
            facts.append(f"target {host}")
        users = getattr(options, "num_users", None)
        if users:
            facts.append(f"{users} users at {getattr(options, 'spawn_rate', '?')}/s")
        if getattr(options, "run_time", None):
            facts.append(f"for {options.run_time} s")
        return ", ".join(facts)

    def _gauges_forever(self) -> None:
        while True:
            self.send_gauges()
            gevent.sleep(self.gauge_interval)

    def send_gauges(self) -> None:
        runner = getattr(self.environment, "runner", None)
        if runner is None:
            return
        total = runner.stats.total
        try:
            self.transport.gauge(USERS, runner.user_count, self.run_tags)
            self.transport.gauge(RPS, round(total.current_rps, 3), self.run_tags)
            self.transport.gauge(FAILURE_RATIO, round(total.fail_ratio, 6), self.run_tags)
        except (OSError, ValueError) as error:
            log.warning("Datadog reporter: could not send the run gauges (%s)", error)

    def on_test_stop(self, environment=None, **_kwargs) -> None:
        if not self._is_worker():
            self._stop_gauges()
            self.send_gauges()
        self._flush()

    def _stop_gauges(self) -> None:
        if self._gauge_loop is not None:
            self._gauge_loop.kill(block=False)
            self._gauge_loop = None

    def on_quit(self, exit_code: int = 0, **_kwargs) -> None:
        """Locust has quit: the statistics are final. Send the stop event, then flush and close."""
        try:
            if not self._is_worker() and not self._stop_sent:
                self._stop_gauges()
                self._stop_sent = True
                self.send_gauges()
                title, text, alert_type, extra = self._stop_summary()
                self._event("stop", title, text, alert_type, extra)
        finally:
            self.close()

    def _stop_summary(self) -> tuple[str, str, str, tuple]:
        runner = self.environment.runner
        total = runner.stats.total
        count, failures = total.num_requests, total.num_failures
        duration = max((total.last_request_timestamp or total.start_time) - total.start_time, 0)
        p50 = total.get_response_time_percentile(0.5) if count else 0
        p95 = total.get_response_time_percentile(0.95) if count else 0
        text = (
            f"run {self.run_id}: {count} requests, {failures} failures ({total.fail_ratio:.2%}),"
            f" {total.total_rps:.1f} requests/s, p50 {p50:.0f} ms, p95 {p95:.0f} ms, {duration:.0f} s"
        )
        verdict = getattr(self.environment, "kit_verdict", None)
        extra: tuple = ()
        title = f"Load test finished: {self.scenario}"
        alert_type = "warning" if failures else "success"
        if isinstance(verdict, dict):
            passed = bool(verdict.get("passed"))
            title += " (passed)" if passed else " (FAILED)"
            alert_type = "success" if passed else "error"
            extra = ("verdict:passed" if passed else "verdict:failed",)
            if verdict.get("text"):
                text += "\n" + str(verdict["text"])
        return title, text, alert_type, extra

    def _event(self, phase: str, title: str, text: str, alert_type: str, extra: tuple = ()) -> None:
        if len(text) > MAX_EVENT_TEXT:
            text = text[: MAX_EVENT_TEXT - 20] + "\n... (cut)"
        tags = (*self.run_tags, f"phase:{phase}", *extra)
        try:
            self.transport.event(title[:100], text, alert_type, tags, tag_value(self.run_id))
        except (OSError, ValueError) as error:
            log.warning("Datadog reporter: could not send the %s event (%s)", phase, error)

    # ---------------------------------------------------------------- the end
    def _flush(self) -> None:
        self.flush_requests()
        try:
            self.transport.flush()
        except OSError as error:
            log.warning("Datadog reporter: flush failed (%s)", error)

    def close(self) -> None:
        """Flush everything and close the connection. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stop_gauges()
        if self._request_loop is not None:
            self._request_loop.kill(block=False)
        self.flush_requests()
        try:
            self.transport.close()
        except OSError as error:
            log.warning("Datadog reporter: closing failed (%s)", error)
