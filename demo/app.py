"""The demo target: a small shop back end to practise load tests on.

It looks like the team's real back end: a REST API, a GraphQL API and (in
demo/graphql_api.py and the chat endpoint) the places that publish to Redis.

REST endpoints (JSON unless said otherwise):
    GET  /health                 {"status": "ok"}
    POST /api/login              {"username", "password"} -> {"token"}; 401 on a bad password
    GET  /api/products           ?limit=N -> {"products": [...], "count": N}
    GET  /api/products/<id>      one product; 404 for an unknown id
    GET  /api/cart               the caller's cart (needs "Authorization: Bearer <token>")
    POST /api/cart               {"product_id", "quantity"} -> the cart (needs the token)
    GET  /  and /static/index.html   a static HTML page
    POST /graphql                GraphQL (see demo/graphql_api.py)
    POST /api/chat               {"channel", "text"} -> {"channel", "seq", "receivers"}: publishes
                                 to Redis (needs the token, and the demo started with --redis-url)

Admin endpoints (never slowed down or failed by the fault knobs):
    GET/POST /__faults           read or change the fault knobs (demo/faults.py)
    GET      /__stats            requests and injected errors counted per route
    POST     /__stats/reset      zero those counters

It is a plain WSGI application (no framework) so that it stays much faster than
the load generator; demo/server.py serves it with gevent.
"""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path

import gevent

from demo import graphql_api
from demo.faults import FaultCounter, FaultError, Faults, injected_answer, should_fail

STATIC_PAGE = (Path(__file__).parent / "static" / "index.html").read_bytes()

# The password every demo account uses. It is a demo, not a secret: the kit's
# LOGIN_PASSWORD default matches it. Override with DEMO_PASSWORD.
DEFAULT_PASSWORD = "demo-password"

PRODUCTS = [
    {
        "id": i,
        "name": f"Product {i}",
        "price": round(4.99 + (i * 7919 % 9500) / 100, 2),
        "stock": (i * 31) % 50,
        "category": ("books", "games", "music", "garden")[i % 4],
    }
    for i in range(1, 101)
]
PRODUCTS_BY_ID = {p["id"]: p for p in PRODUCTS}

JSON = [("Content-Type", "application/json")]


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ShopState:
    """Tokens and carts, kept in memory (a restart forgets them)."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.tokens: dict[str, str] = {}
        self.carts: dict[str, dict[int, int]] = {}
        self._lock = threading.Lock()

    def login(self, username: str, password: str) -> str:
        if not username or password != self.password:
            raise HttpError(401, "wrong username or password")
        token = secrets.token_hex(16)
        with self._lock:
            self.tokens[token] = username
        return token

    def user_for(self, authorization: str) -> str:
        token = authorization[7:] if authorization.startswith("Bearer ") else ""
        user = self.tokens.get(token)
        if user is None:
            raise HttpError(401, "missing or unknown token: log in first (POST /api/login)")
        return user

    def add_to_cart(self, user: str, product_id, quantity) -> dict:
        if not isinstance(product_id, int) or product_id not in PRODUCTS_BY_ID:
            raise HttpError(400, f"unknown product_id {product_id!r}")
        if not isinstance(quantity, int) or not 1 <= quantity <= 99:
            raise HttpError(400, "quantity must be a whole number from 1 to 99")
        with self._lock:
            cart = self.carts.setdefault(user, {})
            cart[product_id] = cart.get(product_id, 0) + quantity
        return self.cart_of(user)

    def cart_of(self, user: str) -> dict:
        cart = dict(self.carts.get(user, {}))
        items = [{"product_id": pid, "quantity": qty} for pid, qty in sorted(cart.items())]
        total = sum(PRODUCTS_BY_ID[pid]["price"] * qty for pid, qty in cart.items())
        return {"user": user, "items": items, "total": round(total, 2)}


class DemoApp:
    """The WSGI application. One instance per server."""

    def __init__(self, faults: Faults | None = None, password: str = DEFAULT_PASSWORD, publisher=None) -> None:
        self.faults = faults or Faults()
        self.counter = FaultCounter()
        self.state = ShopState(password)
        # publisher(channel, text) -> receivers, or None: set by demo/server.py when Redis is configured.
        self.publisher = publisher
        self.graphql = graphql_api.GraphQLApi(self)

    # -- WSGI entry point ----------------------------------------------------
    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO") or "/"
        if path.startswith("/__"):
            status, headers, body = self.admin(method, path, environ)
        else:
            status, headers, body = self.serve(method, path, environ)
        headers = headers + [("Content-Length", str(len(body)))]
        start_response(_STATUS_TEXT.get(status, f"{status} Status"), headers)
        return [body]

    def serve(self, method: str, path: str, environ) -> tuple[int, list, bytes]:
        route = _route_key(method, path)
        injected = should_fail(self.faults, path)
        self.counter.count(route, injected, marked=environ.get("HTTP_X_LOAD_TEST") == "true")
        if self.faults.latency_ms:
            gevent.sleep(self.faults.latency_ms / 1000.0)
        if injected:
            return injected_answer(self.faults, route)
        try:
            return self.route(method, path, environ)
        except HttpError as error:
            return _json(error.status, {"error": error.message})

    def route(self, method: str, path: str, environ) -> tuple[int, list, bytes]:
        if path == "/health" and method == "GET":
            return _json(200, {"status": "ok"})
        if path in ("/", "/static/index.html") and method == "GET":
            return 200, [("Content-Type", "text/html; charset=utf-8")], STATIC_PAGE
        if path == "/api/login" and method == "POST":
            body = _read_json(environ)
            token = self.state.login(str(body.get("username", "")), str(body.get("password", "")))
            return _json(200, {"token": token, "username": body.get("username")})
        if path == "/api/products" and method == "GET":
            limit = _query_int(environ, "limit", 20, 1, 100)
            return _json(200, {"products": PRODUCTS[:limit], "count": limit})
        if path.startswith("/api/products/") and method == "GET":
            raw = path[len("/api/products/") :]
            product = PRODUCTS_BY_ID.get(int(raw)) if raw.isdigit() else None
            if product is None:
                raise HttpError(404, f"no product with id {raw!r}")
            return _json(200, product)
        if path == "/api/cart":
            user = self.state.user_for(environ.get("HTTP_AUTHORIZATION", ""))
            if method == "GET":
                return _json(200, self.state.cart_of(user))
            if method == "POST":
                body = _read_json(environ)
                return _json(200, self.state.add_to_cart(user, body.get("product_id"), body.get("quantity")))
        if path == "/graphql" and method == "POST":
            return self.graphql.handle(environ)
        if path == "/api/chat" and method == "POST":
            return self.post_chat(environ)
        if path in ("/health", "/api/login", "/api/products", "/graphql", "/api/cart", "/api/chat"):
            raise HttpError(405, f"{method} is not allowed on {path}")
        raise HttpError(404, f"nothing at {path}")

    def post_chat(self, environ) -> tuple[int, list, bytes]:
        """POST /api/chat {"channel", "text"} -> {"channel", "seq", "receivers"}: publishes to Redis."""
        from demo.chat import ChatError

        user = self.state.user_for(environ.get("HTTP_AUTHORIZATION", ""))
        if self.publisher is None:
            raise HttpError(503, "chat is not configured: start the demo with --redis-url")
        body = _read_json(environ)
        channel, text = body.get("channel"), body.get("text")
        try:
            if not hasattr(self.publisher, "publish"):  # a plain publisher(channel, text, user) -> receivers
                return _json(200, {"channel": channel, "receivers": self.publisher(channel, text, user)})
            return _json(200, self.publisher.publish(channel, text, user))
        except ChatError as error:
            raise HttpError(error.status, error.message) from None

    # -- admin ---------------------------------------------------------------
    def admin(self, method: str, path: str, environ) -> tuple[int, list, bytes]:
        try:
            if path == "/__faults":
                if method == "POST":
                    self.faults.update(_read_json(environ))
                return _json(200, self.faults.as_dict())
            if path == "/__stats" and method == "GET":
                return _json(200, self.counter.as_dict())
            if path == "/__stats/reset" and method == "POST":
                self.counter.reset()
                return _json(200, self.counter.as_dict())
        except FaultError as error:
            return _json(400, {"error": str(error)})
        except HttpError as error:
            return _json(error.status, {"error": error.message})
        return _json(404, {"error": f"nothing at {path}"})


# -- small helpers -------------------------------------------------------------
_STATUS_TEXT = {
    200: "200 OK",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Unavailable",
    504: "504 Gateway Timeout",
}


def _json(status: int, payload) -> tuple[int, list, bytes]:
    return status, JSON, json.dumps(payload, separators=(",", ":")).encode()


def _read_json(environ) -> dict:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise HttpError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object")
    return body


def _query_int(environ, key: str, default: int, low: int, high: int) -> int:
    for part in environ.get("QUERY_STRING", "").split("&"):
        name, _, value = part.partition("=")
        if name == key:
            if not value.isdigit() or not low <= int(value) <= high:
                raise HttpError(400, f"{key} must be a whole number from {low} to {high}")
            return int(value)
    return default


def _route_key(method: str, path: str) -> str:
    """'GET /api/products/17' -> 'GET /api/products/{id}': a bounded set of names."""
    if path.startswith("/api/products/"):
        return f"{method} /api/products/{{id}}"
    return f"{method} {path}"
