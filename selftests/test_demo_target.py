"""The demo target app: its endpoints, its GraphQL API and its fault knobs, over real HTTP."""

import time

from selftests.conftest import PYTHON, http_json, run


def login(demo) -> str:
    status, body = http_json("POST", f"{demo.url}/api/login", {"username": "ann", "password": "demo-password"})
    assert status == 200
    return body["token"]


def test_rest_endpoints(demo):
    assert http_json("GET", f"{demo.url}/health") == (200, {"status": "ok"})
    status, body = http_json("GET", f"{demo.url}/api/products?limit=5")
    assert status == 200 and body["count"] == 5 and [p["id"] for p in body["products"]] == [1, 2, 3, 4, 5]
    assert http_json("GET", f"{demo.url}/api/products/7")[1]["id"] == 7
    assert http_json("GET", f"{demo.url}/api/products/999")[0] == 404
    assert http_json("POST", f"{demo.url}/api/login", {"username": "ann", "password": "wrong"})[0] == 401
    assert http_json("GET", f"{demo.url}/api/cart")[0] == 401  # no token


def test_cart_needs_the_token_and_checks_input(demo):
    import json
    import urllib.request

    token = login(demo)

    def post_cart(item):
        request = urllib.request.Request(
            f"{demo.url}/api/cart",
            data=json.dumps(item).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    status, cart = post_cart({"product_id": 3, "quantity": 2})
    assert status == 200 and cart["items"] == [{"product_id": 3, "quantity": 2}]
    assert post_cart({"product_id": 3, "quantity": 0})[0] == 400
    assert post_cart({"product_id": 12345, "quantity": 1})[0] == 400


def test_graphql_query_and_errors(demo):
    status, body = http_json("POST", f"{demo.url}/graphql", {"query": "{ products(limit: 2) { id name } }"})
    assert status == 200
    assert body["data"]["products"] == [{"id": "1", "name": "Product 1"}, {"id": "2", "name": "Product 2"}]
    # A field that needs a login answers 200 with errors: GraphQL's way.
    status, body = http_json("POST", f"{demo.url}/graphql", {"query": "{ cart { total } }"})
    assert status == 200 and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # A document that does not match the schema: 400.
    status, body = http_json("POST", f"{demo.url}/graphql", {"query": "{ nosuchfield }"})
    assert status == 400 and "nosuchfield" in body["errors"][0]["message"]


def test_graphql_login_mutation(demo):
    query = "mutation Login($u: String!, $p: String!) { login(username: $u, password: $p) { token user { username } } }"
    status, body = http_json(
        "POST", f"{demo.url}/graphql", {"query": query, "variables": {"u": "bo", "p": "demo-password"}}
    )
    assert status == 200 and body["data"]["login"]["user"]["username"] == "bo" and body["data"]["login"]["token"]


def test_fault_fail_endpoint_only_hits_that_endpoint(demo):
    demo.set_faults(fail_endpoint="/api/products", error_status=503)
    assert http_json("GET", f"{demo.url}/api/products/1")[0] == 503
    assert http_json("GET", f"{demo.url}/health")[0] == 200
    assert demo.stats()["injected_errors"] == {"GET /api/products/{id}": 1}


def test_fault_error_ratio_is_counted(demo):
    demo.set_faults(error_ratio=0.5)
    statuses = [http_json("GET", f"{demo.url}/health")[0] for _ in range(200)]
    injected = demo.stats()["injected_errors"]["GET /health"]
    assert statuses.count(500) == injected
    assert 50 < injected < 150


def test_fault_latency(demo):
    demo.set_faults(latency_ms=150)
    started = time.perf_counter()
    http_json("GET", f"{demo.url}/health")
    assert time.perf_counter() - started >= 0.15


def test_bad_fault_values_are_refused_and_nothing_changes(demo):
    status, body = http_json("POST", f"{demo.url}/__faults", {"latency_ms": 10, "error_ratio": 2})
    assert status == 400 and "error_ratio=2" in body["error"]
    assert http_json("GET", f"{demo.url}/__faults")[1]["latency_ms"] == 0


def test_bad_fault_flag_at_start_is_one_line_exit_2():
    result = run([PYTHON, "-m", "demo", "--port", "0", "--error-ratio", "1.5"], timeout=20)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: error_ratio='1.5': a number from 0 to 1 is needed"
