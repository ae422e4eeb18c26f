"""utils/redis_pubsub.py in this process, against real redis-servers.

Each test listens to Locust request events of a bare Environment and counts the
rows: PUBLISH, RECEIVE, LOST, DUPLICATE, OUT_OF_ORDER, MALFORMED, SUBSCRIBE.
"""

from __future__ import annotations

from locust.env import Environment

import json
import time
import uuid
from collections import Counter

import gevent
import pytest
import redis

from selftests.conftest import free_port
from selftests.redis_fixtures import RedisServer, started_redis
from utils import redis_pubsub as rp

PASSWORD = "s3cret-pw-for-tests"


@pytest.fixture
def server():
    yield from started_redis()


@pytest.fixture
def auth_server():
    yield from started_redis(PASSWORD)


class Recorder:
    """Collects every request event of an Environment."""

    def __init__(self) -> None:
        self.environment = Environment()
        self.events: list[dict] = []
        self.environment.events.request.add_listener(lambda **kw: self.events.append(kw))
        self.ledger = rp.PubSubLedger()

    @property
    def hook(self):
        return self.environment.events.request

    def rows(self, kind: str, failed: bool | None = None) -> list[dict]:
        return [
            e
            for e in self.events
            if e["request_type"] == kind and (failed is None or (e["exception"] is not None) == failed)
        ]

    def count(self, kind: str, failed: bool | None = None) -> int:
        return len(self.rows(kind, failed))

    def publisher(self, url: str, **kwargs) -> rp.RedisPublisher:
        return rp.RedisPublisher(rp.connect(url), self.hook, ledger=self.ledger, **kwargs)

    def subscriber(self, url: str, socket_timeout: float = 5.0, **kwargs) -> rp.RedisSubscriber:
        kwargs.setdefault("backoff", (0.05, 0.4))
        return rp.RedisSubscriber(
            lambda: rp.connect(url, socket_timeout=socket_timeout), self.hook, ledger=self.ledger, **kwargs
        )


def channel() -> str:
    return f"test:{uuid.uuid4().hex[:8]}"


def test_fan_out_every_message_reaches_every_subscriber(server):
    rec = Recorder()
    name = channel()
    subscribers = [rec.subscriber(server.url, channels=[name]) for _ in range(3)]
    subscribers.append(rec.subscriber(server.url, patterns=["test:*"]))
    assert all(s.start() for s in subscribers)
    publisher = rec.publisher(server.url)
    receivers = [publisher.publish(name, {"n": n}) for n in range(50)]
    for subscriber in subscribers:
        subscriber.stop(grace=3)

    assert receivers == [4] * 50
    assert rec.count("PUBLISH") == 50 and rec.count("PUBLISH", failed=True) == 0
    assert {e["context"]["receivers"] for e in rec.rows("PUBLISH")} == {4}
    assert rec.count("RECEIVE", failed=False) == 200
    # Channel subscribers report under the channel's name, the pattern under the pattern.
    names = Counter(e["name"] for e in rec.rows("RECEIVE"))
    assert names == {name: 150, "test:*": 50}
    assert all(e["response_time"] >= 0 and e["response_length"] > 0 for e in rec.rows("RECEIVE"))
    assert rec.count("SUBSCRIBE", failed=False) == 4
    assert rec.ledger.published == 50 and rec.ledger.receivers == 200 and rec.ledger.received == 200
    assert rec.ledger.lost == rec.ledger.duplicates == rec.ledger.out_of_order == 0
    assert rec.count("LOST") == 0


def test_nobody_listening_is_a_publish_failure(server):
    rec = Recorder()
    publisher = rec.publisher(server.url)
    assert publisher.publish(channel(), "anyone?") is None
    failure = rec.rows("PUBLISH", failed=True)
    assert len(failure) == 1 and isinstance(failure[0]["exception"], rp.TooFewReceivers)
    assert "0 receivers" in str(failure[0]["exception"])
    # Nobody is expected: 0 receivers is fine.
    assert publisher.publish(channel(), "broadcast", min_receivers=0) == 0
    assert rec.count("PUBLISH", failed=False) == 1


def test_gaps_are_lost_during_the_run_and_at_the_end(server):
    rec = Recorder()
    name = channel()
    subscriber = rec.subscriber(server.url, channels=[name], reorder_window=0.2)
    subscriber.start()
    publisher = rec.publisher(server.url)
    publisher.publish(name, "1")
    publisher.seq[name] += 3  # three messages "lost on the way": never sent
    publisher.publish(name, "5")
    # Found during the run, once the reorder window has passed.
    deadline = time.monotonic() + 5
    while rec.count("LOST") < 3 and time.monotonic() < deadline:
        gevent.sleep(0.05)
    assert rec.count("LOST", failed=True) == 3
    assert {e["name"] for e in rec.rows("LOST")} == {name}
    # Two more published in this process but never received: lost at the tail, found at the end.
    rec.ledger.last_seq[(publisher.publisher_id, name)] = publisher.seq[name] + 2
    subscriber.stop(grace=0.5)
    assert rec.count("LOST", failed=True) == 5
    assert rec.ledger.lost == 5 and rec.ledger.received == 2


def _raw_publish(url: str, name: str, seqs: list[int], publisher: str = "hand") -> None:
    client = redis.Redis.from_url(url)
    for seq in seqs:
        client.publish(name, json.dumps({"publisher": publisher, "seq": seq, "sent_at": time.time()}))
    client.close()


def test_duplicates_and_out_of_order(server):
    rec = Recorder()
    name = channel()
    subscriber = rec.subscriber(server.url, channels=[name], reorder_window=2.0)
    subscriber.start()
    _raw_publish(server.url, name, [1, 2, 2, 4, 3, 5, 5])
    subscriber.stop(grace=2)
    assert rec.count("DUPLICATE", failed=True) == 2
    assert rec.count("OUT_OF_ORDER", failed=True) == 1
    assert rec.count("LOST") == 0
    # Every distinct message is received once; duplicates are not.
    assert rec.count("RECEIVE", failed=False) == 5


def test_malformed_messages_are_counted_and_do_not_stop_listening(server):
    rec = Recorder()
    name = channel()
    subscriber = rec.subscriber(server.url, channels=[name])
    subscriber.start()
    client = redis.Redis.from_url(server.url)
    client.publish(name, b"\xff\xfe not json")
    client.publish(name, json.dumps({"text": "from another app"}))
    client.close()
    _raw_publish(server.url, name, [1, 2])
    subscriber.stop(grace=2)
    malformed = rec.rows("MALFORMED", failed=True)
    assert [str(e["exception"]) for e in malformed] == [str(rp.NOT_JSON), str(rp.NO_FIELDS)]
    assert rec.count("RECEIVE", failed=False) == 2
    assert rec.ledger.malformed == 2

    # strict=False: foreign messages are only counted, not failures.
    rec2 = Recorder()
    lenient = rec2.subscriber(server.url, channels=[name], strict=False)
    lenient.start()
    redis.Redis.from_url(server.url).publish(name, "plain text")
    lenient.stop(grace=1)
    assert rec2.count("MALFORMED") == 0 and rec2.ledger.malformed == 1


def test_idle_channel_longer_than_the_socket_timeout(server):
    rec = Recorder()
    name = channel()
    subscriber = rec.subscriber(server.url, socket_timeout=0.3, channels=[name])
    subscriber.start()
    gevent.sleep(1.5)  # five socket timeouts without a single message
    publisher = rec.publisher(server.url)
    assert publisher.publish(name, "still there?") == 1
    subscriber.stop(grace=2)
    assert subscriber.drops == 0
    assert rec.count("SUBSCRIBE", failed=True) == 0
    assert rec.count("RECEIVE", failed=False) == 1


def test_oversized_message_is_refused_and_a_large_one_arrives(server):
    rec = Recorder()
    name = channel()
    subscriber = rec.subscriber(server.url, channels=[name])
    subscriber.start()
    publisher = rec.publisher(server.url, max_message_bytes=1000)
    assert publisher.publish(name, "x" * 2000) is None
    failure = rec.rows("PUBLISH", failed=True)
    assert len(failure) == 1 and isinstance(failure[0]["exception"], rp.MessageTooLarge)
    assert failure[0]["response_length"] > 2000
    # Refused before sending: no sequence number used, so nothing is lost later.
    publisher.publish(name, "small")
    big = rec.publisher(server.url, max_message_bytes=4 * 1024 * 1024)
    assert big.publish(name, "y" * (2 * 1024 * 1024)) == 1
    subscriber.stop(grace=3)
    sizes = sorted(e["response_length"] for e in rec.rows("RECEIVE"))
    assert len(sizes) == 2 and sizes[-1] > 2 * 1024 * 1024
    assert rec.count("LOST") == 0


def test_stop_ends_the_listener_on_an_idle_channel(server):
    rec = Recorder()
    subscriber = rec.subscriber(server.url, channels=[channel()])
    subscriber.start()
    greenlet = subscriber._greenlet
    subscriber.stop(grace=5)
    assert greenlet.dead and not subscriber.subscribed
    subscriber.stop()  # a second stop is harmless


def test_redis_down_at_start_is_counted_and_retried():
    rec = Recorder()
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert "ConnectionError" in rp.check_redis(url, timeout=0.5)
    subscriber = rec.subscriber(url, channels=[channel()], backoff=(0.05, 0.1))
    assert subscriber.start() is False
    gevent.sleep(0.5)
    subscriber.stop(grace=0)
    failures = rec.rows("SUBSCRIBE", failed=True)
    assert len(failures) >= 3  # the first try and the retries
    assert all(isinstance(e["exception"], redis.ConnectionError) for e in failures)
    publisher = rec.publisher(url)
    assert publisher.publish("x", "y") is None
    assert isinstance(rec.rows("PUBLISH", failed=True)[0]["exception"], redis.ConnectionError)


def test_wrong_password_is_counted_and_never_shown(auth_server):
    rec = Recorder()
    wrong = f"redis://:not-{PASSWORD}@127.0.0.1:{auth_server.port}/0"
    subscriber = rec.subscriber(wrong, channels=[channel()])
    assert subscriber.start() is False
    subscriber.stop(grace=0)
    rec.publisher(wrong).publish("x", "y")
    failures = rec.rows("SUBSCRIBE", failed=True) + rec.rows("PUBLISH", failed=True)
    assert failures and all(isinstance(e["exception"], redis.AuthenticationError) for e in failures)
    assert all(PASSWORD not in str(e["exception"]) for e in failures)
    assert PASSWORD not in (rp.check_redis(wrong) or "")


def test_url_password_and_database_are_used(auth_server):
    rec = Recorder()
    url = f"redis://:{PASSWORD}@127.0.0.1:{auth_server.port}/3"
    client = rp.connect(url)
    assert client.connection_pool.connection_kwargs["db"] == 3
    client.set("kit-db-check", "1")
    assert redis.Redis(port=auth_server.port, password=PASSWORD, db=3).get("kit-db-check") == b"1"
    name = channel()
    subscriber = rec.subscriber(url, channels=[name])
    assert subscriber.start()
    assert rec.publisher(url).publish(name, "hi") == 1
    subscriber.stop(grace=2)
    assert rec.count("RECEIVE", failed=False) == 1
    # rediss:// means TLS.
    tls = rp.connect("rediss://:pw@redis.example.com:6380/1")
    assert tls.connection_pool.connection_class.__name__ == "SSLConnection"


def test_restart_during_a_run_reconnects_and_counts_the_gap_as_lost():
    server = RedisServer().start()
    try:
        rec = Recorder()
        name = channel()
        subscriber = rec.subscriber(server.url, socket_timeout=1.0, channels=[name], backoff=(0.05, 0.3))
        assert subscriber.start()
        publisher = rec.publisher(server.url)
        running = True

        def publish_loop():
            while running:
                publisher.publish(name, "tick")
                gevent.sleep(0.02)

        loop = gevent.spawn(publish_loop)
        gevent.sleep(0.5)
        server.kill()
        gevent.sleep(1.0)  # the outage: every PUBLISH fails
        server.start()  # same port
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (subscriber.resubscribes and rec.count("PUBLISH", False) > 60):
            gevent.sleep(0.05)
        gevent.sleep(0.3)  # a few delivered messages after the gap
        running = False
        loop.join(timeout=5)
        subscriber.stop(grace=3)
    finally:
        server.kill()

    assert subscriber.drops == 1 and subscriber.resubscribes == 1
    assert rec.count("SUBSCRIBE", failed=True) >= 2  # the drop and at least one refused reconnection
    assert rec.count("SUBSCRIBE", failed=False) == 2  # the first subscription and its restoration
    publish_failures = rec.count("PUBLISH", failed=True)
    assert publish_failures > 0
    # Every message published during the outage (refused, or with nobody subscribed
    # yet) is missing at the subscriber: lost == those failed publishes, exactly.
    assert rec.count("LOST", failed=True) == publish_failures == rec.ledger.lost
    assert rec.count("RECEIVE", failed=False) == rec.count("PUBLISH", failed=False)
    assert rec.count("DUPLICATE") == rec.count("OUT_OF_ORDER") == 0


def test_stats_names_are_bounded():
    names = rp._Names()
    given = [names(f"room-{n}") for n in range(rp.MAX_NAMES + 10)]
    assert given[: rp.MAX_NAMES] == [f"room-{n}" for n in range(rp.MAX_NAMES)]
    assert set(given[rp.MAX_NAMES :]) == {rp.OTHER_CHANNELS}
    assert names("room-3") == "room-3"  # a known channel keeps its name
