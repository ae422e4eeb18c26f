"""Redis Pub/Sub load test: chat rooms with publishers, listeners and the app in between.

What it simulates
    A chat. Each RoomListener user subscribes to one room (a Redis channel) and
    measures every message that reaches it. RoomPublisher users PUBLISH messages
    straight to Redis. ChatPoster users post messages through the app's HTTP API
    (POST /api/chat), and the app publishes them: app -> Redis -> listeners, the
    path your users feel. One AuditListener watches every room at once with a
    pattern subscription (PSUBSCRIBE chat:room-*).

    Fan-out: every message reaches every listener of its room plus the auditor.
    With the weights below and 9 users (1 auditor, then 6 listeners, 1 publisher,
    1 poster) and 2 rooms, each message has 3 + 1 = 4 receivers.

What it reports (rows in Locust's statistics)
    PUBLISH   chat:room-N   time of one PUBLISH; failed when nobody received it
    RECEIVE   chat:room-N   END-TO-END latency: from publishing to arriving here
    RECEIVE   chat:room-*   the same, for the auditor's pattern subscription
    LOST      chat:room-N   one failure per message that never arrived
    SUBSCRIBE ...           subscribing, dropped subscriptions and reconnections
    POST      /api/chat     the app's chat endpoint (HTTP)
    DUPLICATE, OUT_OF_ORDER, MALFORMED appear only when something is wrong.
    At the end every Locust process logs one line:
        Redis Pub/Sub summary: published=.. receivers=.. received=.. lost=..

What must be running
    Redis at REDIS_URL, and for ChatPoster the app with its chat switched on. To
    practise, start the demo target in another terminal:
        python locust_helper.py target --port 8080 --redis-url redis://127.0.0.1:6379/0

How to run it
    Web UI (http://127.0.0.1:8089; "Rooms" and "Message bytes" are on the form):
        locust -f tests/redis_test.py
    Headless, 9 users for 1 minute, through the helper (writes reports/):
        python locust_helper.py run redis --users 9 --duration 1m -- --stop-timeout 5
    Only Redis, without the app (name the user classes to run):
        python locust_helper.py run redis --users 8 -- AuditListener RoomListener RoomPublisher
    One publisher that also listens to its own rooms, printing every event, for
    debugging (Ctrl+C stops it):
        python tests/redis_test.py

    --stop-timeout 5 lets every user finish what it is doing when the time is up,
    so no message is cut off half-way and the end-of-run accounting is exact.

When Redis is down
    The run still starts and ends on time: every Redis operation is counted as a
    failure (SUBSCRIBE, PUBLISH), listeners keep reconnecting with a growing pause
    (0.1 s up to 2 s), and a log line at the start says that Redis does not answer.
    The helper then exits with code 4 (no request succeeded). If Redis restarts
    during the run, listeners subscribe again and the messages published while
    they were away are counted in the LOST rows.

Environment variables it reads (see .env.example)
    REDIS_URL       redis://[:password@]host[:port][/db], rediss:// for TLS
    TARGET_HOST     the app's base URL (for ChatPoster), e.g. http://127.0.0.1:8080
    LOGIN_USERNAME  the account ChatPoster logs in with (default: demo)
    LOGIN_PASSWORD  its password (secret: keep it in .env, never in code)

Mapping it to your real channels
    1. Change ROOM_PREFIX (and AuditListener's pattern) to your channel names,
       for example "orders:" or "notifications:user-".
    2. Give your app's messages three JSON fields: "publisher" (an id unique per
       app instance), "seq" (1, 2, 3 ... per publisher and channel) and "sent_at"
       (Unix time in seconds). demo/chat.py shows how. Without them the
       listeners cannot measure latency or find lost messages (MALFORMED rows).
    3. Replace ChatPoster's request with the API call that makes your app publish.
    4. Set the weights to your real ratio of readers to writers.
"""

# Locust comes first: importing it lets gevent patch Python's network code, so
# thousands of users can wait on Redis at once. Import everything else after.
from locust import FastHttpUser, between, constant, events, run_single_user, task

import itertools
import sys
from collections import Counter
from pathlib import Path

from gevent.event import Event

# Make "import utils" work from any folder (Locust only adds the current one).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils import kit, redis_pubsub
from utils.checks import expect_status
from utils.config import get_settings
from utils.redis_pubsub import RedisPubSubUser

# Settings are read (and checked) once. A bad REDIS_URL stops Locust here with one clear line.
settings = get_settings()

# Attach the kit's listeners (exact final figures for the helper, and more when
# configured). Connects to nothing.
kit.install()

# Every room is one Redis channel: chat:room-0, chat:room-1, ...
ROOM_PREFIX = "chat:room-"

# Hands out room numbers: user 0 gets room 0, user 1 room 1, and so on, round the rooms.
_next_listener = itertools.count()
# How many listeners this process put in each room, and whether Locust has started
# every user: publishers wait for both, so that the first messages reach everyone.
listeners_per_room: Counter = Counter()
all_users_started = Event()


@events.init_command_line_parser.add_listener
def _add_options(parser) -> None:
    # Our own command-line options. They also show up on the web UI's start form.
    parser.add_argument("--rooms", type=int, default=2, help="how many chat rooms (channels) to spread users over")
    parser.add_argument("--message-bytes", type=int, default=200, help="size of the text in each message")


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    # Resets the Pub/Sub counters at each start, warns when Redis does not answer,
    # and logs the summary line at the end.
    redis_pubsub.register(environment, settings.redis_url)


@events.test_start.add_listener
def _on_test_start(**_kwargs) -> None:
    # A new run (the web UI can start several): forget the last one's rooms.
    listeners_per_room.clear()
    all_users_started.clear()


@events.spawning_complete.add_listener
def _on_spawning_complete(**_kwargs) -> None:
    all_users_started.set()


def option(environment, name: str, default: int) -> int:
    """A command-line option's value (a plain `python tests/redis_test.py` has none)."""
    value = getattr(environment.parsed_options, name, None) if environment.parsed_options else None
    return max(1, int(value)) if value else default


def room_names(environment) -> list[str]:
    return [f"{ROOM_PREFIX}{n}" for n in range(option(environment, "rooms", 2))]


def wait_for_listeners(environment) -> None:
    """Before the first message: wait until every user started and every room has its listeners.

    Each wait is bounded (10 s), so a slow ramp-up or an empty room delays the
    publishers a little and then their messages count as failures ("0 receivers").
    """
    all_users_started.wait(timeout=10)
    for room in room_names(environment):
        wanted = max(1, listeners_per_room[room])
        redis_pubsub.wait_for_subscribers(settings.redis_url, room, count=wanted, timeout=10)


class AuditListener(RedisPubSubUser):
    """Watches every room with ONE pattern subscription: sees every message once."""

    # fixed_count: exactly one of these, whatever the total; Locust starts it first.
    fixed_count = 1
    redis_url = settings.redis_url
    # The listening happens in the background; the task below only keeps the user alive.
    wait_time = constant(1)

    def on_start(self) -> None:
        super().on_start()  # makes self.redis and self.publisher
        # PSUBSCRIBE: "*" matches any text. Its RECEIVE row is named after the pattern.
        self.subscribe(patterns=[f"{ROOM_PREFIX}*"])

    @task
    def keep_listening(self) -> None:
        # Locust needs at least one task. Messages are handled by the subscriber's
        # own greenlet, so this user has nothing else to do.
        pass


class RoomListener(RedisPubSubUser):
    """A chat reader: subscribes to one room and measures what arrives."""

    # Weights: 6 listeners for every publisher and every poster (the fan-out).
    weight = 6
    redis_url = settings.redis_url
    wait_time = constant(1)

    def on_start(self) -> None:
        super().on_start()
        rooms = room_names(self.environment)
        self.room = rooms[next(_next_listener) % len(rooms)]
        listeners_per_room[self.room] += 1
        # subscribe() returns once Redis confirmed the subscription, then listens in
        # its own greenlet: a quiet room never blocks this or any other user.
        self.subscribe(channels=[self.room])

    @task
    def keep_listening(self) -> None:
        pass


class RoomPublisher(RedisPubSubUser):
    """Publishes chat messages straight to Redis, round the rooms."""

    weight = 1
    redis_url = settings.redis_url
    # Think time: a message every 0.1 to 0.3 s per publisher, about 5 per second.
    wait_time = between(0.1, 0.3)
    # A message nobody received is a failure: somebody should be listening.
    min_receivers = 1
    # True: also subscribe to the rooms (used by the debugging run at the bottom).
    listen_too = False

    def on_start(self) -> None:
        super().on_start()
        self.rooms = itertools.cycle(room_names(self.environment))
        self.text = "x" * option(self.environment, "message_bytes", 200)
        if self.listen_too:
            # It is its own audience: subscribe() returns once Redis confirmed it.
            self.subscribe(channels=room_names(self.environment))
        else:
            # Listeners may still be starting: wait for them (bounded), so the
            # first messages do not fail with "0 receivers".
            wait_for_listeners(self.environment)

    @task
    def publish_message(self) -> None:
        # One PUBLISH row per channel; the message carries publisher, seq and sent_at.
        self.publish(next(self.rooms), {"user": "loadtest", "text": self.text})


class ChatPoster(FastHttpUser):
    """Posts chat messages through the app (POST /api/chat); the app publishes them."""

    weight = 1
    host = settings.target_host
    default_headers = kit.traffic_headers()  # marks load-test traffic in the app's traces
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.token = None
        self.rooms = itertools.cycle(room_names(self.environment))
        self.log_in()
        wait_for_listeners(self.environment)

    def log_in(self) -> bool:
        credentials = {"username": settings.login_username, "password": settings.login_password}
        with self.rest("POST", "/api/login", json=credentials) as resp:
            if expect_status(resp, 200, "login") and resp.js.get("token"):
                self.token = resp.js["token"]
        return self.token is not None

    @task
    def post_message(self) -> None:
        if self.token is None and not self.log_in():
            return
        message = {"channel": next(self.rooms), "text": "hello from the load test"}
        headers = {"Authorization": f"Bearer {self.token}"}
        with self.rest("POST", "/api/chat", json=message, headers=headers) as resp:
            if resp.status_code == 503:
                resp.failure(f"the app cannot publish (503): {resp.text[:120]} - was it started with a Redis URL?")
            elif not expect_status(resp, 200, "chat post"):
                pass
            elif resp.js.get("receivers", 0) < 1:
                resp.failure("the app published the message but nobody received it (0 receivers)")
            else:
                # Tell the Pub/Sub summary how many listeners Redis delivered this one to.
                redis_pubsub.LEDGER.add_receivers(resp.js["receivers"])


# Debugging: `python tests/redis_test.py` runs one publisher that listens to its
# own rooms, in this process, printing every PUBLISH and RECEIVE as it happens.
if __name__ == "__main__":
    RoomPublisher.listen_too = True
    try:
        run_single_user(RoomPublisher)
    except KeyboardInterrupt:
        pass  # Ctrl+C: stop quietly
