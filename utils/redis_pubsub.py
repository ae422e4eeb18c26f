"""Redis Pub/Sub for Locust: publishers, subscribers and lost-message accounting.

Every operation fires exactly one Locust ``request`` event (float milliseconds,
a size, an exception or None). The rows it makes:

    PUBLISH    <channel>   round trip of PUBLISH; a failure when Redis answers with
                           fewer receivers than expected (0 where subscribers should be)
    RECEIVE    <channel>   one per message received; the time is the END-TO-END latency,
                           from the ``sent_at`` the message carries to its arrival
    SUBSCRIBE  <name>      (re)subscribing, and subscriptions dropped by a lost connection
    LOST       <channel>   one failure per message that never arrived (a gap in its
                           publisher's sequence numbers), found during the run and at its end
    DUPLICATE  <channel>   one failure per message that arrived twice
    OUT_OF_ORDER <channel> one failure per message that arrived after a later one
    MALFORMED  <channel>   one failure per message that is not in the kit's format

The message format (JSON). Three fields make a message measurable; the demo app
writes them and the team's real publisher can add them too:

    {"publisher": "<id, unique per publisher>", "seq": 1, "sent_at": 1764770000.123, ...}

``seq`` counts 1, 2, 3 ... per publisher AND channel; ``sent_at`` is Unix time in
seconds (publisher and subscriber clocks must agree: run both on one machine, or
keep the machines' clocks in sync with NTP).

A subscriber listens in its own greenlet with a short poll timeout, so an idle
channel never blocks anything and ``stop()`` always returns within about a second.
When the connection drops it reports the drop, reconnects with exponential backoff
and subscribes again; what was published meanwhile shows up as LOST.

Stats names are bounded: at most ``MAX_NAMES`` channel names per process, the
rest is reported as "other channels".
"""

from __future__ import annotations

from locust import User

import json
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

import gevent
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from utils.config import redact_url

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
MAX_NAMES = 50
OTHER_CHANNELS = "other channels"
# A gap is reported as LOST only when it is still open this long after it was seen:
# a message that is merely late (several publishing greenlets) gets a chance first.
DEFAULT_REORDER_WINDOW = 1.0


# ---------------------------------------------------------------------------
# Errors reported as failures (their text is the failure's row in Locust)
# ---------------------------------------------------------------------------


class PubSubError(Exception):
    """Base of the kit's own Pub/Sub failures."""


class TooFewReceivers(PubSubError):
    pass


class MessageTooLarge(PubSubError):
    pass


class SubscriptionDropped(PubSubError):
    pass


class LostMessage(PubSubError):
    pass


class DuplicateMessage(PubSubError):
    pass


class OutOfOrderMessage(PubSubError):
    pass


class MalformedMessage(PubSubError):
    pass


LOST = LostMessage("never arrived (gap in its publisher's sequence numbers)")
DUPLICATE = DuplicateMessage("arrived twice (same publisher and sequence number)")
OUT_OF_ORDER = OutOfOrderMessage("arrived after a later message of the same publisher")
NOT_JSON = MalformedMessage("not a kit message: the data is not JSON")
NO_FIELDS = MalformedMessage("not a kit message: no publisher, seq and sent_at fields")


# ---------------------------------------------------------------------------
# Connections and the message format
# ---------------------------------------------------------------------------


def connect(url: str, socket_timeout: float = 5.0, connect_timeout: float = 3.0) -> redis.Redis:
    """A client for URL (redis://, rediss://, password, database). Connects lazily.

    redis-py's own retries are off: the kit counts every failure and does its own
    reconnecting, so a failure shows up in the statistics instead of as a long stall.
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=max(1, int(socket_timeout * 2)),
    )


def encode_message(publisher: str, seq: int, data="") -> bytes:
    """The kit's message: publisher id, sequence number, send time, and your DATA."""
    body = {"publisher": publisher, "seq": seq, "sent_at": time.time(), "data": data}
    return json.dumps(body, separators=(",", ":")).encode()


def decode_message(raw: bytes) -> tuple[str, int, float]:
    """(publisher, seq, sent_at) of a message; raises PubSubError when it is not the kit's format."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise NOT_JSON from None
    try:
        publisher, seq, sent_at = body["publisher"], body["seq"], body["sent_at"]
    except (KeyError, TypeError):
        raise NO_FIELDS from None
    if not isinstance(publisher, str) or not isinstance(seq, int) or not isinstance(sent_at, int | float):
        raise NO_FIELDS
    return publisher, seq, float(sent_at)


def check_redis(url: str, timeout: float = 2.0) -> str | None:
    """None when Redis answers PING at URL, else a one-line reason (no password in it)."""
    client = connect(url, socket_timeout=timeout, connect_timeout=timeout)
    try:
        client.ping()
        return None
    except redis.RedisError as error:
        return f"{type(error).__name__}: {error}"
    finally:
        client.close()


# ---------------------------------------------------------------------------
# Process-wide figures: what was published, what was received
# ---------------------------------------------------------------------------


@dataclass
class PubSubLedger:
    """Counts of one process, and the last sequence number of each local publisher stream.

    Subscribers use ``last_seq`` at the end of the run to find messages lost at the
    tail (published, never received). That works for publishers in the same
    process; across Locust workers only gaps in the middle are found.
    """

    published: int = 0
    receivers: int = 0
    received: int = 0
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    malformed: int = 0
    publish_failures: int = 0
    last_seq: dict = field(default_factory=dict)

    def reset(self) -> None:
        for name in ("published", "receivers", "received", "lost", "duplicates", "out_of_order", "malformed"):
            setattr(self, name, 0)
        self.publish_failures = 0
        self.last_seq.clear()

    def add_receivers(self, receivers: int) -> None:
        """Count the receivers of a message published elsewhere (by the app under test)."""
        self.receivers += receivers

    def summary(self) -> str:
        return (
            f"published={self.published} publish_failures={self.publish_failures} receivers={self.receivers} "
            f"received={self.received} lost={self.lost} duplicates={self.duplicates} "
            f"out_of_order={self.out_of_order} malformed={self.malformed}"
        )


LEDGER = PubSubLedger()


class _Names:
    """Stats names, bounded: the first MAX_NAMES channels keep their name."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, channel: str) -> str:
        if channel in self.seen:
            return channel
        if len(self.seen) < MAX_NAMES:
            self.seen.add(channel)
            return channel
        return OTHER_CHANNELS


channel_name = _Names()


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------------------
# Publisher
# ---------------------------------------------------------------------------


class RedisPublisher:
    """Publishes kit messages and reports each PUBLISH.

    ``request_event`` is ``environment.events.request``. ``min_receivers`` is how
    many receivers a message needs to count as delivered (0 when nobody listens on
    purpose).
    """

    def __init__(
        self,
        client: redis.Redis,
        request_event,
        *,
        publisher_id: str | None = None,
        min_receivers: int = 1,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        ledger: PubSubLedger = LEDGER,
    ) -> None:
        self.client = client
        self.request_event = request_event
        self.publisher_id = publisher_id or f"kit-{uuid.uuid4().hex[:12]}"
        self.min_receivers = min_receivers
        self.max_message_bytes = max_message_bytes
        self.ledger = ledger
        self.seq: dict[str, int] = {}

    def publish(self, channel: str, data="", *, min_receivers: int | None = None, name: str | None = None):
        """PUBLISH DATA (anything JSON can hold) to CHANNEL; the receivers, or None on failure."""
        seq = self.seq.get(channel, 0) + 1
        body = encode_message(self.publisher_id, seq, data)
        name = name or channel_name(channel)
        if len(body) > self.max_message_bytes:
            # Refused before sending: no sequence number is used, so nothing counts as lost.
            error = MessageTooLarge(f"message larger than the limit of {self.max_message_bytes} bytes, not sent")
            self._fire(name, 0.0, len(body), error, None)
            return None
        self.seq[channel] = seq
        needed = self.min_receivers if min_receivers is None else min_receivers
        receivers = None
        error = None
        started = time.perf_counter()
        try:
            receivers = int(self.client.publish(channel, body))
        except redis.RedisError as exc:
            error = exc
        elapsed = (time.perf_counter() - started) * 1000
        # The sequence number is used even when PUBLISH failed: subscribers then see a
        # gap, and that message is counted as LOST for each of them.
        self.ledger.last_seq[(self.publisher_id, channel)] = seq
        if error is None and receivers < needed:
            error = TooFewReceivers(f"{receivers} receivers, expected at least {needed}")
        if error is None:
            self.ledger.published += 1
            self.ledger.receivers += receivers
        else:
            self.ledger.publish_failures += 1
        self._fire(name, elapsed, len(body), error, receivers)
        return receivers if error is None else None

    def _fire(self, name, elapsed, length, error, receivers) -> None:
        self.request_event.fire(
            request_type="PUBLISH",
            name=name,
            response_time=elapsed,
            response_length=length,
            exception=error,
            context={"receivers": receivers},
        )


# ---------------------------------------------------------------------------
# Subscriber
# ---------------------------------------------------------------------------


@dataclass
class _Stream:
    """What one subscriber saw of one (publisher, channel) stream."""

    last: int
    name: str
    missing: dict = field(default_factory=dict)  # seq -> when the gap was seen
    reported: deque = field(default_factory=lambda: deque(maxlen=10000))  # seqs already counted LOST


class RedisSubscriber:
    """Subscribes to CHANNELS and/or PATTERNS and reports every message, in its own greenlet.

    ``client_factory()`` returns a new redis.Redis (``lambda: connect(url)``): a
    fresh client is made for every reconnection. ``start()`` subscribes once and
    starts listening; it never raises on a Redis error (the failure is counted and
    the greenlet keeps trying). ``stop(grace)`` waits up to GRACE seconds for
    messages still on their way, reports what is missing, and closes.
    """

    def __init__(
        self,
        client_factory,
        request_event,
        *,
        channels=(),
        patterns=(),
        name: str | None = None,
        ledger: PubSubLedger = LEDGER,
        strict: bool = True,
        reorder_window: float = DEFAULT_REORDER_WINDOW,
        poll_timeout: float = 0.5,
        backoff: tuple[float, float] = (0.1, 2.0),
    ) -> None:
        if not channels and not patterns:
            raise ValueError("a subscriber needs at least one channel or pattern")
        self.client_factory = client_factory
        self.request_event = request_event
        self.channels = list(channels)
        self.patterns = list(patterns)
        self.name = name or ", ".join(self.channels + self.patterns)
        self.ledger = ledger
        self.strict = strict
        self.reorder_window = reorder_window
        self.poll_timeout = poll_timeout
        self.backoff_min, self.backoff_max = backoff
        self.streams: dict[tuple[str, str], _Stream] = {}
        self.drops = 0
        self.resubscribes = 0
        self._client: redis.Redis | None = None
        self._pubsub = None
        self._running = False
        self._greenlet: gevent.Greenlet | None = None
        self._last_message = 0.0

    # -- life cycle ----------------------------------------------------------
    def start(self) -> bool:
        """Subscribe and start listening. True when the subscription is active now."""
        ok = self._subscribe()
        self._running = True
        self._greenlet = gevent.spawn(self._listen)
        return ok

    def stop(self, grace: float = 2.0) -> None:
        """Wait for in-flight messages (up to GRACE s), count what never came, close. Safe twice."""
        if self._greenlet is None:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and self._running and not self._caught_up():
            gevent.sleep(0.05)
        self._running = False
        self._greenlet.join(timeout=self.poll_timeout + 1.0)
        if not self._greenlet.dead:
            self._greenlet.kill(block=True, timeout=1.0)
        self._greenlet = None
        self._report_gaps(final=True)
        self._close()

    @property
    def subscribed(self) -> bool:
        return self._pubsub is not None

    # -- subscribing ---------------------------------------------------------
    def _subscribe(self) -> bool:
        """(Re)subscribe; one SUBSCRIBE event with the time until Redis confirmed."""
        started = time.perf_counter()
        error = None
        try:
            self._client = self.client_factory()
            pubsub = self._client.pubsub()
            if self.channels:
                pubsub.subscribe(*self.channels)
            if self.patterns:
                pubsub.psubscribe(*self.patterns)
            self._wait_confirmed(pubsub)
        except redis.RedisError as exc:
            error = exc
        elapsed = (time.perf_counter() - started) * 1000
        self._fire("SUBSCRIBE", self.name, elapsed, 0, error)
        if error is not None:
            self._close()
            return False
        self._pubsub = pubsub
        self._last_message = time.monotonic()
        return True

    def _wait_confirmed(self, pubsub) -> None:
        expected = len(self.channels) + len(self.patterns)
        confirmed = 0
        deadline = time.monotonic() + 5.0
        while confirmed < expected:
            left = deadline - time.monotonic()
            if left <= 0:
                raise redis.TimeoutError("no subscription confirmation within 5 s")
            message = pubsub.get_message(timeout=min(left, 0.5))
            if message is None:
                continue
            if message["type"] in ("subscribe", "psubscribe"):
                confirmed += 1
            else:
                self._handle(message)

    def _close(self) -> None:
        pubsub, client = self._pubsub, self._client
        self._pubsub = self._client = None
        for closable in (pubsub, client):
            if closable is None:
                continue
            try:
                closable.close()
            except (redis.RedisError, OSError) as error:
                log.debug("closing a Redis connection: %s", error)

    # -- listening -----------------------------------------------------------
    def _listen(self) -> None:
        backoff = self.backoff_min
        while self._running:
            if self._pubsub is None:
                gevent.sleep(backoff)
                if not self._running:
                    break
                if self._subscribe():
                    self.resubscribes += 1
                    log.info("Redis subscription %r restored", self.name)
                    backoff = self.backoff_min
                else:
                    backoff = min(backoff * 2, self.backoff_max)
                continue
            try:
                message = self._pubsub.get_message(timeout=self.poll_timeout)
            except (redis.RedisError, OSError) as error:
                self.drops += 1
                log.warning("Redis subscription %r dropped (%s); reconnecting", self.name, error)
                self._fire("SUBSCRIBE", self.name, 0.0, 0, SubscriptionDropped(f"subscription dropped: {error}"))
                self._close()
                continue
            if message is not None:
                self._handle(message)
            self._report_gaps()

    def _handle(self, message: dict) -> None:
        kind = message["type"]
        if kind not in ("message", "pmessage"):
            return  # (un)subscribe confirmations and health-check answers
        channel = _text(message["channel"])
        name = _text(message["pattern"]) if kind == "pmessage" else channel_name(channel)
        raw = message["data"]
        size = len(raw) if isinstance(raw, bytes | str) else 0
        now = time.time()
        self._last_message = time.monotonic()
        try:
            publisher, seq, sent_at = decode_message(raw)
        except PubSubError as error:
            self.ledger.malformed += 1
            if self.strict:
                self._fire("MALFORMED", name, 0.0, size, error)
            return
        stream = self.streams.get((publisher, channel))
        if stream is None:
            # The first message of this publisher on this channel: nothing earlier is expected.
            self.streams[(publisher, channel)] = _Stream(last=seq, name=name)
        elif seq == stream.last + 1:
            stream.last = seq
        elif seq > stream.last:
            seen = time.monotonic()
            for missing in range(stream.last + 1, seq):
                stream.missing[missing] = seen
            stream.last = seq
        elif seq in stream.missing:
            # Late but not yet counted as lost: received, and out of order.
            del stream.missing[seq]
            self.ledger.out_of_order += 1
            self._fire("OUT_OF_ORDER", name, 0.0, size, OUT_OF_ORDER)
        elif seq in stream.reported:
            stream.reported.remove(seq)
            self.ledger.out_of_order += 1
            self._fire("OUT_OF_ORDER", name, 0.0, size, OUT_OF_ORDER)
        else:
            self.ledger.duplicates += 1
            self._fire("DUPLICATE", name, 0.0, size, DUPLICATE)
            return
        self.ledger.received += 1
        self._fire("RECEIVE", name, max(0.0, (now - sent_at) * 1000), size, None)

    # -- lost messages ---------------------------------------------------------
    def _report_gaps(self, final: bool = False) -> None:
        """Report gaps older than the reorder window (all of them, and the tail, when FINAL)."""
        cutoff = time.monotonic() - self.reorder_window
        for key, stream in self.streams.items():
            if final:
                # Published in this process but never received: lost at the tail.
                last_published = self.ledger.last_seq.get(key, stream.last)
                for missing in range(stream.last + 1, last_published + 1):
                    stream.missing[missing] = 0.0
                stream.last = max(stream.last, last_published)
            if not stream.missing:
                continue
            due = [seq for seq, seen in stream.missing.items() if final or seen <= cutoff]
            for seq in due:
                del stream.missing[seq]
                stream.reported.append(seq)
                self.ledger.lost += 1
                self._fire("LOST", stream.name, 0.0, 0, LOST)

    def _caught_up(self) -> bool:
        """Nothing known to be on its way: no open gaps, every local publisher's last message here."""
        if time.monotonic() - self._last_message < 0.2:
            return False  # messages are still arriving
        for key, stream in self.streams.items():
            if stream.missing or stream.last < self.ledger.last_seq.get(key, 0):
                return False
        return True

    def _fire(self, kind: str, name: str, elapsed: float, length: int, error) -> None:
        self.request_event.fire(
            request_type=kind, name=name, response_time=elapsed, response_length=length, exception=error, context={}
        )


# ---------------------------------------------------------------------------
# The Locust user base
# ---------------------------------------------------------------------------


class RedisPubSubUser(User):
    """A Locust user with a Redis client: ``self.publish(...)`` and ``self.subscribe(...)``.

    Set ``redis_url`` on the subclass (``settings.redis_url``). The client is made
    in ``on_start`` (one per user, never at import). Subscriptions started with
    ``self.subscribe`` are stopped in ``on_stop`` after ``grace_seconds`` for
    in-flight messages. Subclasses that override on_start/on_stop call super().
    """

    abstract = True
    redis_url: str = "redis://127.0.0.1:6379/0"
    socket_timeout: float = 5.0
    min_receivers: int = 1
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    grace_seconds: float = 2.0

    def on_start(self) -> None:
        self.redis = connect(self.redis_url, socket_timeout=self.socket_timeout)
        self.publisher = RedisPublisher(
            self.redis,
            self.environment.events.request,
            min_receivers=self.min_receivers,
            max_message_bytes=self.max_message_bytes,
        )
        self.subscribers: list[RedisSubscriber] = []

    def publish(self, channel: str, data="", **kwargs):
        """PUBLISH a kit message; the number of receivers, or None when it failed."""
        return self.publisher.publish(channel, data, **kwargs)

    def subscribe(self, channels=(), patterns=(), **kwargs) -> RedisSubscriber:
        """Start listening (in a separate greenlet) on CHANNELS and/or PATTERNS."""
        url, timeout = self.redis_url, self.socket_timeout
        subscriber = RedisSubscriber(
            lambda: connect(url, socket_timeout=timeout),
            self.environment.events.request,
            channels=channels,
            patterns=patterns,
            **kwargs,
        )
        subscriber.start()
        self.subscribers.append(subscriber)
        return subscriber

    def wait_for_subscribers(self, channel: str, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until CHANNEL has COUNT subscribers (PUBSUB NUMSUB; patterns not counted)."""
        return _wait_numsub(self.redis, channel, count, timeout)

    def on_stop(self) -> None:
        subscribers = getattr(self, "subscribers", [])
        # Stop all of this user's subscribers at once, each with the same grace time.
        gevent.joinall([gevent.spawn(s.stop, self.grace_seconds) for s in subscribers])
        if getattr(self, "redis", None) is not None:
            self.redis.close()


# ---------------------------------------------------------------------------
# Run-level listener: reset and summary, and a warning when Redis is down at start
# ---------------------------------------------------------------------------


def register(environment, redis_url: str, ledger: PubSubLedger = LEDGER) -> None:
    """Attach the Pub/Sub summary to ENVIRONMENT (call from an ``init`` listener)."""

    def on_test_start(environment, **_kwargs) -> None:
        from locust.runners import MasterRunner

        ledger.reset()
        if isinstance(environment.runner, MasterRunner):
            return  # the master runs no users
        problem = check_redis(redis_url)
        if problem:
            log.error(
                "Redis at %s is not reachable (%s): every Redis operation will be counted as a failure "
                "until it answers",
                redact_url(redis_url),
                problem,
            )

    def on_test_stop(environment, **_kwargs) -> None:
        from locust.runners import MasterRunner

        if not isinstance(environment.runner, MasterRunner):
            log.info("Redis Pub/Sub summary: %s", ledger.summary())

    environment.events.test_start.add_listener(on_test_start)
    environment.events.test_stop.add_listener(on_test_stop)


def wait_for_subscribers(url: str, channel: str, count: int = 1, timeout: float = 10.0) -> bool:
    """Wait until CHANNEL has COUNT subscribers (PUBSUB NUMSUB; patterns not counted). Never raises."""
    client = connect(url, socket_timeout=2.0, connect_timeout=2.0)
    try:
        return _wait_numsub(client, channel, count, timeout)
    finally:
        client.close()


def _wait_numsub(client: redis.Redis, channel: str, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.pubsub_numsub(channel)[0][1] >= count:
                return True
        except redis.RedisError as error:
            log.debug("PUBSUB NUMSUB %s: %s", channel, error)
        gevent.sleep(0.1)
    return False
