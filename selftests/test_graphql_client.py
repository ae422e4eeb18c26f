"""utils/graphql_client.py: documents, schema checks and every failure rule, against the real demo target.

The client runs in this process on Locust's real FastHttpSession and a bare Locust
environment, so each test can assert the exact statistics rows, failure rows and
request events, and compare them with what the demo target counted on its side.
"""

import json
import uuid

import pytest

from demo.graphql_api import SDL
from selftests.conftest import free_port, http_json
from selftests.graphql_fixtures import recorder
from utils.graphql_client import (
    GraphQLDocumentError,
    check_operations,
    parse_operations,
    read_operations,
    schema_from_file,
    schema_from_introspection,
)

SHOP = read_operations("tests/graphql/shop.graphql")


@pytest.fixture
def gdemo(demo):
    """The demo target; also resets the error_body knob, which the shared fixture does not know."""
    demo.set_faults(error_body="json")
    yield demo
    demo.set_faults(error_body="json")


def graphql_requests(demo) -> int:
    return demo.stats()["requests"].get("POST /graphql", 0)


def failure(name: str, message: str, occurrences: int) -> tuple:
    return ("GraphQL", name, f"GraphQLFailure({message!r})", occurrences)


# ---------------------------------------------------------------------------- documents


def test_shop_document_has_every_operation_with_its_stats_name():
    assert {op.stats_name for op in SHOP.values()} == {
        "mutation Login",
        "query GetProducts",
        "query GetProduct",
        "query CompareProducts",
        "query GetCart",
        "mutation AddToCart",
        "query SalesReport",
    }
    # Each operation is sent alone, with only the fragments it uses.
    body = json.loads(SHOP["GetProduct"].body({"id": "7"}))
    assert body["operationName"] == "GetProduct" and body["variables"] == {"id": "7"}
    assert "fragment ProductCard" in body["query"] and "GetProducts" not in body["query"]
    assert "fragment" not in SHOP["Login"].query
    assert json.loads(SHOP["GetCart"].body()) == {"query": SHOP["GetCart"].query, "operationName": "GetCart"}
    assert SHOP["GetProduct"].required == {"id"} and SHOP["GetProducts"].required == set()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "query GetProducts {\n  products { id }\n}\n\nquery GetCart {\n  cart { total \n}\n",
            "shop.graphql:8:1: syntax error in query GetCart: Expected Name, found <EOF>.",
        ),
        ("query Q { products(limit: ) { id } }", "shop.graphql:1:27: syntax error in query Q: Unexpected ')'."),
        (
            "{ products { id } }",
            "shop.graphql:1: every operation needs a name (it names the statistics row), "
            "for example: query GetProducts { ... }",
        ),
        (
            "query A { health }\nquery A { health }",
            "shop.graphql:2: a second operation named A (the first is "
            "at shop.graphql:1): names must be unique, they name the statistics rows",
        ),
        ("query Q { products { ...Card } }", "shop.graphql:1:25: query Q: Unknown fragment 'Card'."),
        (
            "query Q { product(id: $id) { id } }",
            "shop.graphql:1:23: query Q: Variable '$id' is not defined by operation 'Q'.",
        ),
        (
            "subscription S { health }",
            "shop.graphql:1: subscription S: subscriptions need a websocket, this client "
            "sends queries and mutations over HTTP",
        ),
    ],
)
def test_bad_documents_are_refused_with_one_line_naming_the_place(text, message):
    with pytest.raises(GraphQLDocumentError) as caught:
        parse_operations(text, "shop.graphql")
    assert str(caught.value) == message


def test_a_missing_document_file_is_one_line(tmp_path):
    with pytest.raises(GraphQLDocumentError, match=r"nope\.graphql: no such GraphQL document"):
        read_operations(tmp_path / "nope.graphql")


# ------------------------------------------------------------------------ schema checks

WRONG = "query GetReviews {\n  products {\n    id\n    reviews\n  }\n}\n"


def test_schema_file_accepts_the_shop_and_names_a_field_the_schema_lacks(tmp_path):
    schema_file = tmp_path / "schema.graphql"
    schema_file.write_text(SDL)
    schema = schema_from_file(schema_file)
    check_operations(SHOP, schema, "schema.graphql")  # no error
    with pytest.raises(GraphQLDocumentError) as caught:
        check_operations(parse_operations(WRONG, "wrong.graphql"), schema, "schema.graphql")
    assert str(caught.value) == (
        "wrong.graphql:4:5: query GetReviews does not match the schema (schema.graphql): "
        "Cannot query field 'reviews' on type 'Product'."
    )
    schema_file.write_text("type Query { broken(: Int }")
    with pytest.raises(GraphQLDocumentError, match="is not a GraphQL schema"):
        schema_from_file(schema_file)


def test_introspection_is_one_request_and_catches_the_wrong_document(gdemo):
    schema = schema_from_introspection(f"{gdemo.url}/graphql")
    assert graphql_requests(gdemo) == 1
    check_operations(SHOP, schema, "introspection")
    with pytest.raises(GraphQLDocumentError, match="query GetReviews does not match the schema"):
        check_operations(parse_operations(WRONG, "wrong.graphql"), schema, "introspection")
    assert graphql_requests(gdemo) == 1


def test_introspection_of_a_dead_target_is_one_line():
    with pytest.raises(GraphQLDocumentError, match=r"^cannot read the GraphQL schema from http://127\.0\.0\.1:\d+/"):
        schema_from_introspection(f"http://127.0.0.1:{free_port()}/graphql")


# ------------------------------------------------------------------- the success path


def test_each_operation_is_its_own_row_with_one_event_per_call(gdemo):
    rec = recorder()
    client = rec.client(gdemo.url)
    user = f"ann-{uuid.uuid4().hex[:8]}"  # a cart of our own on the shared demo target
    login = client.execute(SHOP["Login"], {"username": user, "password": "demo-password"})
    assert login.ok and login.data["login"]["user"] == {"username": user}
    client.set_token(login.data["login"]["token"])
    for _ in range(3):
        assert client.execute(SHOP["GetProducts"], {"limit": 5}).ok
    added = client.execute(SHOP["AddToCart"], {"productId": "4", "quantity": 2})
    assert added.data["addToCart"]["items"] == [{"quantity": 2, "product": {"id": "4"}}]
    cart = client.execute(SHOP["GetCart"])
    assert cart.ok and cart.data["me"]["username"] == user
    assert rec.rows() == {
        "mutation Login": (1, 0),
        "query GetProducts": (3, 0),
        "mutation AddToCart": (1, 0),
        "query GetCart": (1, 0),
    }
    assert len(rec.events) == 6 == graphql_requests(gdemo)
    assert {e["request_type"] for e in rec.events} == {"GraphQL"}
    assert all(e["response_length"] > 0 and e["response_time"] > 0 for e in rec.events)


def test_a_check_in_a_with_block_changes_the_verdict_and_still_fires_once(gdemo):
    rec = recorder()
    client = rec.client(gdemo.url)
    with client.execute(SHOP["GetProducts"], {"limit": 3}, catch_response=True) as result:
        if len(result.data["products"]) != 20:
            result.failure("expected 20 products")
    with client.execute(SHOP["GetProducts"], {"limit": 3}, catch_response=True) as result:
        result.data["no such key"]  # an error in the check is a failure, not a crash
    with client.execute(SHOP["GetProducts"], {"limit": 3}, name="products (custom name)", catch_response=True):
        pass
    assert rec.rows() == {"query GetProducts": (2, 2), "products (custom name)": (1, 0)}
    assert rec.failure_rows() == {
        failure("query GetProducts", "expected 20 products", 1),
        failure("query GetProducts", "KeyError in the check: 'no such key'", 1),
    }
    assert len(rec.events) == 3


# ----------------------------------------------------------------- faults, one by one


def test_errors_in_a_200_are_a_failure(gdemo):
    rec = recorder()
    result = rec.client(gdemo.url).execute(SHOP["GetCart"])  # no token: the server answers 200 + errors
    assert result.status_code == 200 and result.data is None and not result.ok
    assert result.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
    message = "errors: not logged in: send 'Authorization: Bearer <token>' from login (path: me)"
    assert rec.failure_rows() == {failure("query GetCart", message, 1)}


def test_partial_data_fails_by_default_and_passes_when_accepted(gdemo):
    rec = recorder()
    strict = rec.client(gdemo.url)
    lenient = rec.client(gdemo.url, partial_data="accept")
    result = strict.execute(SHOP["CompareProducts"], {"ids": ["1", "999"]}, name="strict")
    assert result.data["productsByIds"][1] is None and not result.ok
    accepted = lenient.execute(SHOP["CompareProducts"], {"ids": ["1", "999"]}, name="accept")
    assert accepted.ok and accepted.errors[0]["path"] == ["productsByIds", 1]
    assert accepted.data["productsByIds"][0]["id"] == "1"
    assert rec.rows() == {"strict": (1, 1), "accept": (1, 0)}
    message = "partial data with errors: no product with id '999' (path: productsByIds.1)"
    assert rec.failure_rows() == {failure("strict", message, 1)}


def test_an_operation_the_schema_lacks_is_a_failure_without_a_schema_check(gdemo):
    rec = recorder()
    wrong = parse_operations(WRONG, "wrong.graphql")["GetReviews"]
    assert not rec.client(gdemo.url).execute(wrong).ok
    message = "HTTP 400: Cannot query field 'reviews' on type 'Product'."
    assert rec.failure_rows() == {failure("query GetReviews", message, 1)}


def test_unknown_or_missing_variables_are_counted_and_not_sent(gdemo):
    rec = recorder()
    client = rec.client(gdemo.url)
    assert not client.execute(SHOP["GetProducts"], {"limt": 5}).ok
    with client.execute(SHOP["GetProduct"], {}, catch_response=True) as result:
        assert not result.sent
        result.success()  # cannot turn a request that was not sent into a success
    assert not result.ok
    assert rec.failure_rows() == {
        failure(
            "query GetProducts", "not sent: unknown variable $limt (query GetProducts declares $category, $limit)", 1
        ),
        failure("query GetProduct", "not sent: the required variable $id is missing", 1),
    }
    assert graphql_requests(gdemo) == 0


def test_a_500_with_json_errors_carries_the_first_message(gdemo):
    gdemo.set_faults(fail_endpoint="/graphql", error_status=500, error_body="graphql")
    rec = recorder()
    client = rec.client(gdemo.url)
    for _ in range(4):
        client.execute(SHOP["GetProducts"])
    assert rec.rows() == {"query GetProducts": (4, 4)}
    assert rec.failure_rows() == {failure("query GetProducts", "HTTP 500: injected fault (POST /graphql)", 4)}


def test_a_502_html_page_is_a_failure_with_the_start_of_the_page(gdemo):
    gdemo.set_faults(fail_endpoint="/graphql", error_status=502, error_body="html")
    rec = recorder()
    client = rec.client(gdemo.url)
    client.execute(SHOP["GetProducts"])
    client.execute(SHOP["SalesReport"])
    page = "<html> <head><title>502 Bad Gateway</title></head> <body> <center><h1>502 Bad Gateway</..."
    assert rec.failure_rows() == {
        failure("query GetProducts", f"HTTP 502, expected 2xx: text/html {page}", 1),
        failure("query SalesReport", f"HTTP 502, expected 2xx: text/html {page}", 1),
    }
    assert gdemo.stats()["injected_errors"] == {"POST /graphql": 2}


def test_a_200_that_is_not_json_is_a_failure(gdemo):
    # A login page or a proxy answering 200 in front of the API.
    gdemo.set_faults(fail_endpoint="/graphql", error_status=200, error_body="text")
    rec = recorder()
    rec.client(gdemo.url).execute(SHOP["GetProducts"])
    message = "HTTP 200 but the body is not JSON: text/plain injected fault (POST /graphql)"
    assert rec.failure_rows() == {failure("query GetProducts", message, 1)}


def test_a_200_json_answer_without_data_is_a_failure(gdemo):
    gdemo.set_faults(fail_endpoint="/graphql", error_status=200, error_body="json")
    rec = recorder()
    rec.client(gdemo.url).execute(SHOP["GetProducts"])
    message = "HTTP 200 but the answer has no data and no errors"
    assert rec.failure_rows() == {failure("query GetProducts", message, 1)}


def test_connection_refused_is_one_failure_per_call():
    rec = recorder()
    client = rec.client(f"http://127.0.0.1:{free_port()}")
    for _ in range(3):
        result = client.execute(SHOP["GetProducts"])
        assert result.status_code == 0 and not result.ok
    message = "no answer from the target ([Errno 111] Connection refused) - is it running?"
    assert rec.failure_rows() == {failure("query GetProducts", message, 3)}
    assert len(rec.events) == 3


def test_the_error_body_knob_refuses_an_unknown_shape(gdemo):
    status, body = http_json("POST", f"{gdemo.url}/__faults", {"error_body": "xml", "error_status": 502})
    assert status == 400 and body["error"] == "error_body='xml': one of json, graphql, html, text is needed"
    assert http_json("GET", f"{gdemo.url}/__faults")[1]["error_status"] == 500  # nothing half-applied
