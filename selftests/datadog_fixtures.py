"""Stand-ins for Datadog that speak its real wire formats: a DogStatsD UDP socket and an HTTP intake.

DogStatsD datagram format (one or more lines separated by newlines):
    metric.name:value[:value...]|type[|@rate][|#tag,tag][|c:container][|T timestamp]
    _e{title_length,text_length}:title|text[|d:date][|h:host][|k:key][|p:priority][|s:source][|t:alert][|#tags]
"""

from __future__ import annotations

import gzip
import json
import re
import socket
from collections import Counter
from dataclasses import dataclass, field

import gevent
from gevent.pywsgi import WSGIServer

METRIC_TYPES = {"c", "g", "d", "h", "ms", "s"}
_METRIC_RE = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_.]*):(?P<values>[^|]+)\|(?P<type>[a-z]+)(?P<rest>(\|.*)?)$")
_TAG_RE = re.compile(r"^[\w\-:./]+$", re.UNICODE)


@dataclass
class Metric:
    name: str
    values: list[float]
    type: str
    rate: float
    tags: list[str]

    def tag(self, key: str) -> str | None:
        for item in self.tags:
            if item.startswith(key + ":"):
                return item[len(key) + 1 :]
        return None


@dataclass
class Event:
    title: str
    text: str
    fields: dict
    tags: list[str]

    def tag(self, key: str) -> str | None:
        for item in self.tags:
            if item.startswith(key + ":"):
                return item[len(key) + 1 :]
        return None


def _parse_tags(text: str) -> list[str]:
    tags = text.split(",")
    for item in tags:
        assert item and _TAG_RE.match(item), f"tag {item!r} has characters DogStatsD cannot carry"
        assert len(item) <= 200, f"tag longer than 200 characters: {item!r}"
    return tags


def parse_line(line: str) -> Metric | Event:
    """One DogStatsD line -> Metric or Event; AssertionError when the line breaks the format."""
    if line.startswith("_e{"):
        head, _, body = line.partition("}:")
        title_length, text_length = (int(n) for n in head[3:].split(","))
        raw = body.encode()
        title = raw[:title_length].decode()
        assert raw[title_length : title_length + 1] == b"|", f"bad event title length: {line!r}"
        text = raw[title_length + 1 : title_length + 1 + text_length].decode()
        rest = raw[title_length + 1 + text_length :].decode()
        fields: dict = {}
        tags: list[str] = []
        for part in rest.split("|")[1:] if rest else []:
            if part.startswith("#"):
                tags = _parse_tags(part[1:])
            else:
                key, _, value = part.partition(":")
                assert key in {"d", "h", "k", "p", "s", "t", "c", "card"}, f"unknown event field {part!r}"
                fields[key] = value
        assert not rest or rest.startswith("|"), f"event text length is wrong: {line!r}"
        return Event(title, text, fields, tags)
    match = _METRIC_RE.match(line)
    assert match, f"not a DogStatsD metric line: {line!r}"
    assert match["type"] in METRIC_TYPES, f"unknown metric type in {line!r}"
    values = [float(v) for v in match["values"].split(":")]
    rate, tags = 1.0, []
    for part in match["rest"].split("|")[1:]:
        if part.startswith("@"):
            rate = float(part[1:])
        elif part.startswith("#"):
            tags = _parse_tags(part[1:])
        else:
            assert part[:1] in {"c", "T", "e"}, f"unknown metric field {part!r} in {line!r}"
    return Metric(match["name"], values, match["type"], rate, tags)


@dataclass
class Received:
    datagrams: list[bytes] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def kit_metrics(self, name: str) -> list[Metric]:
        return [m for m in self.metrics if m.name == name]

    def counts_by(self, name: str, *keys: str) -> Counter:
        """Sum of a count metric's values, by the values of the tags KEYS."""
        totals: Counter = Counter()
        for metric in self.kit_metrics(name):
            assert metric.type == "c" and metric.rate == 1.0, metric
            totals[tuple(metric.tag(k) for k in keys)] += sum(metric.values)
        return totals


class DogStatsdSink:
    """A real UDP socket on 127.0.0.1 that keeps every datagram and parses them on demand."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:  # room for bursts while the test process is busy (root may exceed rmem_max)
            self.sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 32 * 1024 * 1024)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self._reader = gevent.spawn(self._read)

    def _read(self) -> None:
        while True:
            self.datagrams.append(self.sock.recv(65535))

    def stop(self) -> Received:
        """Drain what is left, close, and parse everything."""
        gevent.sleep(0.2)
        self._reader.kill()
        self.sock.setblocking(False)
        while True:
            try:
                self.datagrams.append(self.sock.recv(65535))
            except BlockingIOError:
                break
        self.sock.close()
        return parse_datagrams(self.datagrams)


def parse_datagrams(datagrams: list[bytes]) -> Received:
    received = Received(datagrams=list(datagrams))
    for datagram in datagrams:
        for line in datagram.decode().split("\n"):
            if not line:
                continue
            item = parse_line(line)
            if isinstance(item, Event):
                received.events.append(item)
            elif not item.name.startswith("datadog.dogstatsd.client."):  # the client's own telemetry
                received.metrics.append(item)
    return received


@dataclass
class IntakeRequest:
    method: str
    path: str
    headers: dict
    body: object


class ApiIntake:
    """A local HTTP server in place of Datadog's API intake (series, distribution points, events).

    ``status`` is what it answers (202 like Datadog; 403 to act as a bad key).
    """

    def __init__(self, status: int = 202) -> None:
        self.status = status
        self.requests: list[IntakeRequest] = []
        self.server = WSGIServer(("127.0.0.1", 0), self._app, log=None, error_log=None)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def _app(self, environ, start_response):
        raw = environ["wsgi.input"].read()
        if environ.get("HTTP_CONTENT_ENCODING") == "gzip":
            raw = gzip.decompress(raw)
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        self.requests.append(IntakeRequest(environ["REQUEST_METHOD"], environ["PATH_INFO"], headers, json.loads(raw)))
        if self.status == 403:
            start_response("403 Forbidden", [("Content-Type", "application/json")])
            return [b'{"errors":["Forbidden"]}']
        start_response(f"{self.status} Accepted", [("Content-Type", "application/json")])
        return [b'{"errors":[]}']

    def stop(self) -> None:
        self.server.stop(timeout=1)

    def on(self, path: str) -> list[IntakeRequest]:
        return [r for r in self.requests if r.path == path]

    def series(self) -> list[dict]:
        return [s for r in self.on("/api/v2/series") for s in r.body["series"]]

    def distributions(self) -> list[dict]:
        return [s for r in self.on("/api/v1/distribution_points") for s in r.body["series"]]

    def events(self) -> list[dict]:
        return [r.body for r in self.on("/api/v1/events")]

    def counts_by(self, metric: str, *keys: str) -> Counter:
        totals: Counter = Counter()
        for series in self.series():
            if series["metric"] == metric:
                tags = dict(t.split(":", 1) for t in series["tags"])
                totals[tuple(tags.get(k) for k in keys)] += sum(p["value"] for p in series["points"])
        return totals
