"""Complete example: the app's real traffic mix, REST + GraphQL + real-time messages, in one test.

This is the template to copy for your own app. It shows every part of the kit
working together.

What it simulates
    Three kinds of visitors at once, like the React app's real traffic:
    * Browser (weight 5): browses the REST API: product list, product pages, cart.
    * AppShopper (weight 3): the app's GraphQL queries and mutations, and chat
      messages posted through GraphQL (one when it arrives, then now and then). The app publishes that message to
      Redis: app -> Redis -> subscribers, the path our users feel.
    * LiveSubscriber (2 of them, whatever the total): an open app tab listening on
      the chat channel. It measures how long each message took from the app's
      PUBLISH to its arrival (the "RECEIVE chat:live" row) and counts lost ones.
    The number of users over time comes from a load shape (a preset or your own
    stages) or from --users/--duration.

Wired in through utils (nothing else to add)
    kit.install() attaches: the thresholds in thresholds/complete.toml (the
    deployment gate, with a live "Thresholds" tab in the web UI), the summary and
    virtual-user hours, Datadog (when DD_AGENT_HOST or DD_API_KEY is set) and Slack
    (when SLACK_WEBHOOK_URL is set).

What must be running
    The app with its chat on, and Redis. To practise, in another terminal:
        python locust_helper.py target --port 8080 --redis-url redis://127.0.0.1:6379/0

How to run it
    Web UI (http://127.0.0.1:8089):    python locust_helper.py ui complete
    Headless, the load preset, 30 users at the peak, 5 minutes:
        python locust_helper.py run complete --preset load --users 30 --duration 5m
    On this machine's cores (a master and 2 workers):
        python locust_helper.py run complete --workers 2 --users 60 --duration 5m
    Plain Locust with a shape:
        LOAD_PRESET=load locust -f tests/complete_example.py,utils/load_shape.py

Environment variables it reads (see .env.example)
    TARGET_HOST, LOGIN_USERNAME, LOGIN_PASSWORD    the app and its test account
    REDIS_URL                                      the Redis the subscribers listen on
    GRAPHQL_PATH, GRAPHQL_SCHEMA                   the GraphQL endpoint; optional schema check
    LOAD_PRESET / LOAD_STAGES, LOAD_USERS, LOAD_DURATION    the load shape (helper: --preset ...)
    THRESHOLDS_FILE, THRESHOLDS, DD_*, SLACK_WEBHOOK_URL    gate, Datadog, Slack

Making it yours
    1. Browser: your REST endpoints and checks (tests/basic_test.py explains each line).
    2. AppShopper: your front end's operations, in a .graphql file (tests/graphql/).
    3. LiveSubscriber: your channel names; your app's messages need the fields
       publisher, seq and sent_at (demo/chat.py shows them).
    4. The weights and fixed_count: your real mix of visitors.
    5. thresholds/complete.toml: your limits.
"""

# Locust first: it patches Python's network code for gevent.
from locust import FastHttpUser, between, constant, events, run_single_user, tag, task

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils import kit, redis_pubsub
from utils.checks import expect_status
from utils.config import get_settings
from utils.graphql_client import GraphQLUser, load_operations
from utils.redis_pubsub import RedisPubSubUser

settings = get_settings()

# One line wires in thresholds (this scenario's own file), summary, Datadog and Slack.
kit.install(thresholds_file="thresholds/complete.toml")

# The GraphQL operations, parsed (and checked) once when Locust starts.
GRAPHQL = Path(__file__).parent / "graphql"
OPS = load_operations(
    GRAPHQL / "shop.graphql", GRAPHQL / "chat.graphql", schema=settings.graphql_schema, endpoint=settings.graphql_path
)

# The chat channel the app publishes to and the subscribers listen on.
CHANNEL = "chat:live"
PRODUCT_IDS = list(range(1, 101))


class Browser(FastHttpUser):
    """A visitor browsing the REST API; logs in only to use the cart."""

    weight = 5  # 5 browsers for every 3 app shoppers
    host = settings.target_host
    default_headers = kit.traffic_headers()  # marks load-test traffic in the app's traces
    wait_time = between(1, 3)  # think time between pages

    def on_start(self) -> None:
        self.token = None

    def log_in(self) -> bool:
        credentials = {"username": settings.login_username, "password": settings.login_password}
        with self.rest("POST", "/api/login", json=credentials) as resp:
            if expect_status(resp, 200, "login") and resp.js.get("token"):
                self.token = resp.js["token"]
        return self.token is not None

    @tag("browse")
    @task(6)
    def product_list(self) -> None:
        with self.rest("GET", "/api/products?limit=20", name="/api/products") as resp:
            if expect_status(resp, 200, "product list") and not resp.js.get("products"):
                resp.failure("product list answered 200 but the list is empty")

    @tag("browse")
    @task(4)
    def product_page(self) -> None:
        product_id = random.choice(PRODUCT_IDS)
        # name= puts every product page in one statistics row.
        with self.rest("GET", f"/api/products/{product_id}", name="/api/products/[id]") as resp:
            # Keep ids out of failure messages: Locust groups failures by message, and one
            # row per product id would bury the real problem.
            if expect_status(resp, 200, "product page") and resp.js.get("id") != product_id:
                resp.failure("the product page shows another product than the one asked for")

    @tag("cart")
    @task(1)
    def add_to_cart(self) -> None:
        if self.token is None and not self.log_in():
            return  # no token: try again next time (think time paces the retries)
        item = {"product_id": random.choice(PRODUCT_IDS), "quantity": 1}
        headers = {"Authorization": f"Bearer {self.token}"}
        with self.rest("POST", "/api/cart", json=item, headers=headers) as resp:
            if resp.status_code == 401:
                self.token = None  # log in again next time
            expect_status(resp, 200, "add to cart")


class AppShopper(GraphQLUser):
    """The React app's GraphQL traffic, and chat messages posted through the app."""

    weight = 3
    host = settings.target_host
    graphql_endpoint = settings.graphql_path
    default_headers = kit.traffic_headers()
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.logged_in = False
        self.log_in()
        # The first chat message should find its subscribers listening (bounded wait).
        redis_pubsub.wait_for_subscribers(settings.redis_url, CHANNEL, count=1, timeout=10)
        # Like a chat app's "joined" notice: every shopper posts once when it arrives.
        self.post_chat_message()

    def log_in(self) -> bool:
        credentials = {"username": settings.login_username, "password": settings.login_password}
        result = self.graphql.execute(OPS["Login"], credentials)
        if result.ok:
            self.graphql.set_token(result.data["login"]["token"])
            self.logged_in = True
        return self.logged_in

    @tag("browse")
    @task(5)
    def products(self) -> None:
        # One row: "query GetProducts". Errors inside a 200 answer count as failures.
        self.graphql.execute(OPS["GetProducts"], {"limit": 20})

    @tag("browse")
    @task(3)
    def product(self) -> None:
        product_id = str(random.choice(PRODUCT_IDS))
        with self.graphql.execute(OPS["GetProduct"], {"id": product_id}, catch_response=True) as result:
            if result.ok and (result.data["product"] or {}).get("id") != product_id:
                result.failure("the product query answered another product than the one asked for")

    @tag("cart")
    @task(1)
    def add_to_cart(self) -> None:
        if not self.logged_in and not self.log_in():
            return
        self.graphql.execute(OPS["AddToCart"], {"productId": str(random.choice(PRODUCT_IDS)), "quantity": 1})

    @tag("chat")
    @task(2)
    def post_chat_message(self) -> None:
        if not self.logged_in and not self.log_in():
            return
        variables = {"channel": CHANNEL, "text": "hello from the load test"}
        with self.graphql.execute(OPS["PostMessage"], variables, catch_response=True) as result:
            if result.ok and result.data["postMessage"]["receivers"] < 1:
                result.failure("the app published the message but no subscriber received it (0 receivers)")
            elif result.ok:
                # Tell the Pub/Sub accounting how many subscribers Redis delivered it to.
                redis_pubsub.LEDGER.add_receivers(result.data["postMessage"]["receivers"])


class LiveSubscriber(RedisPubSubUser):
    """An open app tab listening for chat messages (in its own greenlet: never blocks anyone)."""

    fixed_count = 2  # exactly 2, started first, whatever the total number of users
    redis_url = settings.redis_url
    wait_time = constant(1)

    def on_start(self) -> None:
        super().on_start()  # makes this user's Redis connection
        # Returns once Redis confirmed the subscription; each message then becomes a
        # "RECEIVE chat:live" sample (its end-to-end latency), a gap a "LOST" failure.
        self.subscribe(channels=[CHANNEL])

    @task
    def keep_listening(self) -> None:
        pass  # the subscription does the work; Locust needs a task


# The Redis Pub/Sub accounting (reset at start, summary line at the end) for this run.
@events.init.add_listener
def _redis_accounting(environment, **_kwargs) -> None:
    redis_pubsub.register(environment, settings.redis_url)


# Debugging: `python tests/complete_example.py` runs one REST browser in this process.
if __name__ == "__main__":
    try:
        run_single_user(Browser)
    except KeyboardInterrupt:
        pass  # Ctrl+C: stop quietly
