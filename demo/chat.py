"""Chat messages published to Redis by the demo target (app -> Redis -> subscribers).

The demo only publishes when it was started with a Redis URL
(``python -m demo --redis-url redis://127.0.0.1:6379/0``).
"""

from __future__ import annotations

import json
import time

import redis


class RedisPublisher:
    """Publishes one JSON message per chat post and returns how many subscribers got it."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def __call__(self, channel: str, text: str, user: str) -> int:
        message = {"channel": channel, "text": text, "user": user, "published_at": time.time()}
        return int(self.client.publish(channel, json.dumps(message, separators=(",", ":"))))
