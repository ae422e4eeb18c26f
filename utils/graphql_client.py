"""GraphQL for Locust users: gql documents, sent through Locust's own HTTP client.

    OPS = load_operations("tests/graphql/shop.graphql")      # parsed once, at import

    class Shopper(GraphQLUser):
        @task
        def browse(self):
            result = self.graphql.execute(OPS["GetProducts"], {"limit": 20})

What it does
  * Documents are parsed once, with gql. A syntax error stops Locust before any
    load with one line naming the file, line, column and operation (exit code 2).
  * Optional schema check before the run: against a schema file (SDL), or by one
    introspection query per run (on the master or the local runner, never per user).
  * Requests go through the user's own Locust HTTP client (FastHttpUser's by
    default): same connection pool, same speed, same statistics.
  * One statistics row per operation, named "<operation type> <operation name>"
    ("query GetProducts"), request type "GraphQL"; exactly one request event per
    ``execute()``.
  * A request fails when: no HTTP answer (connection refused, timeout, reset); a
    status outside 2xx; a body that is not JSON; a non-empty ``errors`` array (also
    next to partial ``data``, unless ``partial_data="accept"``); no ``data``; a
    variable the operation does not declare, or a required one missing (not sent).
    The failure message carries the first GraphQL error's message and path.
"""

from __future__ import annotations

from locust import FastHttpUser, events
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS
from locust.exception import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopUser

import json
import logging
import re
import sys
from pathlib import Path

from gql import Client, gql
from gql.transport.exceptions import TransportError
from gql.transport.requests import RequestsHTTPTransport
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    KnownFragmentNamesRule,
    NoFragmentCyclesRule,
    NonNullTypeNode,
    NoUndefinedVariablesRule,
    NoUnusedFragmentsRule,
    NoUnusedVariablesRule,
    OperationDefinitionNode,
    UniqueFragmentNamesRule,
    UniqueVariableNamesRule,
    build_schema,
    validate,
)
from graphql.language import print_ast
from graphql.utilities import separate_operations
from requests.exceptions import RequestException

from utils.config import REPO_ROOT, ConfigError, redact_url

log = logging.getLogger(__name__)

PARTIAL_DATA_POLICIES = ("fail", "accept")
_FLOW_CONTROL = (StopUser, InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately)


class GraphQLDocumentError(ConfigError):
    """A document cannot be used: syntax error, no operation name, not in the schema. One line."""


class GraphQLFailure(Exception):
    """The reason a GraphQL request failed; its text is the row in Locust's failure table."""


# ---------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------


class Operation:
    """One named query or mutation, parsed once, with its request body prepared."""

    __slots__ = ("_body_prefix", "document", "line", "name", "origin", "query", "required", "type", "variables")

    def __init__(self, node: OperationDefinitionNode, document: DocumentNode, origin: str) -> None:
        self.name = node.name.value
        self.type = node.operation.value  # "query" or "mutation"
        self.origin = origin
        self.line = node.loc.start_token.line if node.loc else 0
        self.document = document  # this operation plus the fragments it uses
        self.query = print_ast(document)
        self.variables = frozenset(v.variable.name.value for v in node.variable_definitions or ())
        self.required = frozenset(
            v.variable.name.value
            for v in node.variable_definitions or ()
            if isinstance(v.type, NonNullTypeNode) and v.default_value is None
        )
        # The JSON body without its closing brace: each request only appends its variables.
        self._body_prefix = json.dumps({"query": self.query, "operationName": self.name}, separators=(",", ":"))[:-1]

    @property
    def stats_name(self) -> str:
        return f"{self.type} {self.name}"

    def body(self, variables: dict | None = None) -> str:
        """The JSON request body: {"query", "operationName", "variables"}."""
        if not variables:
            return self._body_prefix + "}"
        return f'{self._body_prefix},"variables":{json.dumps(variables, separators=(",", ":"))}}}'

    def __repr__(self) -> str:
        return f"<Operation {self.stats_name} from {self.origin}:{self.line}>"


class Operations(dict):
    """The operations of one or more documents, by name (a dict), plus their parsed sources."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[tuple[str, DocumentNode, str]] = []  # (origin, document, text)

    def __missing__(self, name: str):
        known = ", ".join(sorted(self)) or "none"
        raise KeyError(f"no GraphQL operation named {name!r}; the documents have: {known}")


_NO_SCHEMA = build_schema("type Query { _unused: Int }")
_SCHEMA_FREE_RULES = [
    KnownFragmentNamesRule,
    NoFragmentCyclesRule,
    NoUndefinedVariablesRule,
    NoUnusedFragmentsRule,
    NoUnusedVariablesRule,
    UniqueFragmentNamesRule,
    UniqueVariableNamesRule,
]
_OPERATION_RE = re.compile(r"\b(query|mutation|subscription)\s+([_A-Za-z]\w*)")


def _label_at(text: str, line: int) -> str:
    """The last 'query Name' / 'mutation Name' that starts on or before LINE: where an error is."""
    head = "\n".join(text.splitlines()[:line])
    found = _OPERATION_RE.findall(head)
    return f"{found[-1][0]} {found[-1][1]}" if found else "the document"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def parse_operations(text: str, origin: str = "<inline>", into: Operations | None = None) -> Operations:
    """Parse TEXT (one or more named queries/mutations and fragments) with gql.

    Raises GraphQLDocumentError naming ORIGIN, line, column and operation.
    """
    operations = into if into is not None else Operations()
    try:
        document = gql(text).document
    except GraphQLError as error:
        line, column = (error.locations[0].line, error.locations[0].column) if error.locations else (0, 0)
        reason = error.message.removeprefix("Syntax Error: ")
        raise GraphQLDocumentError(
            f"{origin}:{line}:{column}: syntax error in {_label_at(text, line)}: {reason}"
        ) from None
    nodes = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if not nodes:
        raise GraphQLDocumentError(f"{origin}: no query or mutation in the document")
    seen: dict[str, int] = {}
    for node in nodes:
        line = node.loc.start_token.line if node.loc else 0
        if node.name is None:
            raise GraphQLDocumentError(
                f"{origin}:{line}: every operation needs a name (it names the statistics row), "
                "for example: query GetProducts { ... }"
            )
        if node.operation.value == "subscription":
            raise GraphQLDocumentError(
                f"{origin}:{line}: subscription {node.name.value}: subscriptions need a websocket, "
                "this client sends queries and mutations over HTTP"
            )
        if node.name.value in operations or node.name.value in seen:
            first = operations[node.name.value] if node.name.value in operations else None
            where = f"{first.origin}:{first.line}" if first else f"{origin}:{seen[node.name.value]}"
            raise GraphQLDocumentError(
                f"{origin}:{line}: a second operation named {node.name.value} (the first is at {where}): "
                "names must be unique, they name the statistics rows"
            )
        seen[node.name.value] = line
    # Checks that need no schema: undefined fragments and variables, unused ones, cycles.
    errors = validate(_NO_SCHEMA, document, _SCHEMA_FREE_RULES)
    if errors:
        error = errors[0]
        line, column = (error.locations[0].line, error.locations[0].column) if error.locations else (0, 0)
        raise GraphQLDocumentError(f"{origin}:{line}:{column}: {_label_at(text, line)}: {error.message}")
    separated = separate_operations(document)
    for node in nodes:
        operations[node.name.value] = Operation(node, separated[node.name.value], origin)
    operations.sources.append((origin, document, text))
    return operations


def read_operations(*paths: str | Path) -> Operations:
    """Parse .graphql files (or every *.graphql file in a folder). Raises GraphQLDocumentError."""
    operations = Operations()
    for given in paths:
        path = Path(given)
        if not path.is_absolute() and not path.exists():
            path = REPO_ROOT / path
        files = sorted(path.glob("*.graphql")) if path.is_dir() else [path]
        if not files or not all(f.is_file() for f in files):
            raise GraphQLDocumentError(f"{given}: no such GraphQL document (a .graphql file or a folder of them)")
        for file in files:
            parse_operations(file.read_text(encoding="utf-8"), _display(file), operations)
    return operations


# ---------------------------------------------------------------------------
# Schema check
# ---------------------------------------------------------------------------


def schema_from_file(path: str | Path) -> GraphQLSchema:
    """A schema from a file in SDL (the 'type Query { ... }' language), built by gql's Client."""
    try:
        return Client(schema=Path(path).read_text(encoding="utf-8")).schema
    except OSError as error:
        raise GraphQLDocumentError(f"GRAPHQL_SCHEMA={str(path)!r}: cannot read it ({error.strerror})") from None
    except (GraphQLError, TypeError) as error:
        first = str(error).splitlines()[0]
        raise GraphQLDocumentError(f"GRAPHQL_SCHEMA={str(path)!r} is not a GraphQL schema (SDL): {first}") from None


def schema_from_introspection(url: str, headers: dict | None = None, timeout: int = 10) -> GraphQLSchema:
    """Ask the server for its schema: ONE introspection query, through gql's own requests transport.

    This request is setup, not load: it is not in Locust's statistics.
    """
    transport = RequestsHTTPTransport(url=url, headers=headers, timeout=timeout, retries=0)
    client = Client(transport=transport, fetch_schema_from_transport=True)
    try:
        with client:
            pass  # connecting fetches the schema
    except (TransportError, RequestException, GraphQLError) as error:
        first = " ".join(str(error).split())[:200]
        shown = redact_url(url)
        raise GraphQLDocumentError(f"cannot read the GraphQL schema from {shown} by introspection: {first}") from None
    return client.schema


def check_operations(operations: Operations, schema: GraphQLSchema, schema_origin: str) -> None:
    """Validate every document against SCHEMA; raise GraphQLDocumentError on the first mismatch."""
    for origin, document, text in operations.sources:
        errors = validate(schema, document)
        if errors:
            error = errors[0]
            line, column = (error.locations[0].line, error.locations[0].column) if error.locations else (0, 0)
            raise GraphQLDocumentError(
                f"{origin}:{line}:{column}: {_label_at(text, line)} does not match the schema "
                f"({schema_origin}): {error.message}"
            )


def _exit_with(error: ConfigError) -> None:
    sys.stderr.write(f"error: {error}\n")
    sys.stderr.flush()
    raise SystemExit(2)


def load_operations(*paths: str | Path, schema: str = "", endpoint: str = "/graphql") -> Operations:
    """For locustfiles: parse the documents once, check them, stop with one line if anything is wrong.

    ``schema`` is GRAPHQL_SCHEMA: "" (no check), a schema file (checked now), or
    "introspect": one introspection query to ENDPOINT on the target when Locust
    starts (on the master or the local runner), before any user is started.
    A problem prints one line on stderr and exits with code 2: no traceback, no load.
    """
    try:
        operations = read_operations(*paths)
        if schema and schema != "introspect":
            check_operations(operations, schema_from_file(schema), _display(Path(schema)))
    except GraphQLDocumentError as error:
        _exit_with(error)
    if schema == "introspect":
        events.init.add_listener(_IntrospectionCheck(operations, endpoint))
    return operations


class _IntrospectionCheck:
    """An init listener: fetch the schema once and check the documents before any user starts."""

    def __init__(self, operations: Operations, endpoint: str) -> None:
        self.operations = operations
        self.endpoint = endpoint

    def __call__(self, environment, **_kwargs) -> None:
        from locust.runners import WorkerRunner

        if isinstance(environment.runner, WorkerRunner):
            return  # the master checks, once per run
        host = environment.host or next((u.host for u in environment.user_classes if u.host), None)
        url = self.endpoint if "://" in self.endpoint else f"{(host or '').rstrip('/')}{self.endpoint}"
        if "://" not in url:
            _exit_with(GraphQLDocumentError("GRAPHQL_SCHEMA=introspect needs the target: give --host"))
        try:
            check_operations(self.operations, schema_from_introspection(url), f"introspection of {redact_url(url)}")
        except GraphQLDocumentError as error:
            _exit_with(error)
        log.info("GraphQL: %d operations match the schema of %s", len(self.operations), redact_url(url))


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------


def _short(value, limit: int = 120) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_error(errors: list) -> str:
    """'message (path: a.b.0)' of the first GraphQL error, shortened; '(+N more)' when there are more."""
    first = errors[0]
    if isinstance(first, dict):
        text = _short(first.get("message") or first, 100)
        path = first.get("path")
        if isinstance(path, list) and path:
            text += f" (path: {'.'.join(str(p) for p in path)})"
    else:
        text = _short(first, 100)
    return text + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else "")


class GraphQLResponse:
    """What ``GraphQLClient.execute()`` returns.

    ``ok`` (bool), ``data`` (dict or None), ``errors`` (list or None), ``status_code``,
    ``failure_reason`` (str or None) and ``response`` (Locust's HTTP response).
    With ``catch_response=True`` it is a context manager: inside the ``with`` block,
    ``failure("why")`` or ``success()`` change the verdict, and the request event is
    fired when the block ends (an exception in the block is a failure too).
    """

    def __init__(self, operation: Operation, response, catch_response: bool) -> None:
        self.operation = operation
        self.response = response  # Locust's ResponseContextManager, or None when nothing was sent
        self.status_code = getattr(response, "status_code", 0) or 0
        self.data: dict | None = None
        self.errors: list | None = None
        self.failure_reason: str | None = None
        self._catch = catch_response
        self._reported = False

    @property
    def ok(self) -> bool:
        return self.failure_reason is None

    @property
    def sent(self) -> bool:
        """False when the client refused to send it (bad variables): its failure is already counted."""
        return self.response is not None

    def failure(self, reason: str) -> None:
        if self._may_change():
            self.failure_reason = str(reason)

    def success(self) -> None:
        if self._may_change():
            self.failure_reason = None

    def _may_change(self) -> bool:
        if not self.sent:
            return False  # the "not sent" verdict stands
        if self._reported:
            raise RuntimeError("already reported: use execute(..., catch_response=True) and a with block")
        return True

    def _report(self) -> None:
        if self._reported or self.response is None:
            return
        self._reported = True
        if self.failure_reason is None:
            self.response.success()
        else:
            self.response.failure(GraphQLFailure(self.failure_reason))
        self.response.__exit__(None, None, None)  # fires Locust's request event, once

    def __enter__(self) -> GraphQLResponse:
        if not self._catch:
            raise RuntimeError("a with block needs execute(..., catch_response=True)")
        return self

    def __exit__(self, exc_type, exc, _traceback) -> bool:
        if exc is not None and isinstance(exc, Exception):
            if self.sent and not isinstance(exc, _FLOW_CONTROL):
                self.failure_reason = f"{exc_type.__name__} in the check: {_short(exc, 100)}"
            self._report()
            return not isinstance(exc, _FLOW_CONTROL)  # swallow check errors like Locust's rest() does
        self._report()
        return False

    def __repr__(self) -> str:
        verdict = "ok" if self.ok else f"failed: {self.failure_reason}"
        return f"<GraphQLResponse {self.operation.stats_name} {self.status_code} {verdict}>"


class GraphQLClient:
    """Sends Operations through a Locust HTTP client (FastHttpSession or HttpSession).

    ``headers`` is sent with every request: put the login token there with
    ``set_token()``. ``partial_data``: "fail" (default) counts an answer with both
    ``data`` and ``errors`` as a failure; "accept" counts it as a success (the task
    still sees ``errors``).
    """

    request_type = "GraphQL"

    def __init__(self, http, endpoint: str = "/graphql", partial_data: str = "fail") -> None:
        if partial_data not in PARTIAL_DATA_POLICIES:
            raise ValueError(f"partial_data must be one of {PARTIAL_DATA_POLICIES}, not {partial_data!r}")
        self.http = http
        self.endpoint = endpoint
        self.accept_partial_data = partial_data == "accept"
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def set_token(self, token: str | None) -> None:
        """Send 'Authorization: Bearer TOKEN' from now on (None: stop sending it)."""
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        else:
            self.headers.pop("Authorization", None)

    def execute(
        self, operation: Operation, variables: dict | None = None, *, name: str | None = None, catch_response=False
    ) -> GraphQLResponse:
        """Send OPERATION with VARIABLES; one request event, named ``name`` or "query GetProducts"."""
        name = name or operation.stats_name
        problem = self._variables_problem(operation, variables)
        if problem:
            return self._refuse(operation, name, problem, catch_response)
        response = self.http.request(
            "POST", self.endpoint, name=name, data=operation.body(variables), headers=self.headers, catch_response=True
        )
        response.__enter__()  # lets us call success()/failure() on Locust's response
        response.request_meta["request_type"] = self.request_type
        result = GraphQLResponse(operation, response, catch_response)
        self._judge(result, response)
        if not catch_response:
            result._report()
        return result

    # -- verdict ---------------------------------------------------------------
    def _judge(self, result: GraphQLResponse, response) -> None:
        status = result.status_code
        if not status:
            result.failure_reason = f"no answer from the target ({_short(response.error)}) - is it running?"
            return
        try:
            content = response.content or b""
        except FAILURE_EXCEPTIONS as error:
            result.failure_reason = f"HTTP {status}, the body broke off: {_short(error)}"
            return
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = content
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors is not None and not isinstance(errors, list):
            errors = [errors]
        result.errors = errors or None
        if not 200 <= status < 300:
            if result.errors:
                result.failure_reason = f"HTTP {status}: {describe_error(result.errors)}"
            else:
                result.failure_reason = f"HTTP {status}, expected 2xx: {self._describe_body(response, content)}"
            return
        if not isinstance(body, dict):
            result.failure_reason = f"HTTP {status} but the body is not JSON: {self._describe_body(response, content)}"
            return
        data = body.get("data")
        result.data = data if isinstance(data, dict) else None
        if result.errors:
            if result.data is None:
                result.failure_reason = f"errors: {describe_error(result.errors)}"
            elif not self.accept_partial_data:
                result.failure_reason = f"partial data with errors: {describe_error(result.errors)}"
        elif result.data is None:
            result.failure_reason = f"HTTP {status} but the answer has no data and no errors"

    @staticmethod
    def _describe_body(response, content: bytes) -> str:
        kind = (response.headers.get("Content-Type") or "no Content-Type") if response.headers else "no Content-Type"
        if not content:
            return f"an empty body ({kind})"
        return f"{kind.split(';')[0]} {_short(content.decode('utf-8', 'replace'), 90)}"

    # -- variables ---------------------------------------------------------------
    @staticmethod
    def _variables_problem(operation: Operation, variables: dict | None) -> str | None:
        given = variables.keys() if variables else ()
        unknown = [v for v in given if v not in operation.variables]
        if unknown:
            declared = ", ".join(f"${v}" for v in sorted(operation.variables)) or "no variables"
            return f"not sent: unknown variable ${unknown[0]} ({operation.stats_name} declares {declared})"
        missing = [v for v in sorted(operation.required) if v not in given]
        if missing:
            return f"not sent: the required variable ${missing[0]} is missing"
        return None

    def _refuse(self, operation: Operation, name: str, reason: str, catch_response: bool) -> GraphQLResponse:
        """A request that cannot be right is not sent, but still counted: one failed request event."""
        user = getattr(self.http, "user", None)
        self.http.request_event.fire(
            request_type=self.request_type,
            name=name,
            response_time=0.0,
            response_length=0,
            response=None,
            context=user.context() if user else {},
            exception=GraphQLFailure(reason),
            url=self.endpoint,
        )
        result = GraphQLResponse(operation, None, catch_response)
        result.failure_reason = reason
        return result


class GraphQLUser(FastHttpUser):
    """A FastHttpUser with ``self.graphql``, a GraphQLClient on the user's own HTTP client.

    Why FastHttpUser: its geventhttpclient needs several times less CPU per request
    than HttpUser's requests library, and the load generator's CPU is the limit.
    """

    abstract = True
    graphql_endpoint = "/graphql"  # a path on the host, or a full URL
    graphql_partial_data = "fail"  # or "accept"

    def __init__(self, environment) -> None:
        super().__init__(environment)
        self.graphql = GraphQLClient(self.client, self.graphql_endpoint, self.graphql_partial_data)


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.graphql_client URL``: print the schema of the GraphQL server at URL, in SDL.

    Save it to a file to check the operations without introspection at run time:
        python -m utils.graphql_client http://127.0.0.1:8080/graphql > schema.graphql
        GRAPHQL_SCHEMA=schema.graphql python locust_helper.py run graphql
    """
    from graphql import print_schema

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or "://" not in args[0]:
        sys.stderr.write("usage: python -m utils.graphql_client URL, for example http://127.0.0.1:8080/graphql\n")
        return 2
    try:
        schema = schema_from_introspection(args[0])
    except GraphQLDocumentError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    sys.stdout.write(print_schema(schema) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
