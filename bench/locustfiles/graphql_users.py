"""Users for bench/bench_graphql.py: the same GraphQL request three ways, no think time.

    GraphQLFast      utils.graphql_client on FastHttpUser (what tests/graphql_test.py uses)
    GraphQLRequests  utils.graphql_client on HttpUser (the requests library)
    PlainPost        a bare FastHttpUser POST of the very same bytes: no checks (the baseline)

Pick one by class name: locust -f bench/locustfiles/graphql_users.py PlainPost
"""

from locust import FastHttpUser, HttpUser, constant, task

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from utils.graphql_client import GraphQLClient, GraphQLUser, read_operations

OPERATION = read_operations(Path(__file__).resolve().parents[2] / "tests/graphql/shop.graphql")["GetProducts"]
VARIABLES = {"limit": 5}
BODY = OPERATION.body(VARIABLES)
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class GraphQLFast(GraphQLUser):
    wait_time = constant(0)

    @task
    def products(self) -> None:
        self.graphql.execute(OPERATION, VARIABLES)


class GraphQLRequests(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.graphql = GraphQLClient(self.client)

    @task
    def products(self) -> None:
        self.graphql.execute(OPERATION, VARIABLES)


class PlainPost(FastHttpUser):
    wait_time = constant(0)

    @task
    def products(self) -> None:
        self.client.post("/graphql", data=BODY, headers=HEADERS, name="query GetProducts")
