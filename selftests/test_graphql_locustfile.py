"""tests/graphql_test.py run for real: headless Locust against the demo target, clean and with faults."""

import json

import pytest

from selftests.conftest import PYTHON, REPO_ROOT, assert_no_traceback, helper, run, run_folder

EXPECTED_ROWS = {
    "mutation Login",
    "query GetProducts",
    "query GetProduct",
    "query CompareProducts",
    "mutation AddToCart",
    "mutation AddToCart (quantity 0)",
    "query GetCart",
    "query SalesReport",
}
NEEDS_LOGIN = {"mutation AddToCart", "mutation AddToCart (quantity 0)", "query GetCart"}
HTML_502 = (
    "HTTP 502, expected 2xx: text/html <html> <head><title>502 Bad Gateway</title></head> <body> "
    "<center><h1>502 Bad Gateway</..."
)


@pytest.fixture
def gdemo(demo):
    demo.set_faults(error_body="json")
    yield demo
    demo.set_faults(error_body="json")


def final(folder) -> tuple[dict, list]:
    data = json.loads((folder / "final_stats.json").read_text())
    rows = {r["name"]: r for r in data["rows"]}
    assert {r["type"] for r in data["rows"]} == {"GraphQL"}
    return rows, data["errors"]


def run_graphql(demo, tmp_path, users="20", duration="6s", env=None):
    # --stop-timeout lets each user finish its request when time is up, so every
    # request the demo target saw is also in Locust's figures.
    return helper(
        "run", "graphql", "-H", demo.url, "-u", users, "-r", users, "-t", duration, "--reports-dir", str(tmp_path),
        "--", "--only-summary", "--stop-timeout", "5", env=env,
    )  # fmt: skip


def test_locustfile_loads_and_lists_its_user():
    result = run([PYTHON, "-m", "locust", "-f", "tests/graphql_test.py", "--list"], timeout=60)
    assert result.returncode == 0, result.output
    assert "GraphQLShopper" in result.stdout


def test_clean_run_checked_by_introspection_has_every_row_and_no_failures(gdemo, tmp_path):
    result = run_graphql(gdemo, tmp_path, users="50", duration="8s", env={"GRAPHQL_SCHEMA": "introspect"})
    assert result.returncode == 0, result.output
    assert_no_traceback(result)
    rows, errors = final(run_folder(result.stdout))
    assert set(rows) == EXPECTED_ROWS
    for name in EXPECTED_ROWS:
        assert rows[name]["count"] > 0 and rows[name]["failures"] == 0, rows[name]
    assert errors == []
    assert rows["mutation Login"]["count"] == 50  # one login per user
    assert rows["query SalesReport"]["min"] >= 200  # the slow field
    # The target served every request Locust counted, plus ONE introspection query for the run.
    served = gdemo.stats()["requests"]["POST /graphql"]
    assert served == sum(r["count"] for r in rows.values()) + 1
    assert "RESULT: passed" in result.stdout


def test_a_login_that_fails_does_not_spin(gdemo, tmp_path):
    result = run_graphql(gdemo, tmp_path, users="10", duration="6s", env={"LOGIN_PASSWORD": "wrong-password"})
    assert result.returncode == 3, result.output  # some requests failed: the logins
    assert_no_traceback(result)
    rows, errors = final(run_folder(result.stdout))
    login = rows["mutation Login"]
    # Each user tries at once, then backs off 2 s, then 4 s: at most 3 tries in 6 s.
    assert 10 <= login["count"] <= 30 and login["failures"] == login["count"]
    assert not NEEDS_LOGIN & set(rows)  # nothing that needs the token was sent
    for name in set(rows) - {"mutation Login"}:
        assert rows[name]["failures"] == 0, rows[name]
    assert errors == [
        {
            "method": "GraphQL",
            "name": "mutation Login",
            "error": "GraphQLFailure('errors: wrong username or password (path: login)')",
            "occurrences": login["count"],
        }
    ]
    # No password in the output.
    assert "wrong-password" not in result.output


def test_a_502_html_gateway_fails_every_request_with_one_row_per_operation(gdemo, tmp_path):
    gdemo.set_faults(fail_endpoint="/graphql", error_status=502, error_body="html")
    result = run_graphql(gdemo, tmp_path, users="10", duration="4s")
    assert result.returncode == 4, result.output  # nothing succeeded
    assert_no_traceback(result)
    rows, errors = final(run_folder(result.stdout))
    assert rows and not NEEDS_LOGIN & set(rows)
    for row in rows.values():
        assert row["failures"] == row["count"] > 0, row
    assert sorted((e["name"], e["error"], e["occurrences"]) for e in errors) == sorted(
        (name, f"GraphQLFailure({HTML_502!r})", row["count"]) for name, row in rows.items()
    )
    assert gdemo.stats()["injected_errors"]["POST /graphql"] == sum(r["count"] for r in rows.values())


# -------------------------------------------------------- documents checked before load

LOCUSTFILE = """
from locust import constant, task

import sys

sys.path.insert(0, {repo!r})

from utils.config import get_settings
from utils.graphql_client import GraphQLUser, load_operations

settings = get_settings()
OPS = load_operations({document!r}, schema=settings.graphql_schema, endpoint=settings.graphql_path)


class Reviewer(GraphQLUser):
    wait_time = constant(0.1)

    @task
    def reviews(self):
        self.graphql.execute(OPS["GetReviews"])
"""


def run_document(demo, tmp_path, document: str, env: dict):
    (tmp_path / "ops.graphql").write_text(document)
    locustfile = tmp_path / "reviews_test.py"
    locustfile.write_text(LOCUSTFILE.format(repo=str(REPO_ROOT), document=str(tmp_path / "ops.graphql")))
    command = [PYTHON, "-m", "locust", "-f", str(locustfile), "--headless", "-H", demo.url, "-u", "2", "-t", "3s"]
    return run(command, timeout=60, env=env)


WRONG = "query GetReviews {\n  products {\n    id\n    reviews\n  }\n}\n"
WRONG_LINE = "query GetReviews does not match the schema ({schema}): Cannot query field 'reviews' on type 'Product'."


def test_schema_file_stops_a_wrong_document_before_any_request(gdemo, tmp_path):
    # Save the target's schema the way the docs say, then check against the file: no request at all.
    saved = run([PYTHON, "-m", "utils.graphql_client", f"{gdemo.url}/graphql"], timeout=60)
    assert saved.returncode == 0, saved.output
    assert "productsByIds(ids: [ID!]!): [Product]!" in saved.stdout
    (tmp_path / "schema.graphql").write_text(saved.stdout)
    gdemo.reset()
    result = run_document(gdemo, tmp_path, WRONG, {"GRAPHQL_SCHEMA": str(tmp_path / "schema.graphql")})
    assert result.returncode == 2, result.output
    assert_no_traceback(result)
    assert f"error: {tmp_path}/ops.graphql:4:5: {WRONG_LINE.format(schema=tmp_path / 'schema.graphql')}" in (
        result.stderr.splitlines()
    )
    assert gdemo.stats()["requests"] == {}


def test_introspection_stops_a_wrong_document_after_one_query(gdemo, tmp_path):
    result = run_document(gdemo, tmp_path, WRONG, {"GRAPHQL_SCHEMA": "introspect"})
    assert result.returncode == 2, result.output
    assert_no_traceback(result)
    schema = f"introspection of {gdemo.url}/graphql"
    assert f"error: {tmp_path}/ops.graphql:4:5: {WRONG_LINE.format(schema=schema)}" in result.stderr.splitlines()
    assert gdemo.stats()["requests"] == {"POST /graphql": 1}


def test_a_syntax_error_stops_locust_with_one_line(gdemo, tmp_path):
    broken = "query GetReviews {\n  products {\n    id\n  \n}\n"
    result = run_document(gdemo, tmp_path, broken, {})
    assert result.returncode == 2, result.output
    assert_no_traceback(result)
    line = f"error: {tmp_path}/ops.graphql:6:1: syntax error in query GetReviews: Expected Name, found <EOF>."
    assert line in result.stderr.splitlines()
    assert gdemo.stats()["requests"] == {}


def test_a_bad_graphql_setting_is_one_line(tmp_path):
    result = helper("run", "graphql", "--dry-run", env={"GRAPHQL_PARTIAL_DATA": "sometimes"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: GRAPHQL_PARTIAL_DATA='sometimes' is not valid: one of fail, accept is needed, "
        "for example GRAPHQL_PARTIAL_DATA=fail"
    )
