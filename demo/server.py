"""Serve the demo target with gevent: ``python -m demo --port 8080``.

Options (each also from an environment variable, in brackets):
    --host 127.0.0.1        address to listen on (DEMO_BIND)
    --port 8080             port; 0 picks a free one (DEMO_PORT)
    --latency-ms 0          fault: milliseconds added to every answer (DEMO_LATENCY_MS)
    --error-ratio 0         fault: share of requests that fail, 0.0 to 1.0 (DEMO_ERROR_RATIO)
    --error-status 500      fault: HTTP status of a failed request (DEMO_ERROR_STATUS)
    --fail-endpoint PATH    fault: a path prefix that always fails (DEMO_FAIL_ENDPOINT)

When it listens it prints one line, ``DEMO_READY http://127.0.0.1:PORT``, which
the helper and the test suite wait for. Ctrl+C (or SIGTERM) stops it.

Why not Flask's development server: it serves one request at a time and would be
slower than the load generator, so every figure would measure the server's
limits instead of your test. gevent serves thousands of requests per second.
"""

from gevent import monkey

monkey.patch_all()

import argparse
import os
import signal
import socket
import sys

import gevent
from gevent.pywsgi import WSGIHandler, WSGIServer

from demo.app import DEFAULT_PASSWORD, DemoApp
from demo.faults import FaultError, Faults


class QuietHandler(WSGIHandler):
    """No access log line per request: printing thousands of lines a second costs more than serving them."""

    def log_request(self) -> None:
        pass


class FastWSGIServer(WSGIServer):
    """gevent's WSGI server with TCP_NODELAY on every accepted connection.

    gevent writes the headers and the body in two writes. Without TCP_NODELAY the
    kernel holds the second write until the client acknowledges the first
    (Nagle + delayed ACK): about 40 ms per keep-alive request. With it, the
    server answers in well under a millisecond.
    """

    handler_class = QuietHandler

    def handle(self, sock, address):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not a TCP socket (a Unix socket): nothing to tune
        return super().handle(sock, address)


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m demo", description="Run the demo target app.")
    parser.add_argument("--host", default=env("DEMO_BIND", "127.0.0.1"), help="address to listen on")
    parser.add_argument("--port", type=int, default=int(env("DEMO_PORT", "8080")), help="port (0 = any free port)")
    parser.add_argument("--latency-ms", default=env("DEMO_LATENCY_MS", "0"), help="added latency per request")
    parser.add_argument("--error-ratio", default=env("DEMO_ERROR_RATIO", "0"), help="share of failed requests")
    parser.add_argument("--error-status", default=env("DEMO_ERROR_STATUS", "500"), help="status of failed requests")
    parser.add_argument("--fail-endpoint", default=env("DEMO_FAIL_ENDPOINT", ""), help="path prefix that always fails")
    parser.add_argument("--redis-url", default=env("DEMO_REDIS_URL", ""), help="Redis for the chat endpoints")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    faults = Faults()
    try:
        faults.update(
            {
                "latency_ms": args.latency_ms,
                "error_ratio": args.error_ratio,
                "error_status": args.error_status,
                "fail_endpoint": args.fail_endpoint,
            }
        )
    except FaultError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app = DemoApp(faults=faults, password=os.environ.get("DEMO_PASSWORD", DEFAULT_PASSWORD))
    if args.redis_url:
        from demo.chat import RedisPublisher

        app.publisher = RedisPublisher(args.redis_url)

    try:
        server = FastWSGIServer((args.host, args.port), app, log=None, error_log=None, backlog=1024)
        server.start()
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 2
    host, port = server.address[:2]
    print(f"DEMO_READY http://{host}:{port}", flush=True)

    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop.wait()
    server.stop(timeout=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
