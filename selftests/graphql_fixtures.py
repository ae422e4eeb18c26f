"""Helpers for the GraphQL self-tests: a bare Locust environment with a real HTTP client."""

from __future__ import annotations

from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment
from locust.event import Events

from dataclasses import dataclass, field

from utils.graphql_client import GraphQLClient


@dataclass
class Recorder:
    """A bare Locust environment: its real statistics, plus every request event as it was fired."""

    environment: Environment
    events: list[dict] = field(default_factory=list)

    def on_request(self, **kwargs) -> None:
        self.events.append(kwargs)

    def client(self, base_url: str, **options) -> GraphQLClient:
        session = FastHttpSession(base_url, self.environment.events.request, user=None)
        return GraphQLClient(session, **options)

    def rows(self) -> dict[str, tuple[int, int]]:
        """{'query GetProducts': (requests, failures)} from Locust's own statistics."""
        return {
            name: (entry.num_requests, entry.num_failures)
            for (name, _method), entry in self.environment.stats.entries.items()
        }

    def failure_rows(self) -> set[tuple[str, str, str, int]]:
        """(method, name, error, occurrences) as in locust_failures.csv."""
        return {
            (e.method, e.name, e.parse_error(e.error), e.occurrences) for e in self.environment.stats.errors.values()
        }


def recorder() -> Recorder:
    environment = Environment(events=Events())
    environment.create_local_runner()  # wires the request event to environment.stats
    rec = Recorder(environment)
    environment.events.request.add_listener(rec.on_request)
    return rec
