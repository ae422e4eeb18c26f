"""GraphQL load test: shoppers using the demo shop's GraphQL API, as its front end does.

What it simulates
    Each virtual user logs in once with a GraphQL mutation, then, until the test
    ends, picks weighted tasks: list products, open a product, compare products,
    add to the cart, look at the cart, ask for a slow report, and now and then
    send a bad quantity on purpose to check that the API refuses it. Between two
    tasks a user thinks for 1 to 3 seconds.

    The operations live in tests/graphql/shop.graphql, written as the front end
    writes them. Every operation gets its own row in the statistics, named
    "<type> <name>" (for example "query GetProducts"), not one "/graphql" row.

Why GraphQL needs care
    A GraphQL server answers most errors with HTTP 200 and an "errors" list in
    the body. Looking at the status alone would report a broken API as healthy.
    utils/graphql_client.py looks inside every answer: errors, missing data,
    a body that is not JSON, a status outside 2xx or no answer at all each count
    as a failure, with the first error's message and path as the reason.

What must be running
    The target app. To practise, start the bundled demo target in another
    terminal:   python locust_helper.py target --port 8080

How to run it
    Web UI (open http://127.0.0.1:8089, type the number of users, press Start):
        locust -f tests/graphql_test.py
    Headless for 1 minute with 10 users, through the helper (writes reports/):
        python locust_helper.py run graphql --users 10 --duration 1m
    Check the operations against the server's schema first, then run:
        GRAPHQL_SCHEMA=introspect python locust_helper.py run graphql -t 30s
    One user, once through, for debugging (no Locust UI):
        python tests/graphql_test.py

Environment variables it reads (see .env.example)
    TARGET_HOST           the base URL of the app, e.g. http://127.0.0.1:8080
    GRAPHQL_PATH          the GraphQL endpoint on it (default: /graphql)
    GRAPHQL_SCHEMA        check the operations before the run: empty (no check),
                          "introspect" (ask the server once), or a schema file
    GRAPHQL_PARTIAL_DATA  "fail" (default): data WITH errors is a failure;
                          "accept": it is a success (the task still sees the errors)
    LOGIN_USERNAME        the account to log in with (default: demo)
    LOGIN_PASSWORD        its password (secret: keep it in .env, never in code)
"""

# Locust comes first: importing it lets gevent patch Python's network code, so
# thousands of users can wait on the network at once. Import everything else after.
from locust import between, run_single_user, tag, task

import random
import sys
import time
from pathlib import Path

# Make "import utils" work from any folder (Locust only adds the current one).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils import kit
from utils.config import get_settings
from utils.graphql_client import GraphQLUser, load_operations

# Settings are read (and checked) once. A bad value stops Locust with one clear line.
settings = get_settings()

# Attach the kit's listeners (exact final figures for the helper, and Datadog,
# thresholds and Slack when they are configured). Connects to nothing.
kit.install()

# The operations, parsed ONCE here, not on every request. A typo in the file
# stops Locust before any load, with one line naming file, line and column:
#   error: tests/graphql/shop.graphql:23:5: syntax error in query GetProducts: Expected Name, found '}'.
# With GRAPHQL_SCHEMA set, they are also checked against the schema first.
OPS = load_operations(
    Path(__file__).parent / "graphql" / "shop.graphql",
    schema=settings.graphql_schema,
    endpoint=settings.graphql_path,
)

# Product ids to pick from. A real test often reads such a list from a file or
# from the API; each user refreshes its copy from the product list it sees.
PRODUCT_IDS = [str(i) for i in range(1, 101)]


class GraphQLShopper(GraphQLUser):
    """A logged-in shopper who talks GraphQL.

    GraphQLUser is a FastHttpUser (Locust's fast HTTP user) with one extra:
    ``self.graphql``, a client that sends the operations above through the
    user's own HTTP connection and records one statistics row per operation.
    """

    # The base URL; `--host` or the web UI's "Host" field override it.
    host = settings.target_host
    # Where the GraphQL endpoint is on that host, and what partial data counts as.
    graphql_endpoint = settings.graphql_path
    graphql_partial_data = settings.graphql_partial_data
    # Marks the kit's requests as load-test traffic (with the run id) in the app's traces.
    default_headers = kit.traffic_headers()

    # Think time: 1 to 3 seconds between tasks, like a person reading the page.
    wait_time = between(1, 3)

    def on_start(self) -> None:
        """Runs once per user, before its first task: log in, like a real visitor."""
        self.product_ids = list(PRODUCT_IDS)
        # When a login fails we wait before trying again: 2 s, then 4, 8 ...
        # up to 60 s. A user that retried on every task would flood the login
        # with requests that all fail, and hide every other figure.
        self.login_backoff = 2.0
        self.next_login_at = 0.0
        self.logged_in = False
        self.log_in()

    # ------------------------------------------------------------------ helpers
    def log_in(self) -> bool:
        """The Login mutation; on success every later request carries the token."""
        credentials = {"username": settings.login_username, "password": settings.login_password}
        # execute() sends the operation and checks the answer. It returns a result
        # with .ok, .data and .errors; the statistics are already recorded.
        result = self.graphql.execute(OPS["Login"], credentials)
        if result.ok:
            # Sent as "Authorization: Bearer <token>" from now on.
            self.graphql.set_token(result.data["login"]["token"])
            self.logged_in = True
            self.login_backoff = 2.0
        else:
            # The failure is already counted, with the server's reason
            # (for example "errors: wrong username or password (path: login)").
            self.next_login_at = time.monotonic() + self.login_backoff
            self.login_backoff = min(self.login_backoff * 2, 60.0)
        return self.logged_in

    def ensure_logged_in(self) -> bool:
        """True when we hold a token; else try to log in, but not before the back-off time."""
        if self.logged_in:
            return True
        if time.monotonic() < self.next_login_at:
            return False  # skip this task: no request that can only fail
        return self.log_in()

    # -------------------------------------------------------------------- tasks
    # @task(N): N is the weight; @tag lets you run some tasks only: --tags browse

    @tag("browse")
    @task(10)
    def list_products(self) -> None:
        # Variables change per request; the operation text never does.
        variables = {"limit": 20}
        if random.random() < 0.3:
            variables["category"] = random.choice(["books", "games", "music", "garden"])
        # catch_response=True: we add our own check before the result is recorded.
        with self.graphql.execute(OPS["GetProducts"], variables, catch_response=True) as result:
            if result.ok and not result.data["products"]:
                result.failure("the product list is empty")
            elif result.ok:
                self.product_ids = [p["id"] for p in result.data["products"]]

    @tag("browse")
    @task(6)
    def view_product(self) -> None:
        product_id = random.choice(self.product_ids)
        with self.graphql.execute(OPS["GetProduct"], {"id": product_id}, catch_response=True) as result:
            # product is null for an unknown id: GraphQL's "not found" is not an error.
            if result.ok and (result.data["product"] or {}).get("id") != product_id:
                result.failure("the product query answered another product than the one asked for")

    @tag("browse")
    @task(2)
    def compare_products(self) -> None:
        ids = random.sample(self.product_ids, 2)
        # An unknown id here would give partial data: the other product plus an
        # error. With GRAPHQL_PARTIAL_DATA=fail (the default) that is a failure.
        self.graphql.execute(OPS["CompareProducts"], {"ids": ids})

    @tag("cart")
    @task(3)
    def add_to_cart(self) -> None:
        if not self.ensure_logged_in():
            return
        product_id = random.choice(self.product_ids)
        with self.graphql.execute(
            OPS["AddToCart"], {"productId": product_id, "quantity": 1}, catch_response=True
        ) as result:
            if result.ok and product_id not in [i["product"]["id"] for i in result.data["addToCart"]["items"]]:
                result.failure(f"product {product_id} is missing from the cart after adding it")

    @tag("cart")
    @task(2)
    def view_cart(self) -> None:
        if not self.ensure_logged_in():
            return
        with self.graphql.execute(OPS["GetCart"], catch_response=True) as result:
            if result.ok and result.data["me"]["username"] != settings.login_username:
                result.failure("the cart belongs to another user")

    @tag("cart")
    @task(1)
    def bad_quantity_is_refused(self) -> None:
        """A negative test: the API MUST answer an error for quantity 0."""
        if not self.ensure_logged_in():
            return
        # name= gives this call its own row, so it does not mix with real adds.
        with self.graphql.execute(
            OPS["AddToCart"],
            {"productId": random.choice(self.product_ids), "quantity": 0},
            name="mutation AddToCart (quantity 0)",
            catch_response=True,
        ) as result:
            codes = [e.get("extensions", {}).get("code") for e in result.errors or []]
            if "BAD_USER_INPUT" in codes:
                result.success()  # the error we wanted: this request passed
            else:
                result.failure(f"quantity 0 was not refused as bad input: {result.failure_reason or result.data}")

    @tag("report")
    @task(1)
    def sales_report(self) -> None:
        # A slow field: watch this row's p95 grow when the server is busy.
        self.graphql.execute(OPS["SalesReport"], {"delayMs": 200})


# Debugging: `python tests/graphql_test.py` runs one user through its tasks in
# this process, printing every request, so you can step through it with a debugger.
if __name__ == "__main__":
    try:
        run_single_user(GraphQLShopper)
    except KeyboardInterrupt:
        pass  # Ctrl+C: stop quietly
