"""Chat messages published to Redis by the demo target (app -> Redis -> subscribers).

The demo only publishes when it was started with a Redis URL
(``python -m demo --redis-url redis://127.0.0.1:6379/0``); then ``POST /api/chat``
and the GraphQL mutation ``postMessage`` publish one message per call.

The message (JSON) carries what a subscriber needs to measure the path end to end:

    {
      "publisher": "demo-<process id>-<random>",   this app instance
      "seq": 17,                                   1, 2, 3 ... per publisher AND channel: a gap = a lost message
      "sent_at": 1764770000.123,                   Unix time in seconds, when it was published
      "channel": "chat:room-1", "user": "demo", "text": "hello"
    }

The kit's subscribers (utils/redis_pubsub.py) read ``publisher``, ``seq`` and
``sent_at``; a real app can add the same three fields to its own messages.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid

import redis

CHANNEL_RE = re.compile(r"^[A-Za-z0-9:_.\-]{1,100}$")
MAX_TEXT = 10_000


class ChatError(Exception):
    """A chat message that could not be published; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RedisPublisher:
    """Publishes one JSON message per chat post and returns how many subscribers got it."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.publisher_id = f"demo-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.seq: dict[str, int] = {}
        # One message at a time: sequence numbers then reach Redis in order, so a
        # subscriber can tell a lost message from a late one.
        self._lock = threading.Lock()

    def __call__(self, channel: str, text: str, user: str) -> int:
        return self.publish(channel, text, user)["receivers"]

    def publish(self, channel: str, text: str, user: str) -> dict:
        """Publish; {"receivers", "seq", "channel"}. Raises ChatError on bad input or Redis trouble."""
        if not isinstance(channel, str) or not CHANNEL_RE.match(channel):
            raise ChatError(400, "channel must be 1 to 100 letters, digits or : _ . -")
        if not isinstance(text, str) or not text or len(text) > MAX_TEXT:
            raise ChatError(400, f"text must be 1 to {MAX_TEXT} characters")
        with self._lock:
            seq = self.seq.get(channel, 0) + 1
            self.seq[channel] = seq
            message = {
                "publisher": self.publisher_id,
                "seq": seq,
                "sent_at": time.time(),
                "channel": channel,
                "user": user,
                "text": text,
            }
            try:
                receivers = int(self.client.publish(channel, json.dumps(message, separators=(",", ":"))))
            except redis.RedisError as error:
                raise ChatError(503, f"Redis is unavailable: {type(error).__name__}") from None
        return {"channel": channel, "seq": seq, "receivers": receivers}
