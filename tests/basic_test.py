"""Basic HTTP load test: shoppers browsing the REST API of the demo shop.

What it simulates
    Each simulated user ("virtual user") logs in once, then, until the test
    ends, repeatedly picks one task: list products, open a product, add it to the
    cart, look at the cart, load the home page or call the health check. Tasks
    with a bigger weight are picked more often, like real visitors who browse far
    more than they buy. Between two tasks a user "thinks" for 1 to 3 seconds.

What must be running
    The target app. To practise, start the bundled demo target in another
    terminal:   python locust_helper.py target --port 8080

How to run it
    Web UI (open http://127.0.0.1:8089, type the number of users, press Start):
        locust -f tests/basic_test.py
    Headless for 1 minute with 10 users, through the helper (writes reports/):
        python locust_helper.py run basic --users 10 --duration 1m
    One user, once through, for debugging (no Locust UI):
        python tests/basic_test.py

Environment variables it reads (see .env.example)
    TARGET_HOST     the base URL of the app, e.g. http://127.0.0.1:8080
    LOGIN_USERNAME  the account to log in with (default: demo)
    LOGIN_PASSWORD  its password (secret: keep it in .env, never in code)
"""

# Locust comes first: importing it lets gevent patch Python's network code, so
# thousands of users can wait on the network at once. Import everything else after.
from locust import FastHttpUser, between, run_single_user, tag, task

import random
import sys
from pathlib import Path

# Make "import utils" work from any folder (Locust only adds the current one).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils import kit
from utils.checks import expect_status
from utils.config import get_settings

# Settings are read (and checked) once. A bad value stops Locust with one clear line.
settings = get_settings()

# Attach the kit's listeners (exact final figures for the helper, and later
# Datadog, thresholds and Slack when they are configured). Connects to nothing.
kit.install()


class ShopVisitor(FastHttpUser):
    """A logged-in shopper.

    HttpUser or FastHttpUser? Both are Locust's HTTP users with the same
    ``self.client.get(...)``/``post(...)`` calls, ``catch_response`` and ``name=``.
    HttpUser is built on the ``requests`` library; FastHttpUser on
    geventhttpclient, which spends several times less CPU per request. The load
    generator's CPU is what limits how much load one machine can send, so we use
    FastHttpUser. Switch to HttpUser only if you need something only ``requests``
    has (its auth plugins or adapters, for example).
    """

    # The base URL every relative path below is joined to. `--host` or the web
    # UI's "Host" field override it.
    host = settings.target_host

    # Think time: after each task the user waits 1 to 3 seconds, like a person
    # reading the page. Without it, 10 users would hammer the app as fast as the
    # machine allows, which is a stress test, not a model of real visitors.
    wait_time = between(1, 3)

    # Sent with every request: marks it as load-test traffic, with the run's id,
    # so the app's logs and APM traces can tell it apart from real visitors.
    default_headers = kit.traffic_headers()

    def on_start(self) -> None:
        """Runs once per user, before its first task: log in, like a real visitor."""
        self.token = None
        self.product_ids = list(range(1, 21))  # refreshed from the product list below
        self.log_in()

    # ------------------------------------------------------------------ helpers
    def log_in(self) -> bool:
        """POST the credentials, keep the token for the requests that need it."""
        credentials = {"username": settings.login_username, "password": settings.login_password}
        # self.rest(...) is Locust's JSON helper: it sends JSON, parses the answer
        # into resp.js, and marks the request failed if the body is not JSON or
        # if code inside the `with` block raises an error.
        with self.rest("POST", "/api/login", json=credentials) as resp:
            if resp.status_code == 401:
                resp.failure("login refused (401): check LOGIN_USERNAME and LOGIN_PASSWORD")
            elif not expect_status(resp, 200, "login"):
                pass  # expect_status has marked it failed, with the reason
            elif not resp.js.get("token"):
                resp.failure("login answered 200 but the body has no 'token'")
            else:
                self.token = resp.js["token"]
        return self.token is not None

    def auth_headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    # -------------------------------------------------------------------- tasks
    # @task(N): N is the weight. With weights 10, 6, 3, 2, 1, 1 a user picks
    # "list products" 10 times as often as "health check".
    # @tag(...) lets you run only some tasks: --tags browse

    @tag("browse")
    @task(10)
    def list_products(self) -> None:
        with self.rest("GET", "/api/products?limit=20", name="/api/products") as resp:
            # Check the content, not only the status: a 200 with an empty list is a bug too.
            if not expect_status(resp, 200, "product list"):
                pass
            elif not resp.js.get("products"):
                resp.failure("product list answered 200 but the list is empty")
            else:
                self.product_ids = [p["id"] for p in resp.js["products"]]

    @tag("browse")
    @task(6)
    def view_product(self) -> None:
        product_id = random.choice(self.product_ids)
        # Every product has its own URL. name= groups them into ONE row in the
        # statistics ("/api/products/[id]") instead of one row per id.
        with self.rest("GET", f"/api/products/{product_id}", name="/api/products/[id]") as resp:
            # Keep ids out of failure messages: Locust groups failures by message, and one
            # row per product id would bury the real problem.
            if expect_status(resp, 200, "product page") and resp.js.get("id") != product_id:
                resp.failure("the product page shows another product than the one asked for")

    @tag("cart")
    @task(3)
    def add_to_cart(self) -> None:
        # No token (the login failed): try to log in again instead of sending a
        # request that can only fail. wait_time still paces the retries.
        if self.token is None and not self.log_in():
            return
        product_id = random.choice(self.product_ids)
        item = {"product_id": product_id, "quantity": 1}
        with self.rest("POST", "/api/cart", json=item, headers=self.auth_headers()) as resp:
            if resp.status_code == 401:
                self.token = None  # the session expired: log in again next time
            if not expect_status(resp, 200, "add to cart"):
                pass
            elif product_id not in [i["product_id"] for i in resp.js.get("items", [])]:
                resp.failure(f"product {product_id} is missing from the cart after adding it")

    @tag("cart")
    @task(2)
    def view_cart(self) -> None:
        if self.token is None and not self.log_in():
            return
        with self.rest("GET", "/api/cart", headers=self.auth_headers()) as resp:
            if expect_status(resp, 200, "cart") and "total" not in resp.js:
                resp.failure("cart answered 200 but the body has no 'total'")

    @tag("browse")
    @task(1)
    def home_page(self) -> None:
        # A static page is HTML, not JSON, so use the plain client with catch_response.
        with self.client.get("/", catch_response=True) as resp:
            if expect_status(resp, 200, "home page") and "<html" not in resp.text:
                resp.failure("home page answered 200 but the body is not an HTML page")

    @task(1)
    def health(self) -> None:
        with self.rest("GET", "/health") as resp:
            if expect_status(resp, 200, "health check") and resp.js.get("status") != "ok":
                resp.failure(f"health check answered 200 but not ok: {resp.text[:80]}")


# Debugging: `python tests/basic_test.py` runs one user through its tasks in this
# process, printing every request, so you can step through it with a debugger.
if __name__ == "__main__":
    try:
        run_single_user(ShopVisitor)
    except KeyboardInterrupt:
        pass  # Ctrl+C: stop quietly
