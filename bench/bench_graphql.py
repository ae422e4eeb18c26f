"""Benchmark: the kit's GraphQL user versus a plain FastHttpUser POST of the same payload.

    python bench/bench_graphql.py [--seconds 10] [--users 20] [--rounds 2]

Starts the demo target itself, then runs, alternately in the same session, one
Locust process (one core) with each of these users, no think time, all sending
the same GetProducts request (bench/locustfiles/graphql_users.py):

  * GraphQLFast      utils.graphql_client on FastHttpUser, as tests/graphql_test.py uses it
                     (every answer parsed and checked: status, JSON, errors, data);
  * PlainPost        a bare FastHttpUser POST of the very same bytes, no checks (the baseline);
  * GraphQLRequests  the same client on HttpUser (the requests library), to show why
                     the kit builds on FastHttpUser.

Prints requests/s per run and the ratio GraphQL user / plain POST (best and mean of each);
the goal is at least 0.8. Each run lasts --seconds; the whole benchmark stays under
(3 x rounds x (seconds + ~5)) seconds.
"""

from __future__ import annotations

import argparse

from _common import REPO_ROOT, locust_rps, ratio_line, start_demo

LOCUSTFILE = str(REPO_ROOT / "bench/locustfiles/graphql_users.py")
USERS = {
    "GraphQLFast": "GraphQL user (FastHttpUser)",
    "PlainPost": "plain FastHttpUser POST",
    "GraphQLRequests": "GraphQL client on HttpUser",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each run (default 10)")
    parser.add_argument("--users", type=int, default=20, help="users per run (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each user, alternating (default 2)")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 60 or args.rounds < 1 or args.users < 1:
        parser.error("--seconds must be 1 to 60, --rounds and --users at least 1")

    process, url = start_demo()
    try:
        runs: dict[str, list[dict]] = {name: [] for name in USERS}
        for _ in range(args.rounds):
            for name in USERS:
                runs[name].append(locust_rps(LOCUSTFILE, url, args.users, args.seconds, extra=[name]))
        for name, label in USERS.items():
            figures = ", ".join(
                f"{r['rps']:.0f} rps (p50 {r['p50']:.0f} ms, {r['failures']} failures)" for r in runs[name]
            )
            print(f"{label:<30} {figures}")
        best = {name: max(r["rps"] for r in runs[name]) for name in USERS}
        mean = {name: sum(r["rps"] for r in runs[name]) / len(runs[name]) for name in USERS}
        print(ratio_line("ratio GraphQL user / plain POST (best of each)", best["GraphQLFast"], best["PlainPost"]))
        print(ratio_line("ratio GraphQL user / plain POST (mean of each)", mean["GraphQLFast"], mean["PlainPost"]))
        print(
            ratio_line("ratio HttpUser client / plain POST (best of each)", best["GraphQLRequests"], best["PlainPost"])
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
