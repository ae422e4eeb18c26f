"""The demo target's GraphQL API (POST /graphql), built on graphql-core.

The schema is below in SDL. Things worth load testing are in it on purpose:
    * fields that need a login token (``cart``, ``me``, ``addToCart``);
    * a mutation that answers errors for bad input (``addToCart`` with quantity 0);
    * partial data: ``productsByIds`` answers the known products and, for every
      unknown id, a null in the list plus an error whose path points at it;
    * a slow field (``slowReport``) whose delay you choose;
    * a mutation that publishes to Redis (``postMessage``) when Redis is configured.

GraphQL answers most errors with HTTP 200 and an ``errors`` array: a load test
must look inside the body, not only at the status.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict

import gevent
from graphql import GraphQLError, build_schema, execute, parse, validate

SDL = """
type Product {
  id: ID!
  name: String!
  price: Float!
  stock: Int!
  category: String!
}

type CartItem {
  product: Product!
  quantity: Int!
}

type Cart {
  items: [CartItem!]!
  total: Float!
}

type User {
  username: String!
}

type AuthPayload {
  token: String!
  user: User!
}

type Message {
  channel: String!
  text: String!
  receivers: Int!
}

type Query {
  "Always 'ok': the cheapest possible query."
  health: String!
  "Up to 100 products, optionally of one category."
  products(limit: Int = 20, category: String): [Product!]!
  "One product, or null when the id is unknown."
  product(id: ID!): Product
  "Several products in the order asked; an unknown id gives null there and an error (partial data)."
  productsByIds(ids: [ID!]!): [Product]!
  "The logged-in user. Needs the Authorization header."
  me: User!
  "The logged-in user's cart. Needs the Authorization header."
  cart: Cart!
  "Waits delayMs milliseconds (at most 5000) before answering: a slow field."
  slowReport(delayMs: Int = 100): String!
}

type Mutation {
  "Log in; send the token back as 'Authorization: Bearer <token>'."
  login(username: String!, password: String!): AuthPayload!
  "Add a product to the cart. Errors for an unknown product or a quantity outside 1..99."
  addToCart(productId: ID!, quantity: Int!): Cart!
  "Publish a chat message to Redis (needs the demo started with a Redis URL)."
  postMessage(channel: String!, text: String!): Message!
}
"""

SCHEMA = build_schema(SDL)


def _error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


class GraphQLApi:
    """Parses, validates (cached per document text) and executes GraphQL requests."""

    CACHE_SIZE = 256

    def __init__(self, app) -> None:
        self.app = app
        self._documents: OrderedDict[str, object] = OrderedDict()
        self._install_resolvers()

    # -- resolvers -----------------------------------------------------------
    def _install_resolvers(self) -> None:
        from demo.app import PRODUCTS, PRODUCTS_BY_ID, HttpError  # late import: demo.app imports us

        state = self.app.state
        query = SCHEMA.query_type.fields
        mutation = SCHEMA.mutation_type.fields

        def need_user(info) -> str:
            try:
                return state.user_for(info.context["authorization"])
            except HttpError:
                raise _error(
                    "not logged in: send 'Authorization: Bearer <token>' from login", "UNAUTHENTICATED"
                ) from None

        def cart_view(user: str) -> dict:
            cart = state.cart_of(user)
            items = [{"product": PRODUCTS_BY_ID[i["product_id"]], "quantity": i["quantity"]} for i in cart["items"]]
            return {"items": items, "total": cart["total"]}

        def products(_root, _info, limit=20, category=None):
            if not 1 <= limit <= 100:
                raise _error("limit must be from 1 to 100", "BAD_USER_INPUT")
            chosen = [p for p in PRODUCTS if category is None or p["category"] == category]
            return chosen[:limit]

        def product(_root, _info, id):
            return PRODUCTS_BY_ID.get(int(id)) if str(id).isdigit() else None

        def products_by_ids(_root, _info, ids):
            if len(ids) > 100:
                raise _error("at most 100 ids at once", "BAD_USER_INPUT")
            found = []
            for raw in ids:
                item = PRODUCTS_BY_ID.get(int(raw)) if str(raw).isdigit() else None
                # An Exception as a list item becomes null plus an error at that item's path.
                found.append(item or _error(f"no product with id {raw!r}", "NOT_FOUND"))
            return found

        def slow_report(_root, _info, delayMs=100):
            delay = max(0, min(int(delayMs), 5000))
            started = time.perf_counter()
            gevent.sleep(delay / 1000.0)
            return f"report ready after {round((time.perf_counter() - started) * 1000)} ms"

        def login(_root, _info, username, password):
            try:
                token = state.login(username, password)
            except HttpError as error:
                raise _error(error.message, "UNAUTHENTICATED") from None
            return {"token": token, "user": {"username": username}}

        def add_to_cart(_root, info, productId, quantity):
            user = need_user(info)
            pid = int(productId) if str(productId).isdigit() else productId
            try:
                state.add_to_cart(user, pid, quantity)
            except HttpError as error:
                raise _error(error.message, "BAD_USER_INPUT") from None
            return cart_view(user)

        def post_message(_root, info, channel, text):
            if self.app.publisher is None:
                raise _error("chat is not configured: start the demo with a Redis URL", "NOT_CONFIGURED")
            from demo.chat import ChatError

            user = need_user(info)
            try:
                if hasattr(self.app.publisher, "publish"):
                    receivers = self.app.publisher.publish(channel, text, user)["receivers"]
                else:
                    receivers = self.app.publisher(channel, text, user)
            except ChatError as error:
                code = "BAD_USER_INPUT" if error.status == 400 else "UNAVAILABLE"
                raise _error(error.message, code) from None
            return {"channel": channel, "text": text, "receivers": receivers}

        query["health"].resolve = lambda _root, _info: "ok"
        query["products"].resolve = products
        query["product"].resolve = product
        query["productsByIds"].resolve = products_by_ids
        query["me"].resolve = lambda _root, info: {"username": need_user(info)}
        query["cart"].resolve = lambda _root, info: cart_view(need_user(info))
        query["slowReport"].resolve = slow_report
        mutation["login"].resolve = login
        mutation["addToCart"].resolve = add_to_cart
        mutation["postMessage"].resolve = post_message

    # -- HTTP ----------------------------------------------------------------
    def handle(self, environ) -> tuple[int, list, bytes]:
        from demo.app import HttpError, _json, _read_json

        try:
            body = _read_json(environ)
        except HttpError as error:
            return _json(400, {"errors": [{"message": error.message}]})
        source = body.get("query")
        variables = body.get("variables") or None
        if not isinstance(source, str) or not source.strip():
            return _json(400, {"errors": [{"message": "the request has no 'query' string"}]})
        if variables is not None and not isinstance(variables, dict):
            return _json(400, {"errors": [{"message": "'variables' must be a JSON object"}]})

        document, errors = self._document(source)
        if errors:
            # Syntax and validation errors: 400, like most GraphQL servers.
            return _json(400, {"errors": [e.formatted for e in errors]})
        context = {"authorization": environ.get("HTTP_AUTHORIZATION", "")}
        result = execute(
            SCHEMA,
            document,
            variable_values=variables,
            operation_name=body.get("operationName"),
            context_value=context,
        )
        payload = {"data": result.data}
        if result.errors:
            payload["errors"] = [e.formatted for e in result.errors]
        if result.data is None and result.errors and not _has_path(result.errors):
            # Errors before execution (bad variables, unknown operation name): 400.
            return _json(400, payload)
        return 200, [("Content-Type", "application/json")], json.dumps(payload, separators=(",", ":")).encode()

    def _document(self, source: str):
        cached = self._documents.get(source)
        if cached is not None:
            self._documents.move_to_end(source)
            return cached, None
        try:
            document = parse(source)
        except GraphQLError as error:
            return None, [error]
        errors = validate(SCHEMA, document)
        if errors:
            return None, errors
        self._documents[source] = document
        if len(self._documents) > self.CACHE_SIZE:
            self._documents.popitem(last=False)
        return document, None


def _has_path(errors) -> bool:
    return any(e.path for e in errors)
