"""Fault knobs of the demo target: make it slow or make it fail, on purpose.

Use them to practise reading results, and to check that thresholds catch a bad
build. Set them when the target starts (flags or DEMO_* variables), or change
them while it runs with a POST to /__faults, for example::

    curl -X POST http://127.0.0.1:8080/__faults \\
         -H 'Content-Type: application/json' \\
         -d '{"latency_ms": 200, "error_ratio": 0.1}'

Knobs:
    latency_ms     milliseconds added to every answer (0 = off)
    error_ratio    share of requests answered with error_status (0.0 to 1.0)
    error_status   the HTTP status of an injected error (default 500)
    fail_endpoint  a path prefix that always fails, e.g. "/api/cart" ("" = none)
    error_body     the body of an injected error: "json" ({"error": ...}, the default),
                   "graphql" ({"errors": [...], "data": null}), "html" (a proxy's error
                   page) or "text" (plain text); with error_status 200 it answers a
                   success status with that body (a login page in front of the API)

The admin paths (/__faults, /__stats) are never slowed down or failed.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import asdict, dataclass
from http import HTTPStatus


class FaultError(ValueError):
    """A knob got a value it cannot take."""


@dataclass
class Faults:
    latency_ms: float = 0.0
    error_ratio: float = 0.0
    error_status: int = 500
    fail_endpoint: str = ""
    error_body: str = "json"

    def update(self, values: dict) -> None:
        """Check every value first, then apply them all (nothing half-applied)."""
        checked = {}
        for key, value in values.items():
            if key == "latency_ms":
                checked[key] = _number(key, value, 0, 600_000)
            elif key == "error_ratio":
                checked[key] = _number(key, value, 0, 1)
            elif key == "error_status":
                status = int(_number(key, value, 200, 599))
                checked[key] = status
            elif key == "fail_endpoint":
                if not isinstance(value, str) or (value and not value.startswith("/")):
                    raise FaultError(f"fail_endpoint={value!r}: a path starting with / (or empty) is needed")
                checked[key] = value
            elif key == "error_body":
                if value not in ERROR_BODIES:
                    raise FaultError(f"error_body={value!r}: one of {', '.join(ERROR_BODIES)} is needed")
                checked[key] = value
            else:
                raise FaultError(
                    f"unknown knob {key!r}: use latency_ms, error_ratio, error_status, fail_endpoint, error_body"
                )
        for key, value in checked.items():
            setattr(self, key, value)

    def as_dict(self) -> dict:
        return asdict(self)


def _number(key: str, value, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not low <= number <= high:
        raise FaultError(f"{key}={value!r}: a number from {low:g} to {high:g} is needed")
    return number


class FaultCounter:
    """Counts requests and injected errors, so tests can compare with Locust's figures."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[str, int] = {}
        self.injected: dict[str, int] = {}
        self.marked = 0  # requests that carried the kit's X-Load-Test header

    def count(self, key: str, injected: bool, marked: bool = False) -> None:
        with self._lock:
            self.requests[key] = self.requests.get(key, 0) + 1
            if injected:
                self.injected[key] = self.injected.get(key, 0) + 1
            self.marked += marked

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.injected.clear()
            self.marked = 0

    def as_dict(self) -> dict:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "injected_errors": dict(self.injected),
                "marked_as_load_test": self.marked,
            }


ERROR_BODIES = ("json", "graphql", "html", "text")


def injected_answer(faults: Faults, route: str) -> tuple[int, list, bytes]:
    """(status, headers, body) of an injected error, shaped by faults.error_body."""
    status, message = faults.error_status, f"injected fault ({route})"
    if faults.error_body == "html":
        try:
            title = f"{status} {HTTPStatus(status).phrase}"
        except ValueError:
            title = str(status)
        page = f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        page += "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        return status, [("Content-Type", "text/html")], page.encode()
    if faults.error_body == "text":
        return status, [("Content-Type", "text/plain")], message.encode()
    if faults.error_body == "graphql":
        payload = {"errors": [{"message": message, "extensions": {"code": "INJECTED_FAULT"}}], "data": None}
    else:
        payload = {"error": message}
    return status, [("Content-Type", "application/json")], json.dumps(payload, separators=(",", ":")).encode()


def should_fail(faults: Faults, path: str, rng: random.Random = random._inst) -> bool:
    """True when this request must be answered with faults.error_status."""
    if faults.fail_endpoint and path.startswith(faults.fail_endpoint):
        return True
    return faults.error_ratio > 0 and rng.random() < faults.error_ratio
