"""A real local HTTP server standing in for a webhook or API intake (Slack, Datadog).

It records every request (path, headers, JSON body) and answers with the status
the test chooses, or hangs for a while, like a slow intake.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body or b"null")


@dataclass
class Intake:
    status: int = 200
    reply: bytes = b"ok"
    hang_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Intake:
        intake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                intake.received.append(Received(self.command, self.path, dict(self.headers), body))
                if intake.hang_seconds:
                    time.sleep(intake.hang_seconds)
                self.send_response(intake.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(intake.reply)))
                self.end_headers()
                self.wfile.write(intake.reply)

            do_POST = do_PUT = do_GET = _handle

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
