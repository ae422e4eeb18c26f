"""Benchmark: Redis PUBLISH through the kit's Locust user vs a plain redis-py loop, and end-to-end latency.

    python bench/bench_redis.py            (about 25 seconds)

1. Throughput, side by side in ONE process against one private redis-server:
   a plain ``client.publish()`` loop, and one RedisPubSubUser (the kit's client:
   JSON message with publisher/seq/sent_at, perf_counter timing, one Locust
   request event per PUBLISH, Locust's statistics) run by Locust's own local
   runner with no think time. Rounds alternate (plain, kit, plain, kit, ...) so
   both see the same machine load; the best round of each is compared.
   The goal is a ratio of at least 0.5.
2. End-to-end latency at light load: 200 messages/s from a publisher to one
   subscriber; p50 and p99 of the RECEIVE times (publish -> arrival), from the
   raw float samples (Locust's own table rounds to whole milliseconds).
"""

from locust import constant, task
from locust.env import Environment

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import gevent
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ratio_line
from utils import redis_pubsub as rp

ROUNDS = 3
ROUND_SECONDS = 3.0
WARMUP_SECONDS = 0.5
LATENCY_SECONDS = 4.0
LATENCY_RATE = 200  # messages per second
DATA = "x" * 200


def start_redis() -> tuple[subprocess.Popen, str]:
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return process, f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("redis-server did not start")


def plain_loop(url: str, seconds: float) -> float:
    """Messages/s of a bare redis-py publish loop (same payload size as the kit's message)."""
    client = redis.Redis.from_url(url)
    body = rp.encode_message("plain-loop-publisher", 1, DATA)
    client.publish("bench", body)  # connect outside the measured window
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        client.publish("bench", body)
        count += 1
    elapsed = time.perf_counter() - started
    client.close()
    return count / elapsed


def locust_user(url: str, seconds: float) -> float:
    """Messages/s of one kit RedisPubSubUser run by Locust's local runner, no think time."""

    class BenchPublisher(rp.RedisPubSubUser):
        redis_url = url
        wait_time = constant(0)
        min_receivers = 0  # nobody listens in this part

        @task
        def publish_one(self):
            self.publish("bench", DATA)

    environment = Environment(user_classes=[BenchPublisher])
    runner = environment.create_local_runner()
    runner.start(1, spawn_rate=1)
    gevent.sleep(WARMUP_SECONDS)
    entry = environment.stats.get("bench", "PUBLISH")
    first, started = entry.num_requests, time.perf_counter()
    gevent.sleep(seconds)
    count, elapsed = entry.num_requests - first, time.perf_counter() - started
    failures = entry.num_failures
    runner.quit()
    if failures:
        raise SystemExit(f"the kit's PUBLISH failed {failures} times: {environment.stats.errors}")
    return count / elapsed


def latency(url: str) -> tuple[float, float, int, int]:
    """(p50 ms, p99 ms, messages received, lost) at LATENCY_RATE messages/s, one subscriber."""
    environment = Environment()
    samples: list[float] = []
    lost = []

    def on_request(request_type, response_time, **_kwargs):
        if request_type == "RECEIVE":
            samples.append(response_time)
        elif request_type == "LOST":
            lost.append(1)

    environment.events.request.add_listener(on_request)
    ledger = rp.PubSubLedger()
    subscriber = rp.RedisSubscriber(
        lambda: rp.connect(url), environment.events.request, channels=["latency"], ledger=ledger
    )
    subscriber.start()
    publisher = rp.RedisPublisher(rp.connect(url), environment.events.request, ledger=ledger)
    interval = 1.0 / LATENCY_RATE
    deadline = time.perf_counter() + LATENCY_SECONDS
    next_at = time.perf_counter()
    while time.perf_counter() < deadline:
        publisher.publish("latency", DATA)
        next_at += interval
        gevent.sleep(max(0.0, next_at - time.perf_counter()))
    subscriber.stop(grace=2)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return p50, p99, len(samples), len(lost)


def main() -> int:
    process, url = start_redis()
    try:
        plain, kit = [], []
        for round_number in range(1, ROUNDS + 1):
            plain.append(plain_loop(url, ROUND_SECONDS))
            kit.append(locust_user(url, ROUND_SECONDS))
            print(f"round {round_number}: plain redis-py {plain[-1]:8.0f} msg/s   kit Locust user {kit[-1]:8.0f} msg/s")
        print(f"best plain redis-py publish loop: {max(plain):.0f} messages/s")
        print(f"best kit Locust user (PUBLISH):   {max(kit):.0f} messages/s")
        print(ratio_line("ratio kit / plain (goal >= 0.5)", max(kit), max(plain)))
        print(ratio_line("ratio of the medians of the rounds", statistics.median(kit), statistics.median(plain)))
        p50, p99, received, lost = latency(url)
        print(
            f"end-to-end latency at {LATENCY_RATE} msg/s, 1 subscriber: p50 {p50:.3f} ms, p99 {p99:.3f} ms "
            f"({received} received, {lost} lost)"
        )
        return 0 if max(kit) / max(plain) >= 0.5 else 1
    finally:
        process.kill()
        process.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
